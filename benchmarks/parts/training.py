"""Part 3: training. An epoch of the sequence head on cached backbone features against an epoch that
decodes every clip and runs it through the frozen backbone, with varec's own training pieces."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness import BENCH_DIR, Context, PartResult, Target, interleaved, median, part, throughput_rows

SIZE = 224
CLASSES = {"MoveLeft": "left", "MoveRight": "right"}
CLIPS_PER_CLASS = 16  # quick: 8
SOURCE_FRAMES, SOURCE_SIZE = 40, 64  # the generated videos: 40 frames of 64 px (3.3 s at 12 fps)
CASES = {  # backbone: frames per clip (quick: 8)
    "scratch": 16,
    "mobilenet_v2": 16,
}
BATCH_SIZE = 16  # varec train's default
# Each measurement fits two epochs and times the second: what history.csv shows for epochs 2..N of a
# run, its input pipeline already going (a one-epoch fit would also time the pipeline's start).
EPOCHS_PER_CALL = 2
UNITS = 256  # varec train's default GRU
TARGET = 20.0
# Planned steps of a UCF101 split-1 run at varec train's defaults: 9537 train clips less 10% for
# validation, batch 16, 30 epochs.
LONG_RUN_STEPS = 537 * 30

BASE = "frozen backbone, decode each epoch"
CACHED = "cached features"
CACHED_CKPT = "cached features + checkpoint"
FILL = "cache fill (first run only)"
DECODE = "decode only"


def write_dataset(root: Path, clips_per_class: int) -> Path:
    """A UCF101-layout dataset of moving squares (tests/synthetic.py), made once."""
    sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
    try:
        from synthetic import write_ucf101_motion_dataset
    finally:
        sys.path.pop(0)
    if not (root / "ucfTrainTestlist" / "testlist01.txt").exists():
        tmp = root.with_name(root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        # clips_per_class training clips in groups of 4, plus one test group (the layout needs one).
        groups = max(1, clips_per_class // 4)
        write_ucf101_motion_dataset(
            tmp, CLASSES, train_groups=groups, test_groups=1, clips=4, count=SOURCE_FRAMES, size=SOURCE_SIZE
        )
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    return root


def training_items(root: Path) -> list[tuple[Path, int]]:
    """(video, label) of every non-test clip, as varec's dataset loader lists them."""
    from varec_cli.datasets import load_dataset

    dataset = load_dataset(root, split=1)
    return [(Path(s.path), int(s.label)) for s in list(dataset.train) + list(dataset.val)]


def recorded(call: Callable[[], float], into: list[float]) -> Callable[[], float]:
    """`call`, remembering every value it reports (the first one is the warm-up's)."""

    def wrapper() -> float:
        value = call()
        into.append(value)
        return value

    return wrapper


def _epoch_timer(keras):
    class EpochTimer(keras.callbacks.Callback):
        """Seconds from the last epoch's start to the end of the last callback before it in the list:
        the `seconds` varec's history.csv reports, or, placed after EpochCheckpoint, with its write.
        `first`: the first epoch's (in a model's first fit, the trace of its steps included)."""

        seconds = first = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self._started
            self.first = self.first or self.seconds

    return EpochTimer


