"""Getting clips off the disk fast: parallel decoding and the backbone-feature cache.

Decoding runs in a small pool of threads (OpenCV releases the GIL while it decodes), with a bounded
window of clips in flight, so the consumer (the accelerator) never waits on OpenCV while memory stays
bounded. Results come back in input order, which keeps runs reproducible.

Every clip is sampled by `video.reader.read_clips`, the sampler `varec predict` uses, so a model
sees in training exactly what it sees in use.

With a frozen frame encoder, `FeatureCache` keeps each clip's per-frame feature vectors on disk,
keyed by the file's identity (path, size, mtime) and by everything that decides the features
(backbone, a hash of the encoder's weights, frames, size, sampling, precision). A second run over the
same videos decodes nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from varec_cli.errors import VarecError
from varec_cli.files import file_version
from varec_cli.weights.cache import FEATURES_FOLDER

CACHE_FORMAT = 3  # 2: frames from the halving to_model_frame (features of big frames changed); 3: its pair-averaging rewrite
SAMPLING = "uniform"


# --- instrumentation ---------------------------------------------------------------------------


class DecodeCounter:
    """Counts the videos this process asked OpenCV to decode (thread-safe): what tests observe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def add(self, n: int = 1) -> None:
        with self._lock:
            self._count += n

    @property
    def count(self) -> int:
        with self._lock:
            return self._count


DECODED = DecodeCounter()


def skip_message(path: Path, error: str) -> str:
    """`skipped <path>: <why>`, without repeating the path when the error already starts with it."""
    return f"skipped {error}" if str(error).startswith(str(path)) else f"skipped {path}: {error}"


def default_workers() -> int:
    """Decode threads: one per core, at least 2, at most 8 (beyond that OpenCV contends for memory)."""
    from varec_cli.video.reader import usable_cores  # the cores decode_videos shares among them

    return max(2, min(8, usable_cores()))


# --- parallel decoding -------------------------------------------------------------------------


@dataclass
class Decoded:
    """One video's outcome: its clips (views, frames, H, W, 3) uint8 and duration, or an error."""

    index: int
    path: Path
    frames: np.ndarray | None = None
    seconds: float = 0.0
    error: str | None = None
    warning: str | None = None  # decoded, but well short of what its container states (cut_short_warning)


def _decode_one(index: int, path: Path, frames: int, size: tuple[int, int], views: int, cores: int) -> Decoded:
    from varec_cli.video.reader import cut_short_warning, read_clips

    DECODED.add()
    try:
        clips = read_clips(path, frames, size, views=views, cores=cores)
        warning = cut_short_warning(path, clips.frame_count, clips.fps, "sampled from", stated=clips.stated)
    except VarecError as exc:
        return Decoded(index, path, error=str(exc))
    except Exception as exc:  # OpenCV can raise its own errors on corrupt streams: never crash an epoch
        return Decoded(index, path, error=f"{path}: cannot decode ({type(exc).__name__}: {exc})")
    return Decoded(index, path, frames=clips.frames, seconds=float(clips.duration), warning=warning)


def decode_videos(
    paths: Sequence[Path],
    frames: int,
    size: tuple[int, int],
    *,
    views: int = 1,
    workers: int | None = None,
    in_flight: int | None = None,
) -> Iterator[Decoded]:
    """Decode `paths` with `workers` threads; yields a Decoded per path, in input order.

    At most `in_flight` videos (default 2 x workers) are decoded or waiting at any time, which bounds
    memory however long the list is. Each video's read may keep its share of the cores busy
    (read_clips' `cores`), so the threads together do not outnumber them.
    """
    from varec_cli.video.reader import usable_cores

    workers = workers or default_workers()
    cores = max(1, usable_cores() // workers)
    in_flight = max(in_flight or 2 * workers, workers)
    if not paths:
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="varec-decode") as pool:
        pending: deque = deque()
        queued = iter(enumerate(paths))
        try:
            for index, path in queued:
                pending.append(pool.submit(_decode_one, index, Path(path), frames, size, views, cores))
                if len(pending) >= in_flight:
                    break
            while pending:
                result = pending.popleft().result()
                nxt = next(queued, None)
                if nxt is not None:
                    pending.append(pool.submit(_decode_one, nxt[0], Path(nxt[1]), frames, size, views, cores))
                yield result
        finally:
            for future in pending:
                future.cancel()


