"""TensorFlow only: a varec model file's clip classifier frozen into one graph, cached on disk.

Why: `varec predict` is a short-lived process. Rebuilding a `.keras` model layer by layer (~1.1 s
for mobilenet_v2) and tracing it (~0.35 s) costs more than the inference itself. A frozen graph
(weights folded in as constants, control flow lowered, no variables) loads in ~0.07 s and runs
the same kernels: predictions match the Keras path to float rounding.

The graph is made from the Keras model the first time a model file is used for clip inference,
and cached in `weights.cache.compiled_dir()`, keyed by the model file's resolved path, size,
inode, modification and change times (a copy that keeps the mtime still gets a new ctime), the
TensorFlow, Keras and varec versions, the device kinds TensorFlow sees (a graph traced where a GPU
is visible holds cuDNN kernels) and FORMAT. A changed file gets a new key (and the entries of its
earlier versions are removed, as are those of model files deleted since); a missing, corrupt or
unusable entry is rebuilt from the model file, and a graph that fails its first call is dropped
for the Keras model.

Only model files up to MAX_MODEL_BYTES are frozen. TensorFlow's graph optimiser copies a graph's
constants from pass to pass, so its set-up grows with the weights folded in; measured here (load +
first clip, cached graph vs Keras model): mobilenet_v2 (10 MB) 0.5 s vs 1.9 s, efficientnetv2-b0
(25 MB) 1.0 vs 3.0 s, but resnet50 (95 MB) 2.8 vs 2.7 s and resnet152v2 (236 MB) 7.0 vs 6.2 s,
with a first freeze costing 5-17 s more. Larger files keep the Keras model.

`with_constant_weights` folds a model's weights into other compiled calls the same way (a stream's
per-frame calls, `varec train`'s feature extraction).

It relies on two TensorFlow internals (`convert_variables_to_constants_v2`, adding a FunctionDef to
the eager context); where they are missing or fail, callers fall back to the Keras model.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import logging
import os
import threading
import weakref
import zlib
from pathlib import Path

import numpy as np

from varec_cli.files import file_version, write_atomically
from varec_cli.weights.cache import COMPILED_SUFFIX, compiled_dir, compiled_entries, remove_compiled_entry

FORMAT = 1
MAX_MODEL_BYTES = 48 * 2**20  # see the module docstring
# Weights folded into a compiled call as constants up to this size (see with_constant_weights), for
# the reason above: the graph optimiser's set-up grows with the constants.
FOLD_MAX_WEIGHT_BYTES = 48 * 2**20
FILE_FIELDS = ("model", "size", "mtime_ns", "ctime_ns", "inode")  # a model file version, see file_identity

log = logging.getLogger(__name__)
_names = itertools.count()
_loaded: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # key → FrozenClips in this process
_loaded_lock = threading.Lock()


class UnusableGraph(Exception):
    """A cached graph that cannot run here (its first call failed): use the Keras model instead."""


@functools.cache
def _environment() -> dict:
    """What, besides the model file, decides the graph a freeze produces (fixed for a process)."""
    from varec_cli import __version__
    from varec_cli.runtime import import_tensorflow

    tf = import_tensorflow()
    import keras

    devices = sorted({d.device_type for d in tf.config.list_physical_devices()})
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "varec": __version__, "devices": devices,
            "format": FORMAT}


def worth_freezing(model_path: Path) -> bool:
    return Path(model_path).stat().st_size <= MAX_MODEL_BYTES


def file_identity(model_path: Path) -> dict:
    """What a cache entry is keyed on. Taken before the model file is read, so that a file replaced
    while it loads is never cached under the new file's identity."""
    model_path = Path(model_path)
    return {"model": str(model_path.resolve()), **file_version(model_path)}


