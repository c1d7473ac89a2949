"""Reading clips: THE frame sampler and the decode strategies behind it (the hot path).

Every consumer (predict, annotate, stream, training, evaluation) samples with
`sample_frame_indices` and turns decoded BGR frames into model input with `to_model_frame`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from varec_cli.errors import VideoError

# Seeking costs a keyframe search plus decoding up to the target, so it only pays off when the
# sampled frames are far apart. Measured on a 720p H.264 clip (132 frames, 16 samples, gap ~8):
# grab+retrieve 0.13-0.18 s, read-all 0.35-0.44 s, seek-per-sample 1.06 s.
SEEK_MIN_GAP = 96


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frame_count: int  # from the container header; may be 0 or wrong
    fps: float
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


@dataclass
class Clips:
    """`views` clips of `num_frames` model-ready RGB frames each, from one video."""

    frames: np.ndarray  # uint8 (views, num_frames, H, W, 3), RGB
    indices: np.ndarray  # int (views, num_frames): the source frame of each
    frame_count: int  # frames actually in the video (header corrected when it lied)
    fps: float

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


def _open(path: Path):
    import cv2

    path = Path(path)
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if path.is_dir():
        raise VideoError(f"{path}: is a directory, not a video file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: file is empty")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"{path}: OpenCV cannot open this file as a video")
    return cap


def _capture_info(path: Path, cap) -> VideoInfo:
    import cv2

    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    if not np.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 0.0
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    return VideoInfo(
        path=Path(path),
        frame_count=max(count, 0),
        fps=fps,
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
    )


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """What the container says about a video (frame count may be wrong; see read_clips)."""
    cap = _open(Path(path))
    try:
        return _capture_info(Path(path), cap)
    finally:
        cap.release()


def sample_frame_indices(
    total_frames: int, num_frames: int, *, views: int = 1, start: int = 0, end: int | None = None
) -> np.ndarray:
    """Indices of `num_frames` frames spread uniformly over frames [start, end), first to last.

    Returns an int array (views, num_frames), each row non-decreasing (temporal order). A range shorter
    than `num_frames` repeats frames rather than padding with frames the model never saw. With
    several views, each spans nearly the whole range, shifted by a fraction of the sampling step, so
    the views interleave (a deterministic multi-view test, not random crops).
    """
    if num_frames < 1:
        raise ValueError("num_frames must be >= 1")
    if views < 1:
        raise ValueError("views must be >= 1")
    end = total_frames if end is None else min(end, total_frames)
    if total_frames < 1 or end <= start:
        raise ValueError(f"empty frame range [{start}, {end}) of a {total_frames}-frame video")
    last = end - 1
    span = last - start
    step = span / (num_frames - 1) if num_frames > 1 else float(span)
    rows = []
    for view in range(views):
        if views == 1 or span == 0:
            lo, hi = float(start), float(last)
        else:
            shift = step * view / views
            lo = start + shift
            hi = last - step * (views - 1 - view) / views
        if num_frames == 1:
            positions = np.array([(lo + hi) / 2.0])
        else:
            positions = np.linspace(lo, hi, num_frames)
        rows.append(np.clip(np.floor(positions + 0.5), start, last).astype(np.int64))
    return np.stack(rows)


def to_model_frame(frame_bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """BGR frame from OpenCV → RGB uint8 at (height, width): the one frame-preparation path."""
    import cv2

    height, width = size
    if frame_bgr.shape[0] != height or frame_bgr.shape[1] != width:
        shrinking = frame_bgr.shape[0] > height or frame_bgr.shape[1] > width
        frame_bgr = cv2.resize(
            frame_bgr, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        )
    return cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2RGB)


def _decode_sequential(cap, wanted: np.ndarray, size) -> tuple[dict[int, np.ndarray], int, bool]:
    """Grab every frame up to the last wanted one, retrieving (decoding to pixels) only wanted ones.

    Returns (frames by index, frames grabbed, whether the video has more frames after the last wanted).
    """
    wanted_set = set(int(i) for i in np.ravel(wanted))
    last_wanted = int(wanted.max())
    frames: dict[int, np.ndarray] = {}
    index = 0
    while index <= last_wanted:
        if not cap.grab():
            return frames, index, False
        if index in wanted_set:
            ok, frame = cap.retrieve()
            if ok and frame is not None:
                frames[index] = to_model_frame(frame, size)
        index += 1
    more = cap.grab()  # one extra grab tells whether the header under-counted
    return frames, index, more


def _decode_seeking(cap, wanted: np.ndarray, size) -> dict[int, np.ndarray]:
    import cv2

    frames: dict[int, np.ndarray] = {}
    for index in sorted(set(int(i) for i in np.ravel(wanted))):
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
        if ok and frame is not None:
            frames[index] = to_model_frame(frame, size)
    return frames


def count_frames(path: str | os.PathLike) -> int:
    """Frames actually decodable, by grabbing them all (for files whose header count is 0 or wrong)."""
    cap = _open(Path(path))
    try:
        n = 0
        while cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def choose_strategy(frame_count: int, indices: np.ndarray) -> str:
    """'seek' when sampled frames are far apart in a long video, else 'grab' (sequential)."""
    unique = np.unique(indices)
    if len(unique) < 2:
        return "grab"
    mean_gap = frame_count / len(unique)
    return "seek" if mean_gap >= SEEK_MIN_GAP else "grab"


def read_clips(
    path: str | os.PathLike,
    num_frames: int,
    size: tuple[int, int],
    *,
    views: int = 1,
    strategy: str = "auto",
) -> Clips:
    """Decode `views` uniformly sampled clips of `num_frames` frames, resized to `size` (height, width).

    Header frame counts lie: 0, too many or too few. The sequential pass detects both directions
    and, when it does, the clip is re-sampled from the true count (a second pass over the file).
    """
    import cv2

    path = Path(path)
    cap = _open(path)
    try:
        info = _capture_info(path, cap)
        total = info.frame_count
        if total <= 0:
            cap.release()
            total = count_frames(path)
            if total == 0:
                raise VideoError(f"{path}: no decodable frame in this video")
            cap = _open(path)
        indices = sample_frame_indices(total, num_frames, views=views)
        mode = choose_strategy(total, indices) if strategy == "auto" else strategy
        if mode == "seek":
            frames = _decode_seeking(cap, indices, size)
            cap.set(cv2.CAP_PROP_POS_FRAMES, total)
            header_right = len(frames) == len(np.unique(indices)) and not cap.grab()
        elif mode == "grab":
            frames, grabbed, more = _decode_sequential(cap, indices, size)
            header_right = grabbed == total and not more
        else:
            raise ValueError(f"unknown decode strategy {strategy!r}")
    finally:
        cap.release()

    if not header_right:
        total = count_frames(path)
        if total == 0:
            raise VideoError(f"{path}: no decodable frame in this video")
        indices = sample_frame_indices(total, num_frames, views=views)
        cap = _open(path)
        try:
            frames, _, _ = _decode_sequential(cap, indices, size)
        finally:
            cap.release()

    missing = [int(i) for i in np.unique(indices) if int(i) not in frames]
    if missing:
        if not frames:
            raise VideoError(f"{path}: no decodable frame in this video")
        # A frame that grabs but fails to decode: fall back to the nearest decoded one.
        have = np.array(sorted(frames))
        for i in missing:
            frames[i] = frames[int(have[np.abs(have - i).argmin()])]
    stacked = np.stack([np.stack([frames[int(i)] for i in row]) for row in indices])
    return Clips(frames=stacked, indices=indices, frame_count=total, fps=info.fps)


def iter_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Every frame of a video in order, as OpenCV BGR arrays, one at a time (constant memory)."""
    cap = _open(Path(path))
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            yield frame
    finally:
        cap.release()