# --- in-memory clips for end-to-end training -----------------------------------------------------


@dataclass
class ClipSource:
    """Labelled clips for training the whole network (trainable backbone), decoded on demand.

    Clips are kept in memory while their total stays under `memory_limit` bytes, so small datasets are
    decoded once; large ones are decoded again each epoch by the worker threads. Videos that fail are
    remembered, skipped, and reported once through `on_skip`; videos that decode well short of what
    their containers state are used, and reported once through `on_warning`.
    """

    items: list[tuple[Path, int]]
    frames: int
    size: tuple[int, int]
    workers: int | None = None
    memory_limit: int = 1 << 30
    on_skip: Callable[[Path, str], None] | None = None
    on_warning: Callable[[str], None] | None = None
    seconds: dict[Path, float] = field(default_factory=dict)
    failed: dict[Path, str] = field(default_factory=dict)
    warned: set[Path] = field(default_factory=set)
    _memory: dict[Path, np.ndarray] = field(default_factory=dict, repr=False)
    _memory_bytes: int = 0

    def clips(self, order: Iterable[int]) -> Iterator[tuple[np.ndarray, int]]:
        """(clip (frames, H, W, 3) uint8, label) for the items in `order`, skipping failed videos."""
        order = [i for i in order if self.items[i][0] not in self.failed]
        todo = [self.items[i][0] for i in order if self.items[i][0] not in self._memory]
        decoded = decode_videos(todo, self.frames, self.size, workers=self.workers)
        for i in order:
            path, label = self.items[i]
            clip = self._memory.get(path)
            if clip is None:
                result = next(decoded)
                assert result.path == path
                if result.error is not None:
                    self.failed[path] = result.error
                    if self.on_skip:
                        self.on_skip(path, result.error)
                    continue
                clip = result.frames[0]
                self.seconds[path] = result.seconds
                if result.warning is not None and path not in self.warned:
                    self.warned.add(path)
                    if self.on_warning:
                        self.on_warning(result.warning)
                if self._memory_bytes + clip.nbytes <= self.memory_limit:
                    self._memory[path] = clip
                    self._memory_bytes += clip.nbytes
            yield clip, label

    def any_readable(self) -> bool:
        """Whether one of the videos decodes (tried in order until one does; that one is kept like any
        decoded clip): a validation part none of whose videos decodes is no validation at all."""
        clips = self.clips(range(len(self.items)))
        try:
            return next(clips, None) is not None
        finally:
            clips.close()

    def batches(self, batch_size: int, *, order) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """One epoch of (clips (B, frames, H, W, 3) uint8, labels (B,) int32) batches, the items in
        `order` (indices into `items`: tf_fit.epoch_order's for training)."""
        clips, labels = [], []
        for clip, label in self.clips([int(i) for i in order]):
            clips.append(clip)
            labels.append(label)
            if len(clips) == batch_size:
                yield np.stack(clips), np.asarray(labels, np.int32)
                clips, labels = [], []
        if clips:
            yield np.stack(clips), np.asarray(labels, np.int32)


# --- the backbone-feature cache ------------------------------------------------------------------


