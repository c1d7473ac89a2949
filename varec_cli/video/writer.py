"""Writing videos: the codec follows the extension, and output appears only when complete."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from varec_cli.errors import VideoError
from varec_cli.files import LINK_LOOP, missing_reason, temp_file
from varec_cli.video.quiet import native_messages_silenced

# Tried in order. H.264 is what every player, browser and phone opens: 'h264' is PyAV's libx264
# (PyAV's wheels on PyPI carry it), 'avc1' OpenCV's H.264 encoder, which pip's OpenCV wheels lack;
# MPEG-4 Part 2 ('mp4v') always works. AVI: Motion-JPEG, then Xvid (OpenCV's).
CODECS_BY_EXTENSION = {".mp4": ("h264", "avc1", "mp4v"), ".m4v": ("h264", "avc1", "mp4v"), ".avi": ("MJPG", "XVID")}
# The codecs above that PyAV encodes, with its encoder and settings: x264's 'superfast' preset at
# CRF 20 encodes 720p at 0.58x the frames/s of OpenCV's mp4v (116 vs 201 on 2 cores), in 0.66x the
# file size (docs/performance.md, part 7).
PYAV_ENCODERS = {"h264": ("libx264", {"preset": "superfast", "crf": "20"})}
# OpenCV's own Motion-JPEG encoder (its AVI writer, OpenCV 5.0) corrupts the heap, and the process dies
# (glibc: `free(): invalid next size`), on frames narrower than this: widths 2, 4 and 6 at most heights
# (4x4, 12x2, 8x6 ...; every even size up to 128x16 and 6x198 tried). Narrower frames skip it for Xvid.
MJPG_MIN_WIDTH = 8
DEFAULT_FPS = 25.0  # assumed (annotate, stream) and written when the input does not say
# Audio codecs an MP4 holds as they are (copied packet by packet); others are encoded to AAC.
MP4_AUDIO_COPIED = frozenset({"aac", "mp3", "ac3", "eac3", "alac"})
AAC_BIT_RATE = 160_000


def video_suffix(path: str | os.PathLike) -> str:
    """The extension that picks the container, lower case: `.mp4` for `a.MP4`, and for `.mp4` alone
    (a hidden file, which Path.suffix says has none)."""
    name = Path(path).name.lower()
    return Path(name).suffix or (name if name.startswith(".") else "")


def sound_note(output: str | os.PathLike, audio: str | None, audio_left_out: bool) -> str:
    """What became of the input's sound, for the line that names the output's codec ("" where the
    input had none): `audio` and `audio_left_out` are AtomicVideoWriter's after its block."""
    if audio is not None:
        return f", audio {audio}"
    if not audio_left_out:
        return ""
    if video_suffix(output) == ".avi":
        return ", the sound left out: only .mp4 output keeps it"
    return ", the sound left out: it could not be written here"  # OpenCV's encoder, or sound PyAV cannot decode


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
    try:
        if a.resolve() == b.resolve():
            return True
    except (RuntimeError, OSError):  # a loop of symbolic links (RuntimeError before Python 3.13) names no file
        return False
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_writable_file(output: str | os.PathLike, *inputs: str | os.PathLike, what: str = "the output") -> Path:
    """Refuse, before any work, an output file that is an input, a directory, or cannot be written.
    `what` names it in the message that it would overwrite an input ("the timeline")."""
    output = Path(output)
    if missing_reason(output) == LINK_LOOP:
        raise VideoError(f"{output}: {LINK_LOOP}")
    for source in inputs:
        if same_file(output, Path(source)):
            raise VideoError(f"{output}: {what} would overwrite the input {source}; choose another file name")
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
    """What to tell a user whose video has non-square pixels, where `output` is written by OpenCV,
    which stores square ones: the output shows narrower or wider than the input (the frames
    themselves are the same)."""
    import shlex

    num, den = pixel_aspect
    if num == den or keeps_pixel_aspect(output):
        return None
    shown = f"{round(width * num / den)}x{height}"
    written_height, written_width = encoded_size(height, width)
    return (
        f"{source}: its pixels are not square ({num}:{den}): players show it {shown}, but the output's are "
        f"square and it shows {written_width}x{written_height}; "
        f"`ffmpeg -i {shlex.quote(str(output))} -vf setsar={num}/{den} -c:v libx264 fixed.mp4` restores its shape"
    )