def _key(identity: dict) -> str:
    text = json.dumps({**identity, **_environment()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def entry_paths(identity: dict) -> tuple[Path, Path]:
    """(graph file, description file) of a model file's cache entry, whether or not they exist."""
    stem = f"{Path(identity['model']).stem[:40]}-{_key(identity)}"
    return compiled_dir() / (stem + COMPILED_SUFFIX), compiled_dir() / (stem + ".json")


class FrozenClips:
    """uint8 clips (B, frames, H, W, 3) → float32 probabilities (B, classes), one graph call."""

    def __init__(self, library_bytes: bytes, function_name: str):
        from tensorflow.core.framework import function_pb2
        from tensorflow.python.eager import context

        library = function_pb2.FunctionDefLibrary()
        library.ParseFromString(library_bytes)
        main = [f for f in library.function if f.signature.name == function_name]
        if len(library.function) != 1 or len(main) != 1:
            raise ValueError("expected a library of exactly the frozen function")
        # Graphs frozen in different processes can carry the same generated name: give each one
        # loaded into this process a name of its own.
        fdef = main[0]
        fdef.signature.name = f"varec_frozen_clips_{os.getpid()}_{next(_names)}"
        eager = context.context()
        eager.add_function_def(fdef)
        self._name = fdef.signature.name
        self._ran = False
        # The function (weights included) lives in TensorFlow's context until removed.
        weakref.finalize(self, _remove_function, eager, self._name)

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        clips = np.asarray(clips)
        if clips.dtype != np.uint8:
            raise ValueError(f"expected uint8 clips, got {clips.dtype}")
        try:
            (probabilities,) = tf.raw_ops.PartitionedCall(
                args=[np.ascontiguousarray(clips)], Tout=[tf.float32], f=self._name
            )
        except tf.errors.OpError as exc:
            if self._ran:
                raise
            raise UnusableGraph(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) from exc
        self._ran = True
        return probabilities.numpy()


def _remove_function(eager, name: str) -> None:
    try:
        eager.remove_function(name)
    except Exception:  # interpreter shutdown, or a context already gone
        pass


def with_constant_weights(function, signature, *, jit_compile: bool = False):
    """TensorFlow only: `function` (tensors of `signature` → tensors) as a concrete function with the
    variables it reads folded in as constants, where they total at most FOLD_MAX_WEIGHT_BYTES;
    `jit_compile`: compiled whole by XLA.

    A call that reads its weights from variables reads each of them on every call, and TensorFlow's
    graph optimiser cannot fold them into the operations that use them. With the weights as
    constants it does (a batch normalisation into its convolution, a bias and activation into one
    fused kernel), and an XLA call no longer takes each variable as an argument. Measured on 2 cores:
    MobileNetV2's encoder 18.9 → 11.7 ms a frame one at a time (a stream), 8.5 → 6.2 ms a frame in
    batches of 64 (`varec train` filling its feature cache); the scratch stream model (6 variables)
    under XLA 181 → 154 us, and its whole stream step (5 more) 209 → 169 us. The weights are read
    once, here: a call built this way keeps the weights the model had when it was built, which is
    all a stream session or a feature extraction needs. Where TensorFlow cannot fold them
    (`convert_variables_to_constants_v2` is internal), the call reads the variables as before.
    """
    from varec_cli.runtime import import_tensorflow

    tf = import_tensorflow()
    traced = tf.function(function, input_signature=signature).get_concrete_function()
    frozen = None
    if sum(int(np.prod(v.shape)) * v.dtype.size for v in traced.variables) <= FOLD_MAX_WEIGHT_BYTES:
        try:
            from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

            frozen = convert_variables_to_constants_v2(traced, lower_control_flow=False)  # XLA compiles loops, not their lowered form
        except Exception:  # an internal API: missing, or a graph it cannot convert
            pass
    if frozen is None:  # the call reads its variables
        if not jit_compile:
            return traced
        return tf.function(function, input_signature=signature, jit_compile=True).get_concrete_function()
    structure = traced.structured_outputs

    @tf.function(input_signature=signature, jit_compile=jit_compile)
    def run(*inputs):
        return tf.nest.pack_sequence_as(structure, frozen(*inputs), expand_composites=True)

    return run.get_concrete_function()


def freeze(encoder, head, frames: int, height: int, width: int) -> tuple[bytes, str]:
    """The clip → probabilities function of an (encoder, head) pair, frozen: (library bytes, name)."""
    from varec_cli.runtime import import_tensorflow

    tf = import_tensorflow()
    from tensorflow.core.framework import function_pb2
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    @tf.function
    def clips_to_probabilities(clips):
        batch = tf.shape(clips)[0]
        features = encoder(tf.reshape(clips, (-1, height, width, 3)), training=False)
        return head(tf.reshape(features, (batch, frames, -1)), training=False)

    concrete = clips_to_probabilities.get_concrete_function(tf.TensorSpec((None, frames, height, width, 3), tf.uint8))
    frozen = convert_variables_to_constants_v2(concrete)
    library = function_pb2.FunctionDefLibrary()
    library.function.extend(frozen.graph.as_graph_def().library.function)
    library.function.append(frozen.function_def)
    return library.SerializeToString(), frozen.function_def.signature.name


def load_cached(identity: dict) -> FrozenClips | None:
    """The cached frozen graph of the model file `identity` names, or None (no entry, or one that
    cannot be used)."""
    try:
        graph, description = entry_paths(identity)
        with _loaded_lock:
            frozen = _loaded.get(description.name)
            if frozen is None:
                if not description.is_file():
                    return None
                info = json.loads(description.read_text())
                library_bytes = graph.read_bytes()
                if zlib.crc32(library_bytes) != info["graph_crc32"]:  # flipped bits parse, and answer wrongly
                    raise ValueError("the graph's checksum does not match its description")
                frozen = _loaded[description.name] = FrozenClips(library_bytes, info["function"])
        return frozen
    except Exception as exc:  # a damaged entry is rebuilt, never fatal
        log.debug("compiled cache entry for %s unusable: %s", identity["model"], exc)
        return None


def discard(identity: dict) -> None:
    """Forget the cached graph of the model file `identity` names (one that cannot run here). Best
    effort on disk, as caching it was: a read-only cache keeps the entry, and every run falls back."""
    graph, description = entry_paths(identity)
    with _loaded_lock:
        _loaded.pop(description.name, None)
    with contextlib.suppress(OSError):
        remove_compiled_entry(description)


def freeze_and_cache(identity: dict, encoder, head, frames: int, height: int, width: int) -> FrozenClips | None:
    """Freeze, load and (best effort) cache; None when this TensorFlow cannot freeze the model."""
    try:
        library_bytes, name = freeze(encoder, head, frames, height, width)
        frozen = FrozenClips(library_bytes, name)
    except Exception as exc:
        log.debug("cannot freeze %s, using the Keras model: %s", identity["model"], exc)
        return None
    try:
        _write_entry(identity, library_bytes, name)
    except OSError as exc:  # a read-only cache still predicts, just without the speed-up next time
        log.debug("cannot write the compiled cache for %s: %s", identity["model"], exc)
    return frozen


def prepare(model_path: Path, model, frames: int, height: int, width: int) -> bool:
    """Cache the frozen graph of a model just saved to `model_path` (what `varec train` does), so that
    the first clip inference with the file already starts from it. False when not worth it or not
    possible (another backend, a large file, a model TensorFlow cannot freeze)."""
    from varec_cli.runtime import tensorflow_backend

    try:
        if not tensorflow_backend() or not worth_freezing(model_path):
            return False
        from varec_cli.models.architecture import split_model

        identity = file_identity(model_path)
        encoder, head = split_model(model)
        return freeze_and_cache(identity, encoder, head, frames, height, width) is not None
    except Exception as exc:  # the model is saved already: a missing graph only costs the first predict
        log.debug("cannot prepare the compiled graph of %s: %s", model_path, exc)
        return False


def _write_entry(identity: dict, library_bytes: bytes, name: str) -> None:
    graph, description = entry_paths(identity)
    graph.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(graph, library_bytes)
    info = {**identity, **_environment(), "function": name, "graph_crc32": zlib.crc32(library_bytes)}
    write_atomically(description, json.dumps(info, indent=2).encode())  # the commit mark
    for other, entry in compiled_entries().items():
        model = entry["model"]
        same_file = model == identity["model"]
        older_version = same_file and any(entry.get(f) != identity[f] for f in FILE_FIELDS)
        # Earlier versions of this file and files since deleted go; the same file's graphs for other
        # TensorFlow/Keras versions or devices stay (environments sharing one cache).
        if other != description and (older_version or not model or not Path(model).exists()):
            remove_compiled_entry(other)

