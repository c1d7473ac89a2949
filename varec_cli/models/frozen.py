"""TensorFlow only: a varec model file's clip classifier frozen into one graph, cached on disk.

Why: `varec predict` is a short-lived process. Rebuilding a `.keras` model layer by layer (~1.1 s
for mobilenet_v2) and tracing it (~0.35 s) costs more than the inference itself. A frozen graph
(weights folded in as constants, control flow lowered, no variables) loads in ~0.07 s and runs
the same kernels: predictions match the Keras path to float rounding.

The graph is made from the Keras model the first time a model file is used for clip inference,
and cached in `weights.cache.compiled_dir()`, keyed by the model file's resolved path, size and
modification time, the TensorFlow version and FORMAT. A changed file gets a new key (and the
stale entry is removed, as are those of model files deleted since); a missing, corrupt or unusable
entry is rebuilt from the model file.

Only model files up to MAX_MODEL_BYTES are frozen. TensorFlow's graph optimiser copies a graph's
constants from pass to pass, so its set-up grows with the weights folded in; measured here (load +
first clip, cached graph vs Keras model): mobilenet_v2 (10 MB) 0.5 s vs 1.9 s, efficientnetv2-b0
(25 MB) 1.0 vs 3.0 s, but resnet50 (95 MB) 2.8 vs 2.7 s and resnet152v2 (236 MB) 7.0 vs 6.2 s,
with a first freeze costing 5-17 s more. Larger files keep the Keras model.

It relies on two TensorFlow internals (`convert_variables_to_constants_v2`, adding a FunctionDef to
the eager context); where they are missing or fail, callers fall back to the Keras model.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from varec_cli.weights.cache import compiled_dir, compiled_entries

FORMAT = 1
MAX_MODEL_BYTES = 48 * 2**20  # see the module docstring
SUFFIX = ".tfgraph"  # a serialized FunctionDefLibrary; beside it, <key>.json describes it

log = logging.getLogger(__name__)
_names = itertools.count()


def _tensorflow_version() -> str:
    from varec_cli.runtime import import_tensorflow

    return import_tensorflow().__version__


def worth_freezing(model_path: Path) -> bool:
    return Path(model_path).stat().st_size <= MAX_MODEL_BYTES


def file_identity(model_path: Path) -> dict:
    """What a cache entry is keyed on. Taken before the model file is read, so that a file replaced
    while it loads is never cached under the new file's identity."""
    model_path = Path(model_path)
    stat = model_path.stat()
    return {"model": str(model_path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _key(identity: dict) -> str:
    text = json.dumps({**identity, "tensorflow": _tensorflow_version(), "format": FORMAT}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def entry_paths(identity: dict) -> tuple[Path, Path]:
    """(graph file, description file) of a model file's cache entry, whether or not they exist."""
    stem = f"{Path(identity['model']).stem[:40]}-{_key(identity)}"
    return compiled_dir() / (stem + SUFFIX), compiled_dir() / (stem + ".json")


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
        context.context().add_function_def(fdef)
        self._name = fdef.signature.name

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        clips = np.ascontiguousarray(clips, dtype=np.uint8)
        (probabilities,) = tf.raw_ops.PartitionedCall(args=[clips], Tout=[tf.float32], f=self._name)
        return probabilities.numpy()


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
        if not description.is_file():
            return None
        info = json.loads(description.read_text())
        return FrozenClips(graph.read_bytes(), info["function"])
    except Exception as exc:  # a damaged entry is rebuilt, never fatal
        log.debug("compiled cache entry for %s unusable: %s", identity["model"], exc)
        return None


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

    if not tensorflow_backend() or not worth_freezing(model_path):
        return False
    from varec_cli.models.architecture import split_model

    identity = file_identity(model_path)
    encoder, head = split_model(model)
    return freeze_and_cache(identity, encoder, head, frames, height, width) is not None


def _write_entry(identity: dict, library_bytes: bytes, name: str) -> None:
    graph, description = entry_paths(identity)
    graph.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(graph, library_bytes)
    info = {**identity, "tensorflow": _tensorflow_version(), "format": FORMAT, "function": name}
    _atomic_write(description, json.dumps(info, indent=2).encode())  # the commit mark
    for other, model in compiled_entries().items():  # earlier versions of this file, files since deleted
        if other != description and (model == identity["model"] or not model or not Path(model).exists()):
            other.unlink(missing_ok=True)
            other.with_suffix(SUFFIX).unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