def pyav_encodes(codec: str) -> bool:
    """Whether `codec` is one PyAV encodes (see PYAV_ENCODERS) and this PyAV's FFmpeg has its encoder."""
    import av

    return codec in PYAV_ENCODERS and PYAV_ENCODERS[codec][0] in av.codecs_available


def keeps_pixel_aspect(output: str | os.PathLike) -> bool:
    """Whether `output` is written by PyAV, which stores the input's pixel aspect (OpenCV's writers
    store square pixels)."""
    return pyav_encodes(codecs_for(output)[0])


def odd_size_warning(source, height: int, width: int) -> str | None:
    """What to tell a user whose video of (height, width) the writer will store a pixel smaller."""
    written = encoded_size(height, width)
    if written == (height, width):
        return None
    return f"{source}: {width}x{height} has an odd side; the encoder writes {written[1]}x{written[0]}"


class _OpenCvEncoder:
    """cv2.VideoWriter for one FourCC, or None from open() where this OpenCV cannot encode it."""

    @classmethod
    def open(cls, path: Path, codec: str, fps: float, height: int, width: int, quiet: bool):
        import cv2

        from varec_cli.video.opencv_paths import opencv_path

        with native_messages_silenced(quiet), opencv_path(path) as name:
            writer = cv2.VideoWriter(name, cv2.VideoWriter_fourcc(*codec), fps, (width, height))
        if writer.isOpened():
            return cls(writer)
        writer.release()
        return None

    def __init__(self, writer):
        self._writer = writer

    def write(self, frame: np.ndarray) -> None:
        self._writer.write(frame)

    def close(self) -> None:
        self._writer.release()


class _AvEncoder:
    """A PyAV encoder (see PYAV_ENCODERS) into an MP4, or None from open() where PyAV's FFmpeg lacks it.

    Frames are converted to YUV 4:2:0 as OpenCV's writer converts them (swscale's BT.601, limited
    range) and the stream says so, so that players do not take an HD video for BT.709. Odd sides are
    rounded down, as OpenCV's writer does. Non-square pixels are stored as such. The index is moved
    to the front (faststart): a browser plays the file while it downloads."""

    @classmethod
    def open(
        cls, path: Path, codec: str, fps: float, height: int, width: int, quiet: bool, audio_from=None,
        pixel_aspect: tuple[int, int] = (1, 1),
    ):
        from fractions import Fraction

        import av

        if not pyav_encodes(codec):
            return None
        name, options = PYAV_ENCODERS[codec]
        try:
            container = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
        except (av.FFmpegError, OSError):
            return None
        try:
            stream = container.add_stream(name, rate=Fraction(fps).limit_denominator(10_000))
            stream.height, stream.width = encoded_size(height, width)
            stream.pix_fmt = "yuv420p"
            stream.options = dict(options)
            context = stream.codec_context
            context.colorspace = context.color_primaries = context.color_trc = 6  # SMPTE 170M (BT.601)
            context.color_range = 1  # limited ("tv")
            if pixel_aspect[0] != pixel_aspect[1] and min(pixel_aspect) > 0:  # players stretch it as the input
                context.sample_aspect_ratio = Fraction(*pixel_aspect)
            with native_messages_silenced(quiet):
                context.open()
        except (av.FFmpegError, ValueError):
            container.close()
            return None
        audio = _AudioTrack.open(container, Path(audio_from)) if audio_from is not None else None
        return cls(container, stream, float(stream.average_rate or fps), audio)

    def __init__(self, container, stream, fps: float, audio: _AudioTrack | None):
        self._container = container
        self._stream = stream
        self._fps = fps
        self.audio = audio
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        import av

        height, width = self._stream.height, self._stream.width
        picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:height, :width]), format="bgr24")
        picture.pts = self.frames
        with _write_errors():
            if self.audio is not None:  # the sound up to this frame, so that the muxer interleaves the two
                self.audio.copy_until(self.frames / self._fps)
            self._mux(self._stream.encode(picture))
        self.frames += 1

    def _mux(self, packets) -> None:
        for packet in packets:
            self._container.mux(packet)

    def close(self) -> None:
        try:
            with _write_errors():
                self._mux(self._stream.encode(None))  # the frames the encoder still holds
                if self.audio is not None:
                    self.audio.copy_until(self.frames / self._fps, last=True)
        finally:
            if self.audio is not None:
                self.audio.close()
            with _write_errors():
                self._container.close()  # the index, moved to the front