def measure_backbone(ctx: Context, backbone: str, frames: int, items: list[tuple[Path, int]]):
    """(times per candidate, cold first-call seconds per candidate) for one backbone."""
    from varec_cli.runtime import import_keras

    keras = import_keras()
    from varec_cli.models.architecture import assemble_training_model, build_frame_encoder, build_sequence_head
    from varec_cli.training import loader, tf_fit

    keras.utils.set_random_seed(0)
    size = (SIZE, SIZE)
    classes = len(CLASSES)
    encoder = build_frame_encoder(backbone, SIZE)  # random weights: speed is what is measured
    encoder.trainable = False  # mobilenet_v2: already (fine-tune layers 0); scratch: frozen for the comparison
    dim = int(encoder.output_shape[-1])
    labels = np.asarray([label for _, label in items], np.int32)
    paths = [path for path, _ in items]

    def compiled(model, jit_compile="auto"):
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="sparse_categorical_crossentropy",
            metrics=["accuracy"], jit_compile=jit_compile,
        )
        return model

    encode = loader.frame_encoder_function(encoder)  # what varec train encodes with

    cache_parent = ctx.work_dir / "training-cache"
    cache_parent.mkdir(parents=True, exist_ok=True)
    weights = loader.weights_digest(encoder)
    features = {}

    def fill() -> float:
        root = Path(tempfile.mkdtemp(prefix=f"{backbone}-", dir=cache_parent))
        try:
            cache = loader.FeatureCache(root, backbone=backbone, weights=weights, frames=frames, size=size,
                                        precision="float32")
            started = time.perf_counter()
            done = loader.extract_features(items, encode, cache, frames=frames, size=size, feature_dim=dim)
            seconds = time.perf_counter() - started
        finally:
            shutil.rmtree(root, ignore_errors=True)
        if done.decoded != len(items) or len(done.labels) != len(items):
            raise RuntimeError(f"cache fill: {done.decoded} decoded, {len(done.skipped)} skipped")
        features["set"] = done
        return seconds

    ctx.log(f"  {backbone}: filling the feature cache once")
    fill()
    feature_set = features["set"]

    EpochTimer = _epoch_timer(keras)
    first_epochs: dict[str, float] = {}
    placement = tf_fit.make_strategy("none")

    def last_epoch(name: str, model, data, callbacks=(), **fit_args) -> float:
        """Seconds of the last of EPOCHS_PER_CALL epochs; the first epoch of the first call is kept
        in first_epochs (its steps traced)."""
        timer = EpochTimer()
        model.fit(data, epochs=EPOCHS_PER_CALL, callbacks=[*callbacks, timer], shuffle=False, verbose=0, **fit_args)
        first_epochs.setdefault(name, timer.first)
        return timer.seconds

    def trained_alone(head):
        # As varec train sets up a head trained alone on a CPU for a run of real length.
        jit_compile, _ = tf_fit.tune_head_for_cpu(head, frames, placement, LONG_RUN_STEPS)
        return compiled(head, jit_compile)

    cached_head = trained_alone(build_sequence_head(frames, dim, classes, rnn="gru", units=UNITS))
    cached_data = tf_fit.features_dataset(feature_set.features, feature_set.labels, BATCH_SIZE, shuffle=True, seed=0)
    cached_steps = tf_fit.batches_per_epoch(len(feature_set.labels), BATCH_SIZE)  # the dataset is endless

    def cached_epoch() -> float:
        return last_epoch(CACHED, cached_head, cached_data, steps_per_epoch=cached_steps)

    ckpt_head = trained_alone(build_sequence_head(frames, dim, classes, rnn="gru", units=UNITS))
    checkpoint_dir = Path(tempfile.mkdtemp(prefix=f"{backbone}-ckpt-", dir=cache_parent))
    _, EpochCheckpoint, _ = tf_fit._make_callbacks_classes()
    state = tf_fit.ResumeState(fingerprint={})
    monitor = tf_fit._Monitor(has_val=False)

    def cached_epoch_with_checkpoint() -> float:
        # varec's EpochCheckpoint writes epoch-NNNN.weights.h5 (+ best.weights.h5 when the epoch is the
        # best so far) and state.json after every epoch; the timer after it includes that.
        state.epoch = 0
        checkpoint = EpochCheckpoint(checkpoint_dir, state, monitor, write=True, others={}, on_epoch=None)
        return last_epoch(CACHED_CKPT, ckpt_head, cached_data, [checkpoint], steps_per_epoch=cached_steps)

    e2e_head = build_sequence_head(frames, dim, classes, rnn="gru", units=UNITS)
    e2e = compiled(assemble_training_model(encoder, e2e_head, frames, SIZE))  # what varec train fits end to end
    assert not encoder.trainable_weights and e2e.trainable_weights
    # memory_limit=0: every epoch decodes its clips again, as training without the cache does once a
    # dataset is larger than ClipSource's memory (1 GiB by default; UCF101 is ~30x that at 16x224).
    source = loader.ClipSource(items, frames, size, memory_limit=0)
    e2e_data = tf_fit.clips_dataset(source, BATCH_SIZE, shuffle=True, seed=0)

    def e2e_epoch() -> float:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            return last_epoch(BASE, e2e, e2e_data)

    def decode_only() -> float:
        started = time.perf_counter()
        got = sum(1 for d in loader.decode_videos(paths, frames, size) if d.error is None)
        seconds = time.perf_counter() - started
        assert got == len(paths)
        return seconds

    calls: dict[str, list[float]] = {}
    candidates = {}
    for name, call in ((BASE, e2e_epoch), (CACHED, cached_epoch), (CACHED_CKPT, cached_epoch_with_checkpoint),
                       (FILL, fill), (DECODE, decode_only)):
        calls[name] = []
        candidates[name] = recorded(call, calls[name])
    ctx.log(f"  {backbone}: {len(items)} clips of {frames} frames at {SIZE} px, {ctx.repeats} rounds")
    try:
        times = interleaved(candidates, ctx.repeats)
    finally:
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    # The epochs' cold cost is the first epoch of their first fit, where the steps are traced.
    cold = {name: first_epochs.get(name, values[0]) for name, values in calls.items()}
    decoded_per_epoch = len(items)
    return times, cold, decoded_per_epoch, labels


