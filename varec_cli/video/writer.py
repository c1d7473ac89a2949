"""Writing videos: the codec follows the extension, and output appears only when complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from varec_cli.errors import VideoError

# Tried in order. H.264 ('avc1') is what every player opens, but pip's OpenCV often cannot encode
# it; MPEG-4 Part 2 ('mp4v') always can. AVI: Motion-JPEG, then Xvid.
CODECS_BY_EXTENSION = {".mp4": ("avc1", "mp4v"), ".m4v": ("avc1", "mp4v"), ".avi": ("MJPG", "XVID")}


def codecs_for(path: str | os.PathLike) -> tuple[str, ...]:
    suffix = Path(path).suffix.lower()
    try:
        return CODECS_BY_EXTENSION[suffix]
    except KeyError:
        allowed = ", ".join(sorted(CODECS_BY_EXTENSION))
        raise VideoError(f"{path}: unsupported output extension {suffix or '(none)'!r}; use one of {allowed}") from None


def check_output_path(output: str | os.PathLike, *inputs: str | os.PathLike) -> Path:
    """Refuse, before any work, an output that would overwrite an input, or cannot be written."""
    output = Path(output)
    codecs_for(output)
    for source in inputs:
        source = Path(source)
        same = output.resolve() == source.resolve()
        if not same and output.exists() and source.exists():
            same = os.path.samefile(output, source)
        if same:
            raise VideoError(f"{output}: the output would overwrite the input video; choose another file name")
    directory = output.parent if str(output.parent) else Path(".")
    if not directory.is_dir():
        raise VideoError(f"{output}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise VideoError(f"{output}: directory {directory} is not writable")
    if output.is_dir():
        raise VideoError(f"{output}: is a directory")
    return output


@contextlib.contextmanager
def _quiet_stderr(enabled: bool):
    """Silence FFmpeg's C-level chatter while probing an encoder that may be missing."""
    if not enabled:
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class AtomicVideoWriter:
    """A cv2.VideoWriter on a temp file beside `path`, renamed onto `path` only on success.

    A failure or Ctrl-C inside the `with` block leaves no half-written output behind.
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else 25.0
        self.width, self.height = size[1], size[0]  # size is (height, width)
        self.codec: str | None = None
        self.frames_written = 0
        self._writer = None
        self._tmp: Path | None = None

    def __enter__(self) -> AtomicVideoWriter:
        import cv2

        candidates = codecs_for(self.path)
        fd, name = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=self.path.suffix, dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(name)
        for i, codec in enumerate(candidates):
            with _quiet_stderr(i < len(candidates) - 1):
                writer = cv2.VideoWriter(
                    str(self._tmp), cv2.VideoWriter_fourcc(*codec), self.fps, (self.width, self.height)
                )
            if writer.isOpened():
                self._writer, self.codec = writer, codec
                return self
            writer.release()
        self._tmp.unlink(missing_ok=True)
        raise VideoError(f"{self.path}: OpenCV cannot encode video here (tried {', '.join(candidates)})")

    def write(self, frame_bgr: np.ndarray) -> None:
        if frame_bgr.shape[0] != self.height or frame_bgr.shape[1] != self.width:
            raise ValueError("frame size differs from the writer's")
        self._writer.write(np.ascontiguousarray(frame_bgr))
        self.frames_written += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._writer is not None:
            self._writer.release()
        if exc_type is None and self.frames_written > 0:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)
            if exc_type is None:
                raise VideoError(f"{self.path}: no frame to write")