class _AudioTrack:
    """The first audio stream of the source video, written beside the output's frames.

    Times are the source's, counted from its first decodable video frame (the first frame annotate
    reads: a recording that starts mid-GOP has undecodable frames before it), so that the sound stays
    with the picture: frame i of the output is at i / fps, as it is in the source (a variable frame
    rate aside, see docs/annotate.md). Sound before the first frame or after the last is left out.
    AAC, MP3, AC-3, E-AC-3 and ALAC packets are copied as they are; other codecs (PCM in an AVI,
    Vorbis, Opus, MP2) are decoded and encoded to AAC, at the nearest sample rate AAC takes, through
    a resampler rebuilt whenever the sound changes format (a broadcast recording switching from
    stereo to mono). `description` says which."""

    @classmethod
    def open(cls, output, source: Path) -> _AudioTrack | None:
        import av

        try:
            container = av.open(str(source))
        except (av.FFmpegError, OSError, UnicodeDecodeError):
            return None
        try:
            audio = container.streams.audio[0] if container.streams.audio else None
            context = audio.codec_context if audio is not None else None
            if context is None or not container.streams.video:
                container.close()
                return None
            codec = context.codec.canonical_name  # "mp3", where the decoder is "mp3float"
            start = _first_frame_time(source)
            if start is None:
                video = container.streams.video[0]
                start = float(video.start_time * video.time_base) if video.start_time is not None else 0.0
            if codec in MP4_AUDIO_COPIED:
                target, description = output.add_stream_from_template(audio), codec
            else:
                rates = av.Codec("aac", "w").audio_rates or (48_000,)
                rate = min(rates, key=lambda r: abs(r - (context.sample_rate or 48_000)))
                target = output.add_stream("aac", rate=rate)
                target.layout = "mono" if context.channels == 1 else "stereo"
                target.bit_rate = AAC_BIT_RATE
                target.codec_context.open()  # here, where a failure leaves the sound out, not the video
                description = f"aac (from {codec})"
        except (av.FFmpegError, ValueError):
            container.close()
            return None
        return cls(container, audio, output, target, start, description, encode=codec not in MP4_AUDIO_COPIED)

    def __init__(self, container, source, output, target, start: float, description: str, *, encode: bool):
        self._container = container
        self._target = target
        self._start = start
        self._encode = encode
        self._output = output
        self._packets = container.demux(source)  # the source's audio stream
        self._held = None  # the next packet, past the time copied so far
        self._resampler = None
        self._resampling = None  # the (format, layout, rate) self._resampler takes
        self.description = description
        self.packets = 0

    def copy_until(self, seconds: float, *, last: bool = False) -> None:
        """Write the source's sound up to `seconds` of the output (`last`: to there, then the end)."""
        import av

        while True:
            packet = self._held if self._held is not None else next(self._packets, None)
            self._held = None
            if packet is None:
                break
            stamp = packet.pts if packet.pts is not None else packet.dts
            if packet.size == 0 or stamp is None:
                continue
            at = float(stamp * packet.time_base) - self._start
            if at >= seconds:
                if not last:
                    self._held = packet
                break
            if at + float((packet.duration or 0) * packet.time_base) < 0:  # over before the first frame (priming kept)
                continue
            try:
                self._write(packet, at)
            except (av.FFmpegError, ValueError):  # a damaged packet: that bit of sound is missing
                continue
        if last and self._encode:
            self._mux(self._target.encode(None))

    def _write(self, packet, at: float) -> None:
        if not self._encode:
            shift = round(self._start / packet.time_base) if self._start else 0
            packet.pts = None if packet.pts is None else packet.pts - shift
            packet.dts = None if packet.dts is None else packet.dts - shift
            packet.stream = self._target
            self._output.mux(packet)
            self.packets += 1
            return
        from fractions import Fraction

        for frame in packet.decode():
            if frame.pts is not None:  # a packet may hold several frames
                at = float(frame.pts * frame.time_base) - self._start
            if at < 0:
                continue
            frame.pts = round(at * frame.sample_rate)
            frame.time_base = Fraction(1, frame.sample_rate)
            for piece in self._resample(frame):
                self._mux(self._target.encode(piece))

    def _resample(self, frame) -> list:
        """`frame` in the encoder's sample format, layout and rate."""
        import av

        kind = (frame.format.name, frame.layout.name, frame.sample_rate)
        if kind != self._resampling:
            context = self._target.codec_context
            self._resampler = av.AudioResampler(format=context.format.name, layout=context.layout.name, rate=context.sample_rate)
            self._resampling = kind
        return self._resampler.resample(frame)

    def _mux(self, packets) -> None:
        for packet in packets:
            self._output.mux(packet)
            self.packets += 1

    def close(self) -> None:
        self._container.close()