@part(
    "training",
    title="Training: cached features vs the frozen backbone",
    order=3,
    description=f"""
One training epoch of varec's GRU head ({UNITS} units, batch {BATCH_SIZE}, Adam) on generated clips
(tests/synthetic.py: squares moving left or right, {SOURCE_SIZE} px videos of {SOURCE_FRAMES} frames,
sampled and resized to {SIZE} px as `varec train` does), built from varec's own pieces
(`training/loader.py`, `training/tf_fit.py`, `models/architecture.py`), random weights (speed is what is
measured). **{BASE}** (the baseline) is the epoch without the cache: `loader.ClipSource` decodes
every clip again (`memory_limit=0`, as once a dataset outgrows its 1 GiB of memory) and the assembled
model `varec train` fits end to end (`assemble_training_model`: the frozen frame encoder on the clips'
frames folded into one batch, then the head) trains on them. **{CACHED}** is the epoch of
`varec train` with a frozen backbone: the head alone on the features `loader.extract_features` put in
the `FeatureCache`, set up as `varec train` sets it up on a CPU for a run of real length
(`tf_fit.tune_head_for_cpu`: the GRU unrolled and compiled with XLA when a run plans at least
`tf_fit.TUNED_HEAD_MIN_STEPS` steps; UCF101 at the defaults plans about {LONG_RUN_STEPS}). Both are
Keras epochs as `history.csv` times them (start to end of the epoch), the second of a
{EPOCHS_PER_CALL}-epoch fit, as epochs after the first of a run are (the input pipeline going);
**{CACHED_CKPT}** adds varec's per-epoch checkpoint (`tf_fit.EpochCheckpoint`: the weights and optimizer
state written after every epoch), what a user actually waits. **{FILL}** is the one-off first-run
cost: decode + encode every clip into an empty cache. **{DECODE}** is `loader.decode_videos` alone.
Cells are clips per second (clips in the epoch ÷ median time), and the ratio is how many times faster
than the baseline, the median of per-round ratios. Warm-up (the first call of each, tracing
included) is excluded and reported below. A fresh `scratch` network trains its CNN in `varec train`;
its features are cached when training starts from a scratch model file (`--init`, with the default
`--fine-tune-layers 0`), the case its row measures: the encoder frozen in both columns.
""",
)
def run(ctx: Context) -> PartResult:
    result = PartResult(case_columns=["clips", "frames"])
    clips_per_class = 8 if ctx.quick else CLIPS_PER_CLASS
    root = write_dataset(ctx.work_dir / f"training-motion-{clips_per_class}", clips_per_class)
    items = training_items(root)
    benchmark = f"training epoch ({len(CLASSES)} classes, {len(items)} clips, {SIZE} px, CPU)"
    for backbone, frames in CASES.items():
        frames = 8 if ctx.quick else frames
        times, cold, _, _ = measure_backbone(ctx, backbone, frames, items)
        case = backbone + (" (encoder frozen for the comparison)" if backbone == "scratch" else "")
        rows = throughput_rows(benchmark, case, times, BASE, items=len(items))
        for row in rows:
            row.details.update({"clips": len(items), "frames": frames, "first_call_s": cold[row.candidate]})
        result.rows.extend(rows)
        ratio = next(r.ratio_vs_baseline for r in rows if r.candidate == CACHED)
        ratio_ckpt = next(r.ratio_vs_baseline for r in rows if r.candidate == CACHED_CKPT)
        base_s, cached_s = median(times[BASE]), median(times[CACHED])
        result.targets.append(
            Target(
                f"cached-feature epoch >= {TARGET:.0f}x faster than a frozen-backbone epoch ({backbone})",
                f"{ratio:.1f}x ({cached_s:.3f} s vs {base_s:.2f} s per epoch of {len(items)} clips)",
                ratio >= TARGET,
            )
        )
        result.notes.append(
            f"**{backbone}** ({frames} frames): an epoch takes {base_s:.2f} s through the frozen backbone "
            f"and {cached_s:.3f} s from the cache ({ratio:.1f}x); with varec's per-epoch checkpoint "
            f"{median(times[CACHED_CKPT]):.3f} s ({ratio_ckpt:.1f}x). First-epoch cost of the cached path: "
            f"the cache fill, {median(times[FILL]):.2f} s ({median(times[FILL]) / base_s:.2f}x a frozen-backbone "
            f"epoch), paid once per dataset, backbone and clip spec; decoding alone is "
            f"{median(times[DECODE]):.2f} s of each uncached epoch. Cold first epochs (their steps traced), "
            f"excluded above: frozen-backbone epoch {cold[BASE]:.1f} s, cached epoch {cold[CACHED]:.2f} s, "
            f"cache fill {cold[FILL]:.2f} s."
        )
    result.notes.append(
        "No GPU in this run: CPU only, float32. For a GPU see part `training-gpu` (the same network, "
        "trained on the Keras backend that machine runs)."
        if not _gpu() else "GPU present: these are TensorFlow GPU timings (see the machine table)."
    )
    return result


def _gpu() -> bool:
    try:
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    except Exception:  # noqa: BLE001 - only a note depends on it
        return False
