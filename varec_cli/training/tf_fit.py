"""The TensorFlow side of training: devices, distribution strategy, precision, tf.data input, the
Keras fit loop with its callbacks, and the checkpoints `--resume` continues from.

This is the one training module that imports TensorFlow directly (inside functions: importing this
module is cheap). Everything here raises VarecError for what a user can fix and never prints.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from varec_cli.errors import VarecError, brief
from varec_cli.training import STRATEGIES

STATE_FILE = "state.json"
BEST_WEIGHTS = "best.weights.h5"


def _tf():
    from varec_cli.runtime import import_tensorflow

    return import_tensorflow()


# --- devices, strategies, precision ----------------------------------------------------------------


def gpu_names() -> list[str]:
    tf = _tf()
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except Exception:  # details are best effort
            details = {}
        names.append(details.get("device_name") or gpu.name)
    return names


def device_description() -> str:
    """Where training runs, in words: the GPU names, or the CPU."""
    names = gpu_names()
    if names:
        if len(set(names)) == 1 and len(names) > 1:
            return f"{len(names)} x GPU {names[0]}"
        return "GPU " + ", ".join(names)
    return f"CPU ({os.cpu_count() or 1} cores, no GPU found)"


def is_chief() -> bool:
    """In a multi-worker cluster, only the chief (or worker 0 when there is no chief) writes files."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    try:
        config = json.loads(raw)
    except ValueError:
        return True
    task = config.get("task") or {}
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    if "chief" in (config.get("cluster") or {}):
        return kind == "chief"
    return kind == "worker" and index == 0


@dataclass
class Placement:
    strategy: Any  # a tf.distribute.Strategy
    name: str  # none | mirrored | multiworker
    replicas: int
    description: str  # "CPU (...)" or "GPU ...", plus the replica count when distributed
    gpu: bool


def make_strategy(name: str) -> Placement:
    """The tf.distribute strategy for `--strategy` (create it before any other TensorFlow work).

    mirrored: every GPU of this machine; with no GPU, every logical CPU device (tests split the CPU
    into two with tf.config.set_logical_device_configuration). multiworker: the machines listed in
    TF_CONFIG, each running the same command.
    """
    if name not in STRATEGIES:
        raise VarecError(f"unknown strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")
    if name == "multiworker" and not os.environ.get("TF_CONFIG"):
        raise VarecError(
            "--strategy multiworker needs TF_CONFIG: the cluster and this worker's place in it, e.g. on host a "
            """TF_CONFIG='{"cluster": {"worker": ["a:2222", "b:2222"]}, "task": {"type": "worker", "index": 0}}'; """
            "use --strategy mirrored for the GPUs of one machine"
        )
    tf = _tf()
    gpus = tf.config.list_physical_devices("GPU")
    if name == "none":
        strategy = tf.distribute.get_strategy()
    elif name == "mirrored":
        if gpus:
            strategy = tf.distribute.MirroredStrategy()
        else:
            cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
            strategy = tf.distribute.MirroredStrategy(devices=cpus)
    else:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    replicas = int(strategy.num_replicas_in_sync)
    description = device_description()
    if name != "none":
        description += f"; {name} strategy, {replicas} replica{'s' if replicas != 1 else ''}"
    return Placement(strategy, name, replicas, description, gpu=bool(gpus))


def configure_precision(placement: Placement, *, allow_mixed: bool = True) -> str:
    """mixed_float16 on GPU (faster, half the activation memory), float32 on CPU. Returns the policy."""
    from varec_cli.runtime import import_keras

    keras = import_keras()
    policy = "mixed_float16" if placement.gpu and allow_mixed else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


# Frames up to which a head trained alone on a CPU has its recurrent layers unrolled: beyond, tracing
# the unrolled steps costs more than an epoch saves (GRU, 64 frames: a 10 s trace).
UNROLL_MAX_FRAMES = 32
# Training steps a run must plan for the tuned head's longer start to pay for itself (see
# tune_head_for_cpu). UCF101 split 1 at the defaults plans about 16,000.
TUNED_HEAD_MIN_STEPS = 2500