def _first_frame_time(source: Path) -> float | None:
    """The presentation time of the first video frame that decodes, in seconds, or None. Packets
    the decoder refuses (damaged JPEGs) are passed over, as OpenCV passes over their frames."""
    import av

    try:
        with av.open(str(source)) as container:
            for packet in container.demux(container.streams.video[0]):
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    continue
                for frame in frames:
                    return float(frame.time) if frame.time is not None else None
    except (av.FFmpegError, OSError, UnicodeDecodeError, IndexError):
        return None
    return None


@contextlib.contextmanager
def stop_signals_deferred():
    """On the main thread, hold Ctrl-C (and the SIGTERM and SIGHUP that `varec` turns into it) until
    the block ends, then act on it. Python raises a signal as whatever C call is running returns: in
    the middle of a frame's encoding and muxing, that loses the frame or writes its packets twice,
    and `varec stream FILE -o` keeps its recording on Ctrl-C. Only handlers set in Python are held."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held: dict[int, object] = {}
    try:
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            number = getattr(signal, name, None)
            handler = signal.getsignal(number) if number is not None else None
            if callable(handler):
                held[number] = handler
                signal.signal(number, lambda signum, _frame: caught.append(signum))
        yield
    finally:
        for number, handler in held.items():
            signal.signal(number, handler)
        if caught:
            held[caught[0]](caught[0], None)  # raises KeyboardInterrupt (or Terminated) now


def _frames_stored(path: Path) -> int | None:
    """The frames (packets: one a frame for these encoders) a written video holds, or None where PyAV
    cannot read it (an MP4 cut short has no index). OpenCV's writer ignores failed writes (a full disk), leaving a file cut short that
    would pass for complete. Demuxing reads no pixels: 2.5 ms for 132 frames of 720p H.264."""
    import av

    try:
        with av.open(str(path)) as container:
            return sum(1 for packet in container.demux(container.streams.video[0]) if packet.size)
    except (av.FFmpegError, OSError, IndexError):
        return None


@contextlib.contextmanager
def _write_errors():
    """PyAV's errors while writing (a full disk) as a VideoError; AtomicVideoWriter names the file."""
    import av

    try:
        yield
    except (av.FFmpegError, OSError) as failed:
        raise VideoError(f"cannot write the video: {getattr(failed, 'strerror', None) or failed}") from None


