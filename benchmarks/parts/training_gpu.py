"""Part 6: training throughput on a GPU, with whichever Keras backend runs there.

`varec train` itself drives TensorFlow (tf.data input, tf.distribute); a GPU machine may have only
JAX or PyTorch. What this part measures is varec's own network (`models/architecture.py`, built as
`varec train` builds it) trained by Keras' `fit` on clips already decoded into memory, so the numbers
are the model's training throughput on the accelerator, on the backend named in the results.
"""

from __future__ import annotations

import time

import numpy as np

from harness import Context, PartResult, Skipped, interleaved, median, part, throughput_rows

CASES = {  # backbone: (frames, size, clips per epoch); varec train's defaults for frames and size
    "scratch": (16, 64, 2048),
    "mobilenet_v2": (16, 224, 512),
    "resnet152v2": (16, 224, 256),
}
QUICK_CASES = {"scratch": (8, 64, 128), "mobilenet_v2": (8, 224, 64), "resnet152v2": (8, 224, 32)}
BATCH_SIZE = 16  # varec train's default
UNITS = 256
CLASSES = 101
FINE_TUNE_LAYERS = 20  # the value docs/training.md fine-tunes with
MIXED = "mixed_float16"  # what varec train uses on a GPU (training/tf_fit.py: configure_precision)

BASE = "frozen backbone, float32"
FROZEN_MIXED = "frozen backbone, mixed float16"
TRAINED_MIXED = "backbone trained, mixed float16"  # scratch: the whole CNN; pretrained: the top layers
FILL = "cache fill: backbone forward pass, mixed float16"
CACHED = "cached features: head epoch, mixed float16"


def accelerators(keras) -> list[str]:
    """Names of the GPUs the active Keras backend computes on (empty: none)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if backend == "tensorflow":
        import tensorflow as tf

        names = []
        for gpu in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(gpu)
            names.append(details.get("device_name") or gpu.name)
        return names
    return []


def _backend_version(backend: str) -> str | None:
    from importlib import metadata

    distribution = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}.get(backend)
    try:
        return metadata.version(distribution) if distribution else None
    except metadata.PackageNotFoundError:
        return None


def measure_backbone(ctx: Context, keras, backbone: str, frames: int, size: int, clips: int):
    """Seconds per epoch (or per cache fill) of each candidate, interleaved."""
    from varec_cli.models.architecture import assemble_training_model, build_frame_encoder, build_sequence_head
    from varec_cli.models.backbones import backbone_spec

    pretrained = backbone_spec(backbone).pretrained
    rng = np.random.default_rng(0)
    # Random pixels and weights: throughput does not depend on what the clips show.
    x = rng.integers(0, 256, (clips, frames, size, size, 3), dtype=np.uint8)
    y = rng.integers(0, CLASSES, clips).astype(np.int32)

    def build(policy: str, trained: bool):
        keras.config.set_dtype_policy(policy)
        try:
            layers = FINE_TUNE_LAYERS if (trained and pretrained) else 0
            encoder = build_frame_encoder(backbone, size, weights=None, trainable_layers=layers)
            if not trained:
                encoder.trainable = False
            head = build_sequence_head(frames, int(encoder.output_shape[-1]), CLASSES, rnn="gru", units=UNITS)
            return encoder, head
        finally:
            keras.config.set_dtype_policy("float32")

    def compiled(model):
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    def epoch_of(model, inputs):
        def epoch() -> None:
            model.fit(inputs, y, batch_size=BATCH_SIZE, epochs=1, shuffle=True, verbose=0)

        return epoch

    candidates = {}
    for name, policy, trained in ((BASE, "float32", False), (FROZEN_MIXED, MIXED, False),
                                  (TRAINED_MIXED, MIXED, True)):
        encoder, head = build(policy, trained)
        model = compiled(assemble_training_model(encoder, head, frames, size))
        candidates[name] = epoch_of(model, x)

    encoder, head = build(MIXED, False)
    folded = x.reshape((clips * frames, size, size, 3))
    features = {}

    def fill() -> None:
        # What the cache fill computes: every frame through the frozen encoder, once.
        out = encoder.predict(folded, batch_size=BATCH_SIZE * frames, verbose=0)
        features["x"] = np.asarray(out, np.float32).reshape((clips, frames, -1))

    head = compiled(head)  # its first epoch follows the first fill (the warm-up runs them in this order)
    candidates[FILL] = fill

    def cached() -> None:
        head.fit(features["x"], y, batch_size=BATCH_SIZE, epochs=1, shuffle=True, verbose=0)

    candidates[CACHED] = cached
    ctx.log(f"  {backbone}: {clips} clips of {frames} x {size} px, {ctx.repeats} rounds")
    first: dict[str, float] = {}

    def timed_first(name, call):
        def wrapper() -> None:
            if name in first:
                return call()
            started = time.perf_counter()
            call()
            first[name] = time.perf_counter() - started
            ctx.log(f"    first call of {name!r}: {first[name]:.1f} s")

        return wrapper

    times = interleaved({name: timed_first(name, call) for name, call in candidates.items()}, ctx.repeats)
    return times, first


@part(
    "training-gpu",
    title="Training throughput on a GPU",
    order=6,
    description=f"""