def _digest(data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def weights_digest(model) -> str:
    """sha256 over a model's weight arrays, in order: identifies what its features mean."""
    sha = hashlib.sha256()
    for array in model.get_weights():
        array = np.ascontiguousarray(array)
        sha.update(f"{array.dtype.str}{array.shape}".encode())
        sha.update(array.tobytes())
    return sha.hexdigest()


def frame_encoder_function(encoder):
    """`frames (N, H, W, 3) uint8 → features (N, D)` with a frame encoder. The uint8 frames go in as
    they are: the model casts them inside its graph, and a host-side float32 copy cost more than
    the scratch CNN itself. On TensorFlow a compiled call with the weights folded in
    (tf_calls.tensorflow_frame_encoder); on other backends the model's own predict step."""
    from varec_cli.runtime import tensorflow_backend

    if tensorflow_backend():
        from varec_cli.models.tf_calls import tensorflow_frame_encoder

        return tensorflow_frame_encoder(encoder)

    def encode(frames: np.ndarray) -> np.ndarray:
        return np.asarray(encoder.predict_on_batch(frames))

    return encode


def file_identity(path: Path) -> dict:
    """What makes a video 'the same file' for the cache: its absolute path and its version."""
    return {"path": str(path.resolve()), **file_version(path)}


@dataclass
class CachedClip:
    features: np.ndarray | None  # float32 (frames, feature_dim)
    seconds: float = 0.0
    error: str | None = None
    warning: str | None = None  # Decoded.warning, kept so that every run tells it


class FeatureCache:
    """Per-clip backbone features on disk: `<cache>/features/<encoder key>/<xx>/<clip key>.npz`.

    A clip that failed to decode is remembered too (`.fail.json`), so it is not decoded again until the
    file changes (not one this process could not read: fixing a permission changes no mtime). Entries
    are written to a temp file and renamed: a killed run leaves no half entry. An entry that cannot be
    read back (damaged by a crash or a full disk) is recomputed; a cache that cannot be written is
    worked around, its error kept in `write_error` for the caller to tell.
    """

    def __init__(
        self, root: Path, *, backbone: str, weights: str, frames: int, size: tuple[int, int], precision: str
    ):
        self.identity = {
            "format": CACHE_FORMAT,
            "backbone": backbone,
            "weights_sha256": weights,
            "frames": frames,
            "size": list(size),
            "sampling": SAMPLING,
            "views": 1,
            "precision": precision,
        }
        key = _digest(self.identity)[:16]
        self.directory = Path(root) / FEATURES_FOLDER / f"{backbone}-{frames}f-{size[0]}x{size[1]}-{key}"
        self.hits = 0  # clips whose features came from the cache
        self.misses = 0  # clips decoded this run, those that failed included
        self.failed = 0  # clips that could not be decoded: this run, or remembered from an earlier one
        self.failed_this_run = 0  # of those, the misses
        self.write_error: str | None = None

    def _entry(self, path: Path) -> Path:
        key = _digest(file_identity(path))[:32]
        return self.directory / key[:2] / key

    def get(self, path: Path) -> CachedClip | None:
        try:
            entry = self._entry(path)
        except OSError:
            return None
        npz = entry.with_suffix(".npz")
        if npz.exists():
            try:
                with np.load(npz) as data:
                    features = data["features"].astype(np.float32)
                    seconds = float(data["seconds"])
                    said = str(data["warning"])  # KeyError: an entry from before warnings were kept
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # a damaged file
                return None  # recompute it
            return CachedClip(features, seconds, warning=f"{path}: {said}" if said else None)
        fail = entry.with_suffix(".fail.json")
        if fail.exists():
            try:
                error = json.loads(fail.read_text())["error"]
            except (OSError, ValueError, KeyError, TypeError):
                return None
            return CachedClip(None, error=str(error))
        return None

    def _write(self, target: Path, data: bytes) -> None:
        from varec_cli.files import write_atomically

        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, data)
        except OSError as exc:  # read-only or full: training goes on, uncached
            self.write_error = self.write_error or (exc.strerror or str(exc))

    def put(self, path: Path, features: np.ndarray, seconds: float, warning: str | None = None) -> None:
        """`warning` is kept without the path it starts with: a later run may name the file otherwise
        (relative to another folder), and get() puts that name in front."""
        said = (warning or "").removeprefix(f"{path}: ")
        entry = io.BytesIO()
        np.savez(entry, features=np.asarray(features, np.float16), seconds=np.float64(seconds), warning=np.str_(said))
        self._write(self._entry(path).with_suffix(".npz"), entry.getvalue())

    def put_failure(self, path: Path, error: str) -> None:
        if not os.access(path, os.R_OK):
            return  # vanished or unreadable: a fixed permission would change nothing the key sees
        try:
            target = self._entry(path).with_suffix(".fail.json")
        except OSError:
            return  # the file vanished: nothing to key the failure on
        self._write(target, json.dumps({"error": error}).encode("utf-8"))