class AtomicVideoWriter:
    """An encoder (the first of codecs_for(path) that opens) on a temp file beside `path`, renamed
    onto `path` only on success.

    A failure or Ctrl-C inside the `with` block leaves neither `path` nor the temp file behind (an
    existing `path` is left as it was). `size` is (height, width). After the block, `codec` is the
    codec used (see CODECS_BY_EXTENSION) and `frames_written` the count.
    """

    def __init__(
        self, path: str | os.PathLike, fps: float, size: tuple[int, int], *,
        audio_from: str | os.PathLike | None = None, pixel_aspect: tuple[int, int] = (1, 1),
    ):
        self.path = Path(path)
        self.audio_from = audio_from
        self.pixel_aspect = pixel_aspect  # stored where the encoder can (see keeps_pixel_aspect)
        self.audio: str | None = None  # after the block: the sound written (codec, and what it was encoded from)
        self.audio_left_out = False  # after the block: `audio_from` has sound this format's writer cannot take
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
        candidates = codecs_for(self.path)
        if encoded_size(self.height, self.width)[1] < MJPG_MIN_WIDTH:
            candidates = tuple(codec for codec in candidates if codec != "MJPG")
        try:
            self._tmp = temp_file(self.path.parent, prefix=f".{self.path.stem}.", suffix=video_suffix(self.path))
        except OSError as exc:
            raise VideoError(f"{self.path}: cannot create a file beside it ({exc.strerror})") from None
        try:
            for i, codec in enumerate(candidates):
                quiet = i < len(candidates) - 1
                if codec in PYAV_ENCODERS:
                    writer = _AvEncoder.open(
                        self._tmp, codec, self.fps, self.height, self.width, quiet, self.audio_from, self.pixel_aspect
                    )
                else:
                    writer = _OpenCvEncoder.open(self._tmp, codec, self.fps, self.height, self.width, quiet)
                if writer is not None:
                    self._writer, self.codec = writer, codec
                    return self
            raise VideoError(f"{self.path}: cannot encode video here (tried {', '.join(candidates)})")
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise

    def write(self, frame_bgr: np.ndarray) -> None:
        if self._writer is None:
            raise RuntimeError("AtomicVideoWriter.write outside its `with` block")
        if frame_bgr.shape[:2] != (self.height, self.width) or frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
            raise ValueError(f"frame shape {frame_bgr.shape} differs from the writer's ({self.height}, {self.width}, 3)")
        frame = np.ascontiguousarray(frame_bgr, dtype=np.uint8)
        with stop_signals_deferred():  # a frame goes in whole and counted, or not at all
            try:
                self._writer.write(frame)
            except VideoError as failed:
                raise VideoError(f"{self.path}: {failed}") from None
            self.frames_written += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        writer, self._writer = self._writer, None
        try:
            if writer is not None:
                try:
                    writer.close()
                except VideoError as failed:
                    if exc_type is None:
                        raise VideoError(f"{self.path}: {failed}") from None
            if exc_type is not None:
                return
            if self.frames_written == 0:
                raise VideoError(f"{self.path}: no frame to write")
            if self._tmp.stat().st_size == 0:
                raise VideoError(f"{self.path}: the encoder wrote nothing (disk full?)")
            audio = getattr(writer, "audio", None)
            if audio is not None and audio.packets:
                self.audio = audio.description
            elif audio is None and self.audio_from is not None:
                from varec_cli.video.reader import av_stream_kinds

                self.audio_left_out = av_stream_kinds(self.audio_from)[1]
            stored = _frames_stored(self._tmp)
            if stored is None:  # PyAV reads whatever these encoders write, unless it is cut short (mp4: no index)
                raise VideoError(f"{self.path}: the written file cannot be read back (disk full?); nothing written")
            if stored < self.frames_written:
                raise VideoError(
                    f"{self.path}: {stored} of the {self.frames_written} frames reached the file (disk full?); nothing written"
                )
            if self.path.exists():  # a replaced file keeps its permissions
                os.chmod(self._tmp, self.path.stat().st_mode & 0o777)
            os.replace(self._tmp, self.path)
        finally:
            if self._tmp is not None and self._tmp.exists():
                self._tmp.unlink(missing_ok=True)
