"""Writing videos: the codec follows the extension, and output appears only when complete."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from varec_cli.errors import VideoError
from varec_cli.files import temp_file
from varec_cli.video.quiet import native_messages_silenced

# Tried in order. H.264 ('avc1') is what every player opens, but pip's OpenCV wheels usually have
# no H.264 encoder; MPEG-4 Part 2 ('mp4v') always works. AVI: Motion-JPEG, then Xvid.
CODECS_BY_EXTENSION = {".mp4": ("avc1", "mp4v"), ".m4v": ("avc1", "mp4v"), ".avi": ("MJPG", "XVID")}
DEFAULT_FPS = 25.0  # assumed (annotate, stream) and written when the input does not say


def video_suffix(path: str | os.PathLike) -> str:
    """The extension that picks the container, lower case: `.mp4` for `a.MP4`, and for `.mp4` alone
    (a hidden file, which Path.suffix says has none)."""
    name = Path(path).name.lower()
    return Path(name).suffix or (name if name.startswith(".") else "")


def codecs_for(path: str | os.PathLike) -> tuple[str, ...]:
    suffix = video_suffix(path)
    try:
        return CODECS_BY_EXTENSION[suffix]
    except KeyError:
        allowed = ", ".join(sorted(CODECS_BY_EXTENSION))
        if not suffix:
            raise VideoError(f"{path}: no extension to choose the video format by; use one of {allowed}") from None
        raise VideoError(f"{path}: unsupported output extension {suffix!r}; use one of {allowed}") from None


def same_file(a: Path, b: Path) -> bool:
    """The same path, or two names of one file (a link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_writable_file(output: str | os.PathLike, *inputs: str | os.PathLike) -> Path:
    """Refuse, before any work, an output file that is an input, a directory, or cannot be written."""
    output = Path(output)
    for source in inputs:
        if same_file(output, Path(source)):
            raise VideoError(f"{output}: the output would overwrite the input {source}; choose another file name")
    if output.is_dir():
        raise VideoError(f"{output}: is a directory")
    directory = output.parent
    if not directory.is_dir():
        raise VideoError(f"{output}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise VideoError(f"{output}: directory {directory} is not writable")
    if output.exists() and not os.access(output, os.W_OK):
        raise VideoError(f"{output}: file exists and is not writable")
    return output


def check_output_path(output: str | os.PathLike, *inputs: str | os.PathLike) -> Path:
    """Refuse, before any work, an output video with an unknown extension, that would overwrite an
    input, or cannot be written."""
    if str(output).endswith(("/", os.sep)) or Path(output).is_dir():
        raise VideoError(f"{output}: names a folder; give the video's file name, e.g. {Path(output) / 'out.mp4'}")
    output = Path(output)
    codecs_for(output)
    return check_writable_file(output, *inputs)


def encoded_size(height: int, width: int) -> tuple[int, int]:
    """The (height, width) OpenCV's FFmpeg writer really stores: it rounds odd sizes down to even."""
    return height - height % 2, width - width % 2


def check_encodable(source, height: int, width: int) -> None:
    """Refuse frames too small for the encoder at once: an odd side is rounded down, and 1 becomes 0."""
    if min(encoded_size(height, width)) < 2:
        raise VideoError(f"{source}: its {width}x{height} frames are too small to encode (the least is 2x2)")


def square_pixels_warning(
    source, height: int, width: int, pixel_aspect: tuple[int, int], output: str | os.PathLike
) -> str | None:
    """What to tell a user whose video has non-square pixels: OpenCV's writer stores square ones, so
    the output shows narrower or wider than the input (the frames themselves are the same)."""
    import shlex

    num, den = pixel_aspect
    if num == den:
        return None
    shown = f"{round(width * num / den)}x{height}"
    written_height, written_width = encoded_size(height, width)
    return (
        f"{source}: its pixels are not square ({num}:{den}): players show it {shown}, but the output's are "
        f"square and it shows {written_width}x{written_height}; "
        f"`ffmpeg -i {shlex.quote(str(output))} -vf setsar={num}/{den} -c:v libx264 fixed.mp4` restores its shape"
    )


def odd_size_warning(source, height: int, width: int) -> str | None:
    """What to tell a user whose video of (height, width) the writer will store a pixel smaller."""
    written = encoded_size(height, width)
    if written == (height, width):
        return None
    return f"{source}: {width}x{height} has an odd side; the encoder writes {written[1]}x{written[0]}"


class AtomicVideoWriter:
    """A cv2.VideoWriter on a temp file beside `path`, renamed onto `path` only on success.

    A failure or Ctrl-C inside the `with` block leaves neither `path` nor the temp file behind (an
    existing `path` is left as it was). `size` is (height, width). After the block, `codec` is the
    FourCC used and `frames_written` the count.
    """

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else DEFAULT_FPS
        self.height, self.width = int(size[0]), int(size[1])
        check_encodable(self.path, self.height, self.width)
        self.codec: str | None = None
        self.frames_written = 0
        self._writer = None
        self._tmp: Path | None = None

    @property
    def temp_path(self) -> Path | None:
        return self._tmp

    def __enter__(self) -> AtomicVideoWriter:
        import cv2

        candidates = codecs_for(self.path)
        try:
            self._tmp = temp_file(self.path.parent, prefix=f".{self.path.stem}.", suffix=video_suffix(self.path))
        except OSError as exc:
            raise VideoError(f"{self.path}: cannot create a file beside it ({exc.strerror})") from None
        try:
            for i, codec in enumerate(candidates):
                with native_messages_silenced(i < len(candidates) - 1):
                    writer = cv2.VideoWriter(
                        str(self._tmp), cv2.VideoWriter_fourcc(*codec), self.fps, (self.width, self.height)
                    )
                if writer.isOpened():
                    self._writer, self.codec = writer, codec
                    return self
                writer.release()
            raise VideoError(f"{self.path}: OpenCV cannot encode video here (tried {', '.join(candidates)})")
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise

    def write(self, frame_bgr: np.ndarray) -> None:
        if self._writer is None:
            raise RuntimeError("AtomicVideoWriter.write outside its `with` block")
        if frame_bgr.shape[:2] != (self.height, self.width) or frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
            raise ValueError(f"frame shape {frame_bgr.shape} differs from the writer's ({self.height}, {self.width}, 3)")
        frame = np.ascontiguousarray(frame_bgr, dtype=np.uint8)
        try:
            self._writer.write(frame)
        except KeyboardInterrupt:
            # Python raises a pending Ctrl-C as a C call returns, never inside OpenCV's write: a
            # KeyboardInterrupt here comes after the frame went in, and the count must say so.
            self.frames_written += 1
            raise
        self.frames_written += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._writer is not None:
                self._writer.release()
                self._writer = None
            if exc_type is not None:
                return
            if self.frames_written == 0:
                raise VideoError(f"{self.path}: no frame to write")
            if self._tmp.stat().st_size == 0:
                raise VideoError(f"{self.path}: the encoder wrote nothing (disk full?)")
            if self.path.exists():  # a replaced file keeps its permissions
                os.chmod(self._tmp, self.path.stat().st_mode & 0o777)
            os.replace(self._tmp, self.path)
        finally:
            if self._tmp is not None and self._tmp.exists():
                self._tmp.unlink(missing_ok=True)