@dataclass
class FeatureSet:
    """Features of a list of clips, with the clips that were skipped taken out."""

    features: np.ndarray  # float16 (N, frames, feature_dim): half the memory, plenty of precision
    labels: np.ndarray  # int32 (N,)
    seconds: np.ndarray  # float64 (N,): duration of each source video
    skipped: list[tuple[Path, str]]
    decoded: int  # videos decoded (cache misses)


def extract_features(
    items: Sequence[tuple[Path, int]],
    encode: Callable[[np.ndarray], np.ndarray],
    cache: FeatureCache,
    *,
    frames: int,
    size: tuple[int, int],
    feature_dim: int,
    workers: int | None = None,
    batch_clips: int = 8,
    on_progress: Callable[[int], None] | None = None,
    on_skip: Callable[[Path, str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> FeatureSet:
    """Features for every clip: from the cache, else decoded (in parallel) and encoded, then cached.

    `encode` maps frames (N, H, W, 3) uint8 to features (N, feature_dim); it is called on batches of
    `batch_clips` clips while the worker threads decode the next ones. A clip that decodes well short
    of what its container states is used, and its warning goes to `on_warning`, from the cache too.
    """
    n = len(items)
    features = np.zeros((n, frames, feature_dim), np.float16)
    seconds = np.zeros(n, np.float64)
    ok = np.zeros(n, bool)
    skipped: list[tuple[Path, str]] = []

    def skip(path: Path, error: str) -> None:
        skipped.append((path, error))
        if on_skip:
            on_skip(path, error)

    missing: list[int] = []
    for index, (path, _) in enumerate(items):
        cached = cache.get(Path(path))
        if cached is None or (cached.error is None and cached.features.shape != (frames, feature_dim)):
            missing.append(index)  # not there, or damaged into another shape: computed (again)
            continue
        if cached.error is not None:
            cache.failed += 1
            skip(Path(path), cached.error)
        else:
            cache.hits += 1
            features[index] = cached.features
            seconds[index] = cached.seconds
            ok[index] = True
            if cached.warning is not None and on_warning:
                on_warning(cached.warning)
        if on_progress:
            on_progress(1)

    pending: list[tuple[int, Decoded]] = []  # (index in items, its decoded clip)

    def flush() -> None:
        if not pending:
            return
        batch = np.concatenate([result.frames[0] for _, result in pending])  # (B*frames, H, W, 3)
        encoded = np.asarray(encode(batch), np.float32).reshape(len(pending), frames, feature_dim)
        for (index, result), vector in zip(pending, encoded):
            features[index] = vector
            seconds[index] = result.seconds
            ok[index] = True
            cache.put(result.path, vector, result.seconds, result.warning)
        if on_progress:
            on_progress(len(pending))
        pending.clear()

    paths = [Path(items[i][0]) for i in missing]
    for index, result in zip(missing, decode_videos(paths, frames, size, workers=workers)):
        cache.misses += 1
        if result.error is not None:
            cache.failed += 1
            cache.failed_this_run += 1
            cache.put_failure(result.path, result.error)
            skip(result.path, result.error)
            if on_progress:
                on_progress(1)
            continue
        if result.warning is not None and on_warning:
            on_warning(result.warning)
        pending.append((index, result))
        if len(pending) >= batch_clips:
            flush()
    flush()

    labels = np.asarray([label for _, label in items], np.int32)
    return FeatureSet(features[ok], labels[ok], seconds[ok], skipped, decoded=len(missing))