Runs only where the active Keras backend sees a GPU (`python benchmarks/run.py training-gpu`); on
other machines it is skipped and an earlier result is kept. `varec train` drives TensorFlow
(tf.data, tf.distribute), which the GPU machine available to us does not have; this part therefore
trains varec's own network (`models/architecture.py`: the frame encoder with its preprocessing, folded
over the frames as `varec train` does, then a GRU({UNITS}) head, {CLASSES} classes, batch {BATCH_SIZE},
Adam) with Keras' `fit` on the backend named in the machine table, from random clips already decoded
into memory, with random weights: model throughput on the accelerator, decoding excluded. Cells are
clips per second per epoch; the ratio is how many times faster than **{BASE}** (the end-to-end epoch
with the backbone frozen, in full precision), the median of per-round ratios. **{FROZEN_MIXED}** is the
same in `mixed_float16`, the policy `varec train` sets on a GPU. **{TRAINED_MIXED}**: `scratch` trains
its whole CNN (as `varec train` always does for it); pretrained backbones train their top
{FINE_TUNE_LAYERS} layers (`--fine-tune-layers {FINE_TUNE_LAYERS}`). **{FILL}** is the one-off work of
the feature cache (every frame through the frozen encoder, `predict`), and **{CACHED}** the epoch of
the head alone on those features, what `varec train --fine-tune-layers 0` runs after its first epoch.
The first call of each (compilation) is excluded.
""",
)
def run(ctx: Context) -> PartResult:
    from varec_cli.runtime import import_keras

    keras = import_keras()
    backend = keras.backend.backend()
    gpus = accelerators(keras)
    if not gpus:
        raise Skipped(f"no GPU visible to Keras' {backend} backend")
    result = PartResult(case_columns=["clips", "frames", "size"])
    result.machine.update({
        "keras_backend": f"{backend} {_backend_version(backend) or ''}".strip(),
        "accelerator": ", ".join(gpus),
    })
    cases = QUICK_CASES if ctx.quick else CASES
    benchmark = f"training throughput on {gpus[0]} (Keras on {backend}, batch {BATCH_SIZE})"
    for backbone, (frames, size, clips) in cases.items():
        keras.utils.set_random_seed(0)
        started = time.perf_counter()
        times, first = measure_backbone(ctx, keras, backbone, frames, size, clips)
        ctx.log(f"  {backbone}: {time.perf_counter() - started:.0f} s")
        rows = throughput_rows(benchmark, backbone, times, BASE, items=clips)
        for row in rows:
            row.details.update({"clips": clips, "frames": frames, "size": size})
        result.rows.extend(rows)
        by_name = {row.candidate: row for row in rows}
        result.notes.append(
            f"**{backbone}**: {by_name[CACHED].value:.0f} clips/s from cached features "
            f"({by_name[CACHED].ratio_vs_baseline:.1f}x the full-precision frozen epoch), "
            f"{by_name[FROZEN_MIXED].value:.0f} clips/s end to end in mixed precision "
            f"({by_name[FROZEN_MIXED].ratio_vs_baseline:.2f}x), {by_name[TRAINED_MIXED].value:.0f} clips/s "
            f"with the backbone trained; the cache fill encodes {by_name[FILL].value * frames:.0f} frames/s "
            f"(median epoch {median(times[BASE]):.2f} s at full precision). First calls, compilation included "
            f"(excluded above): " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in first.items()) + "."
        )
    return result