def tune_head_for_cpu(head, frames: int, placement: Placement, planned_steps: int) -> tuple[bool | str, bool]:
    """Make a head that trains alone on cached features step faster on a CPU. Returns the
    `jit_compile` to compile it with (True: XLA, which Keras leaves off on CPU-only machines, or
    Keras' own "auto") and whether its recurrent layers were unrolled.

    On cached features the head is the whole model, and a CPU spends its step on many small recurrent
    ops. Unrolling the recurrent layers (up to UNROLL_MAX_FRAMES frames) helps every RNN; XLA on top
    helps a GRU but slows an LSTM. Measured on 2 cores, one epoch of 32 clips (batch 16, 256 units,
    16 frames of 128-dim features), default → tuned: GRU 30.9 → 19.0 ms (1280-dim: 55 → 48 ms),
    LSTM 29.4 → 27.3 ms, bidirectional LSTM 45.3 → 34.6 ms. The cost is a longer first epoch, which
    traces (and for a GRU compiles) the step for each batch shape, the last smaller batch's and
    validation's included: a GRU's went from 1.25 to about 10 s, won back at about 5 ms a step, so
    a run planning fewer than TUNED_HEAD_MIN_STEPS is left as it is. Only on TensorFlow, for the
    default strategy on a CPU: a GPU keeps cuDNN's fused kernels, which unrolling turns off. No XLA
    where TensorFlow's op determinism is on (Keras would turn it off). The model file is rebuilt
    from the architecture after training, so it never keeps these settings.
    """
    from varec_cli.runtime import import_keras, tensorflow_backend

    if not tensorflow_backend() or placement.gpu or placement.name != "none" or planned_steps < TUNED_HEAD_MIN_STEPS:
        return "auto", False
    keras = import_keras()
    recurrent = []
    for layer in head.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            recurrent += [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, keras.layers.RNN):
            recurrent.append(layer)
    unrolled = bool(recurrent) and frames <= UNROLL_MAX_FRAMES
    if unrolled:
        for layer in recurrent:
            layer.unroll = True  # read when the step is traced
    gru = bool(recurrent) and all(isinstance(layer, keras.layers.GRU) for layer in recurrent)
    return (True if gru and not _op_determinism() else "auto"), unrolled


def _op_determinism() -> bool:
    try:
        from tensorflow.python.framework.config import is_op_determinism_enabled
    except ImportError:  # where a TensorFlow moved it: Keras checks it there too
        return False
    return bool(is_op_determinism_enabled())


# --- tf.data input ---------------------------------------------------------------------------------


def _sharding_options(tf):
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def epoch_order(count: int, seed: int, epoch):
    """The order of `count` training items in `epoch` (0-based), drawn from (seed, epoch) alone: the
    same whether a run got to that epoch in one go or through --resume. TensorFlow ops, so that the
    cached-features pipeline draws it inside its graph and the clips pipeline eagerly, alike."""
    tf = _tf()
    return tf.random.experimental.stateless_shuffle(
        tf.range(count, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    )


def features_dataset(
    features: np.ndarray, labels: np.ndarray, batch_size: int, *, shuffle: bool, seed: int, first_epoch: int = 0
):
    """Cached per-frame features (N, frames, dim) float16 + labels → batches of float32 features.

    Shuffled, it is endless: epoch after epoch from `first_epoch` on, each in epoch_order, cut into
    batches_per_epoch() batches; fit it with steps_per_epoch. One pass serves every epoch.
    """
    tf = _tf()
    labels = np.asarray(labels, np.int32)
    to_float = lambda x, y: (tf.cast(x, tf.float32), y)  # noqa: E731
    if not shuffle:
        dataset = tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch_size).map(to_float)
        return dataset.prefetch(tf.data.AUTOTUNE).with_options(_sharding_options(tf))
    all_features, all_labels = tf.constant(features), tf.constant(labels)

    def one_epoch(epoch):
        return tf.data.Dataset.from_tensor_slices(epoch_order(len(labels), seed, epoch)).batch(batch_size)

    batches = tf.data.Dataset.range(first_epoch, 1 << 40).flat_map(one_epoch)
    dataset = batches.map(lambda chosen: to_float(tf.gather(all_features, chosen), tf.gather(all_labels, chosen)))
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(_sharding_options(tf))


def batches_per_epoch(count: int, batch_size: int) -> int:
    return -(-count // batch_size)


def clips_dataset(source, batch_size: int, *, shuffle: bool, seed: int, first_epoch: int = 0):
    """Decoded clips from a loader.ClipSource, a fresh (reshuffled) pass each epoch; a resumed run
    continues at `first_epoch`.

    Clips travel as uint8 (a quarter of float32's bytes); the model casts them on the device. The
    worker threads of the ClipSource decode ahead while the accelerator computes, and prefetch keeps
    two batches ready.
    """
    tf = _tf()
    passes = iter(range(first_epoch, 1 << 30))

    def generate():
        epoch, count = next(passes), len(source.items)
        order = epoch_order(count, seed, epoch).numpy() if shuffle else np.arange(count)
        yield from source.batches(batch_size, order=order)

    height, width = source.size
    signature = (
        tf.TensorSpec((None, source.frames, height, width, 3), tf.uint8),
        tf.TensorSpec((None,), tf.int32),
    )
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return dataset.prefetch(2).with_options(_sharding_options(tf))


# --- callbacks and checkpoints ---------------------------------------------------------------------


def _floats(logs: dict | None) -> dict[str, float]:
    out = {}
    for key, value in (logs or {}).items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


@dataclass
class ResumeState:
    """What `--resume` needs: written after every epoch, atomically, beside the weights it names."""

    fingerprint: dict
    epoch: int = 0  # epochs completed
    weights: str | None = None  # file name of the weights (+ optimizer state) after `epoch`
    best_epoch: int = 0
    best_weights: str | None = None  # file name of best_epoch's weights (None: BEST_WEIGHTS, older runs)
    best: dict[str, float] = field(default_factory=dict)  # monitored metrics at best_epoch
    history: list[dict[str, float]] = field(default_factory=list)
    callbacks: dict[str, dict] = field(default_factory=dict)  # EarlyStopping / ReduceLROnPlateau counters
    extra: dict = field(default_factory=dict)  # run facts the final provenance needs (clip durations...)

    @classmethod
    def load(cls, directory: Path) -> ResumeState | None:
        path = Path(directory) / STATE_FILE
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            state = cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise VarecError(f"{path}: the training checkpoint state is unreadable ({exc}); delete it") from None
        if problem := state._problem():
            raise VarecError(
                f"{path}: the training checkpoint state is damaged ({problem}); delete {Path(directory)} to start over"
            )
        return state

    def _problem(self) -> str | None:
        """What in a state.json edited or damaged by hand would fail later with a traceback, or None."""

        def count(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 0

        def file_name(value) -> bool:  # a file in the checkpoint folder itself, or none
            return value is None or (isinstance(value, str) and value == Path(value).name and value not in ("", ".", ".."))

        if not count(self.epoch) or not count(self.best_epoch):
            return "epoch and best_epoch must be counts of epochs"
        if not file_name(self.weights) or not file_name(self.best_weights):
            return "weights and best_weights must name files in the checkpoint folder"
        if not all(isinstance(value, dict) for value in (self.fingerprint, self.best, self.callbacks, self.extra)):
            return "fingerprint, best, callbacks and extra must be objects"
        if not isinstance(self.history, list) or not all(isinstance(epoch, dict) for epoch in self.history):
            return "history must be a list of objects"
        return None

    def save(self, directory: Path) -> None:
        from varec_cli.files import write_atomically

        write_atomically(Path(directory) / STATE_FILE, json.dumps(self.__dict__, indent=1, default=float).encode())


_COUNTERS = {"wait": int, "best_epoch": int, "stopped_epoch": int, "cooldown_counter": int, "best": float}


def _counters(callback) -> dict:
    """The progress counters of an EarlyStopping or ReduceLROnPlateau callback, JSON-ready."""
    out = {}
    for key, kind in _COUNTERS.items():
        value = getattr(callback, key, None)
        if value is None:
            continue
        try:
            value = kind(value)
        except (TypeError, ValueError):
            continue
        if kind is float and not np.isfinite(value):
            continue
        out[key] = value
    return out


class _Monitor:
    """Which epoch is the best: highest val accuracy (ties: lower val loss). Without validation, the
    latest: training accuracy is measured with dropout on while the weights change, so an earlier
    epoch's figure says little about its weights."""

    def __init__(self, has_val: bool):
        self.has_val = has_val
        self.accuracy = "val_accuracy" if has_val else "accuracy"
        self.loss = "val_loss" if has_val else "loss"

    def diverged(self, logs: dict[str, float]) -> bool:
        """The training or the watched loss is not a number: the weights are NaN from here on."""
        return not all(np.isfinite(logs.get(key, 0.0)) for key in ("loss", self.loss))

    def better(self, logs: dict[str, float], best: dict[str, float]) -> bool:
        if self.diverged(logs):
            return False  # NaN weights are never the best
        if not best or not self.has_val:
            return True
        acc, best_acc = logs.get(self.accuracy, -1.0), best.get(self.accuracy, -1.0)
        if acc != best_acc:
            return acc > best_acc
        return logs.get(self.loss, np.inf) < best.get(self.loss, np.inf)


def _learning_rate(model) -> float:
    return float(np.asarray(model.optimizer.learning_rate))


def _make_callbacks_classes():
    from varec_cli.runtime import import_keras

    keras = import_keras()

    class ProgressCallback(keras.callbacks.Callback):
        """Feeds the library's Reporter: epoch and batch progress, never printing."""

        def __init__(self, reporter, epochs: int, steps: int | None):
            super().__init__()
            self.reporter, self.epochs, self.steps = reporter, epochs, steps
            self._started = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()
            self.reporter.epoch_begin(epoch + 1, self.epochs, self.params.get("steps") or self.steps)

        def on_train_batch_end(self, batch, logs=None):
            self.reporter.batch_end(batch + 1, _floats(logs))

        def on_epoch_end(self, epoch, logs=None):
            logs = _floats(logs)
            if "loss" not in logs:  # not one batch: every clip failed to decode (first callback: before
                raise VarecError("no training video could be decoded")  # the others warn about it)
            logs["seconds"] = time.perf_counter() - self._started
            self.reporter.epoch_end(epoch + 1, logs)

    class EpochCheckpoint(keras.callbacks.Callback):
        """After every epoch: weights + optimizer state to `epoch-NNNN.weights.h5`, a copy to
        `best-NNNN.weights.h5` when it is the best epoch, then `state.json` (written last, atomically)
        naming both; the files it no longer names go after that. Before training it puts back what a
        resumed run needs: the other callbacks' counters.

        A run killed at any instant therefore resumes from the last epoch whose state was written, with
        the best weights that state names. An epoch whose loss is not a number stops training: the
        weights stay NaN from there on.
        """

        def __init__(self, directory: Path, state: ResumeState, monitor: _Monitor, *, write: bool, others, on_epoch):
            super().__init__()
            self.directory, self.state, self.monitor, self.write = Path(directory), state, monitor, write
            self.others = others  # name → callback whose counters are saved and restored
            self.on_epoch = on_epoch  # updates state.extra before it is written
            self._started = 0.0
            self._rate = float("nan")

        def on_train_begin(self, logs=None):
            for name, callback in self.others.items():
                for key, value in self.state.callbacks.get(name, {}).items():
                    setattr(callback, key, value)

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()
            self._rate = _learning_rate(self.model)  # ReduceLROnPlateau may cut it at this epoch's end

        def on_epoch_end(self, epoch, logs=None):
            logs = _floats(logs)
            if self.monitor.diverged(logs):
                self.model.stop_training = True
                self.state.extra.setdefault("diverged_epoch", epoch + 1)
            row = {"epoch": epoch + 1, **logs}
            row["learning_rate"] = self._rate  # the rate this epoch trained with
            row["seconds"] = round(time.perf_counter() - self._started, 3)
            state = self.state
            state.history = [r for r in state.history if r["epoch"] < epoch + 1] + [row]
            improved = self.monitor.better(logs, state.best)
            if improved:
                state.best_epoch = epoch + 1
                state.best = {k: logs[k] for k in (self.monitor.accuracy, self.monitor.loss) if k in logs}
            state.epoch = epoch + 1
            state.callbacks = {name: _counters(callback) for name, callback in self.others.items()}
            if self.on_epoch is not None:
                self.on_epoch(state)
            if not self.write:
                return
            name = f"epoch-{epoch + 1:04d}.weights.h5"
            best_name = f"best-{epoch + 1:04d}.weights.h5" if improved else state.best_weights
            previous = {state.weights, state.best_weights}
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                _save_weights(self.model, self.directory / name, copies=2 if improved else 1)
                if improved:  # the file just written, copied rather than serialised a second time
                    shutil.copyfile(self.directory / name, self.directory / best_name)
                state.weights, state.best_weights = name, best_name
                state.save(self.directory)
            except OSError as exc:
                for written in {name, best_name} - previous - {None}:  # what the saved state does not name
                    (self.directory / written).unlink(missing_ok=True)
                raise VarecError(
                    f"cannot write the training checkpoint in {self.directory}: {exc.strerror or exc}"
                ) from None
            for stale in previous - {state.weights, state.best_weights, None}:
                (self.directory / stale).unlink(missing_ok=True)
            if improved:
                (self.directory / BEST_WEIGHTS).unlink(missing_ok=True)  # an older run's, now superseded

    class ScalarLogger(keras.callbacks.Callback):
        """TensorBoard scalars per epoch (loss, accuracy, learning rate) under `<dir>/train` and
        `<dir>/validation`, the tags Keras' own TensorBoard callback uses. Written with TensorFlow's
        core summary ops, so training needs no `tensorboard` package (viewing the logs does)."""

        def __init__(self, directory: Path):
            super().__init__()
            tf = _tf()
            from tensorflow.core.framework import summary_pb2

            self._tf = tf
            self._rate = float("nan")
            self._metadata = summary_pb2.SummaryMetadata(
                plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
            ).SerializeToString()
            try:
                self._writers = {
                    part: tf.summary.create_file_writer(str(Path(directory) / part)) for part in ("train", "validation")
                }
            except tf.errors.OpError as exc:  # what the early check could not foresee (a full disk, a race)
                raise VarecError(f"--tensorboard {directory}: cannot write the logs there ({exc.message})") from None

        def on_epoch_begin(self, epoch, logs=None):
            self._rate = _learning_rate(self.model)

        def on_epoch_end(self, epoch, logs=None):
            tf = self._tf
            logs = _floats(logs)
            logs["learning_rate"] = self._rate  # the rate this epoch trained with, not the one cut at its end
            for key, value in logs.items():
                part = "validation" if key.startswith("val_") else "train"
                tag = "epoch_" + key.removeprefix("val_")
                with self._writers[part].as_default():
                    tf.summary.write(tag, tf.constant(value, tf.float32), step=epoch, metadata=self._metadata)
            for writer in self._writers.values():
                writer.flush()

        def on_train_end(self, logs=None):
            for writer in self._writers.values():
                writer.close()

    return ProgressCallback, EpochCheckpoint, ScalarLogger


@dataclass
class FitOutcome:
    history: list[dict[str, float]]
    epochs_run: int  # total epochs completed, resumed ones included
    best_epoch: int
    resumed_from: int  # epochs already done when this run started (0 = fresh)
    stopped_early: bool
    diverged_epoch: int | None = None  # the first epoch whose loss was not a number


def _save_weights(model, path: Path, copies: int) -> None:
    """model.save_weights (+ optimizer state), after checking there is room for `copies` of it: HDF5
    failing mid-write on a full disk leaves a file handle that crashes the interpreter at exit."""
    from varec_cli.files import short_of_space

    variables = [*model.weights, *(model.optimizer.variables if model.optimizer else [])]
    needed = (sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables) * 11 // 10 + (1 << 20)) * copies
    if (short := short_of_space(path.parent, needed)) is not None:
        raise VarecError(f"not enough free disk space in {path.parent} for the training checkpoint: {short}")
    try:
        model.save_weights(path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def restore_weights(model, path: Path) -> None:
    """Weights and optimizer state from a checkpoint into a compiled model."""
    model.optimizer.build(model.trainable_variables)
    path = Path(path)
    try:
        model.load_weights(path)
    except Exception as exc:  # noqa: BLE001 - h5py and Keras raise many types for a missing or damaged file
        raise VarecError(
            f"{path}: the checkpoint's weights cannot be loaded ({brief(exc, first_line=True)}); delete {path.parent} "
            "to start over"
        ) from None


def fit(
    model,
    train,
    val,
    *,
    placement: Placement,
    epochs: int,
    steps: int | None,
    endless: bool = False,
    checkpoint_dir: Path,
    state: ResumeState,
    reporter,
    patience: int = 10,
    tensorboard: Path | None = None,
    on_epoch: Callable[[ResumeState], None] | None = None,
) -> FitOutcome:
    """Train a compiled model; checkpoint every epoch; stop early; reduce the LR on plateaus.

    `state` is fresh (epoch 0) or loaded for `--resume`: then the weights and optimizer state of its
    last epoch are loaded and training continues at the next epoch. `endless`: `train` goes on from
    epoch to epoch (features_dataset), and an epoch is `steps` batches of it. After training the model holds
    the weights of the best epoch.
    """
    from varec_cli.runtime import import_keras

    keras = import_keras()
    ProgressCallback, EpochCheckpoint, ScalarLogger = _make_callbacks_classes()
    monitor = _Monitor(val is not None)
    resumed_from = state.epoch
    with placement.strategy.scope():
        if state.weights:
            restore_weights(model, checkpoint_dir / state.weights)
    early = keras.callbacks.EarlyStopping(monitor=monitor.loss, patience=patience, mode="min")
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor=monitor.loss, factor=0.5, patience=max(2, patience // 3), min_lr=1e-6, mode="min"
    )
    callbacks = [ProgressCallback(reporter, epochs, steps), early, plateau]
    if tensorboard is not None:
        callbacks.append(ScalarLogger(tensorboard))
    checkpoint = EpochCheckpoint(
        checkpoint_dir, state, monitor, write=is_chief(), others={"early_stopping": early, "reduce_lr": plateau},
        on_epoch=on_epoch,
    )
    callbacks.append(checkpoint)  # last: its on_train_begin restores the counters the others just reset
    if state.epoch < epochs:
        with warnings.catch_warnings():
            # A clip generator has no known length, and Keras says so when an epoch's data ends.
            warnings.filterwarnings("ignore", message="Your input ran out of data")
            model.fit(
                train,
                validation_data=val,
                epochs=epochs,
                initial_epoch=state.epoch,
                steps_per_epoch=steps if endless else None,
                callbacks=callbacks,
                shuffle=False,  # the tf.data pipelines shuffle
                verbose=0,
            )
    best = checkpoint_dir / (state.best_weights or BEST_WEIGHTS)
    if best.exists() and state.best_epoch and state.best_epoch != state.epoch:
        model.load_weights(best)
    return FitOutcome(
        history=list(state.history),
        epochs_run=state.epoch,
        best_epoch=state.best_epoch,
        resumed_from=resumed_from,
        stopped_early=bool(early.stopped_epoch),
        diverged_epoch=state.extra.get("diverged_epoch"),
    )
