"""Reading clips: THE frame sampler and the decode strategies behind it (the hot path).

Every consumer of whole clips (predict, annotate, training, evaluation) samples with
`sample_frame_indices`; every consumer of frames, `stream` too (its ring buffer spaces frames in
time), turns decoded BGR frames into model input with `to_model_frame`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from varec_cli.errors import VideoError

# How a clip is decoded (`read_clips(strategy=...)`; "auto" picks per video, see choose_strategy):
#   jpeg   Motion-JPEG: every frame is a standalone JPEG. Demux all packets without decoding them
#          and decode only the sampled ones (cv2.imdecode, at a reduced DCT scale when the frame
#          is at least twice the model size). Cost: k JPEG decodes, whatever the video's length.
#   grab   grab() every frame up to the last sampled one, retrieve() (convert) only sampled ones.
#   seek   CAP_PROP_POS_FRAMES to each sampled frame.
#   mixed  per sampled frame, seek or grab forward, whichever decodes fewer frames given where the
#          keyframes are (a packet scan finds them; see plan_seeks).
#   av     PyAV (its own FFmpeg): demux every packet once (the count and the keyframes), then decode
#          from the keyframe at or before each sample (or on from the previous sample, when no
#          keyframe lies between: a run), skipping the non-reference frames (H.264 B-frames) that
#          are not samples; runs go to decoders in parallel threads when that pays. A decoder on
#          several threads (one decoder, frames above 640x480) has its samples converted in
#          batches, on as many threads, not between its packets.
#          Frames are identified by presentation timestamp, so B-frame reordering cannot swap them,
#          and converted to BGR by FFmpeg's swscale exactly as OpenCV does (pixel-identical).
#          No OpenCV seek back-off, no second capture, a 32-byte stream probe (OpenCV's full probe
#          costs ~12 ms on bigbuckbunny.mp4). Measured (benchmarks/parts/clips.py, 2 cores): 1.1-2.5x
#          the clips/s of the OpenCV strategies on H.264 and MPEG-4 part 2 (bikes.mp4, 5 frames: 9 → 22;
#          12 small XVID clips: 119 → 291); least where every frame must be decoded anyway (one
#          keyframe, dense samples). Motion-JPEG pays its PyAV probe before going to jpeg (~0.35 ms).
# auto: jpeg for Motion-JPEG; av for other codecs (unless the video is rotated, timestamps are
# missing or repeated, or the file is too big to hold its packets: see _read_av); else a packet
# scan and mixed when two samples are far enough apart for a seek to pay (or the header has no
# frame count), else grab (the scan cannot help, and opening a second capture costs up to ~11 ms
# on some H.264 files).
# OpenCV's FFmpeg seek (cap_ffmpeg_impl.hpp) lands on the keyframe at or before target-16, then
# decodes forward to the target; measured here, a seek costs 16-17 frame decodes on MJPG, ~22 on
# mp4v with 12-frame GOPs, and a whole GOP prefix on H.264 (44 on bikes.mp4).
SEEK_BACKOFF = 16  # frames OpenCV backs off before the target when it seeks
SEEK_OVERHEAD = 2  # flush and demuxer repositioning, in frame decodes
# Without keyframe positions (no packet scan), seek only when samples are far apart.
SEEK_MIN_GAP = 96
# FourCCs of Motion-JPEG streams whose packets are plain JPEG images (checked: packets start with SOI).
JPEG_FOURCCS = frozenset({"mjpg", "jpeg", "mjpa", "avrn", "avdj"})
STRATEGIES = ("auto", "jpeg", "grab", "seek", "mixed", "av")
SMALL_FRAME_PIXELS = 384 * 288  # decoded on one thread (see _decode_threads)
# The av strategy holds every packet of the video stream in memory, in each decoding thread of the
# training loader at once: files above this size go to OpenCV, whose seeking strategies read them about
# as fast (a 552 MB 720p MPEG-4 file: 1.74 s against 1.53 s for av on a 488 MB one, which peaked at
# 567 MiB of memory to OpenCV's 100 MiB).
AV_MAX_FILE_BYTES = 64 * 1024 * 1024
AV_SINGLE_THREAD_PIXELS = 640 * 480  # av decodes frames up to this size on one thread (see _av_threads)
# Bytes of decoded sampled frames the av strategy holds before converting them, where it holds
# them (see _decode_av_run): 48 frames of 720p YUV 4:2:0, 21 of 1080p, 5 of 4K.
AV_HELD_BYTES = 64 * 1024 * 1024
# Speed-up of FFmpeg's frame threading on two cores above that size, for a decoder that jumps between
# keyframes (bigbuckbunny.mp4 re-encoded with a keyframe every 24 frames: 1.1-1.16x; straight through
# it gains 1.6x): runs shared among decoders must beat it (see _worth_sharing).
FRAME_THREADING_GAIN = 1.15
# Below these, one decoder beats decoders in parallel (see _worth_sharing). Measured on 2 cores: 320x240
# XVID groups of 14-27 KB gain nothing, of 44 KB 10%, of 70-80 KB 20-30%; 32x32 and 80x48 H.264
# (14-35 bytes a packet) lost 10-30% at any length.
PARALLEL_MIN_GROUP_BYTES = 40_000
PARALLEL_MIN_PACKET_BYTES = 256


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frame_count: int  # from the container header; may be 0 or wrong
    fps: float
    width: int
    height: int
    codec: str = ""  # FourCC as the container reports it ("MJPG", "h264", "FMP4", ...)
    pixel_aspect: tuple[int, int] = (1, 1)  # a pixel's width:height as shown (DVD widescreen: 32:27)

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
    strategy: str = ""  # how the frames were decoded: jpeg, grab, seek, mixed or av (see STRATEGIES)
    stated: StatedLength | None = None  # the container's own statement of the length, when the read saw it

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


@dataclass(frozen=True)
class StatedLength:
    """A video stream's length as its container states it, nothing decoded (see stated_length)."""

    seconds: float = 0.0  # edit-list cuts left out; 0.0: none stated
    frames: int = 0  # the frame index's count (mp4, mov, avi), cuts included; 0: none kept


def stated_length(path: str | os.PathLike) -> StatedLength:
    """What the container of `path` says of its video stream's length (StatedLength() when PyAV
    cannot open it). An mp4 cut off after its index, which is at the front, still states it whole."""
    container = open_av_container(Path(path))
    if container is None:
        return StatedLength()
    try:
        return _stream_stated_length(container.streams.video[0]) if container.streams.video else StatedLength()
    finally:
        container.close()


def _stream_stated_length(stream) -> StatedLength:
    seconds = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else 0.0
    return StatedLength(seconds, max(int(stream.frames or 0), 0))


def falls_short(frames: int, fps: float, stated: StatedLength) -> bool:
    """Whether `frames` decoded (at `fps`) fall so far short of what the container states that the
    file looks cut short or damaged; the one test predict, annotate and stream use. Short by at least
    3 frames and 5% (one or two undecodable frames at the end are common and harmless) both of the
    frame index's count and of the stated duration: the count alone would take an edit list's cuts
    for missing frames, the duration alone a variable frame rate's. Without a frame index (Matroska,
    WebM, MPEG-TS) nothing is said."""

    def short(expected: float) -> bool:
        return expected - frames >= max(3.0, 0.05 * expected)

    return stated.frames > 0 and stated.seconds > 0 and fps > 0 and short(stated.frames) and short(stated.seconds * fps)


def cut_short_warning(
    path: str | os.PathLike, frames: int, fps: float, done: str, shown: object = None, stated: StatedLength | None = None
) -> str | None:
    """The warning every command gives for a file whose `frames` (at `fps`) fall short of what its
    container states (falls_short), or None. `done`: what the command did with those frames
    (`classified from`, ...); `shown`: how to name the file (default: `path`); `stated`: the
    container's statement when the caller has it (Clips.stated), saving a second opening of the file."""
    from varec_cli.text import counted, seconds

    stated = stated_length(path) if stated is None else stated
    if not falls_short(frames, fps, stated):
        return None
    return (
        f"{path if shown is None else shown}: only {seconds(frames / fps)} of the {seconds(stated.seconds)} "
        f"its container states decode (is it cut short or damaged?); {done} the "
        + (f"{counted(frames, 'frame')} that do" if frames != 1 else "one frame that does")
    )


def check_video_file(path: Path) -> None:
    """VideoError unless `path` is a readable, non-empty file: what neither OpenCV nor PyAV should be
    handed (a pipe, which they would read from, or wait on for a writer, and then read again)."""
    from varec_cli.files import missing_reason, special_file_kind

    if reason := missing_reason(path):
        raise VideoError(f"{path}: {reason}")
    if path.is_dir():
        raise VideoError(f"{path}: is a directory, not a video file")
    if kind := special_file_kind(path):
        advice = {
            "a pipe": f"save the video to a file first, or label it as it comes with `varec stream --source {path}`",
            "a device": "for a camera, give `varec stream --source` its index (0, 1, ...)",
        }.get(kind, "give a video file")
        raise VideoError(f"{path}: {kind}, not a video file; {advice}")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: file is empty")
    if not os.access(path, os.R_OK):  # else OpenCV's "cannot open this file as a video" blames the format
        raise VideoError(f"{path}: no permission to read it")


def av_stream_kinds(path: str | os.PathLike) -> tuple[bool, bool]:
    """(has a video stream, has an audio stream) as PyAV reads `path`; (False, False) for a file it
    cannot read."""
    import av

    try:
        with av.open(str(path)) as container:
            return bool(container.streams.video), bool(container.streams.audio)
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return False, False


def open_opencv_capture(path: Path, threads: int | None = None):
    """An OpenCV capture of `path`; `threads` sets FFmpeg's decoding threads (default: one per CPU)."""
    import cv2

    from varec_cli.video.opencv_paths import opencv_path

    path = Path(path)
    check_video_file(path)
    cap = None
    with opencv_path(path) as name:
        if threads:
            cap = cv2.VideoCapture(name, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, int(threads)])
            if not cap.isOpened():
                cap.release()
                cap = None
        if cap is None:
            # FFmpeg only: OpenCV's other backends add nothing FFmpeg cannot read, and its own AVI parser
            # prints its complaints about a file FFmpeg gave up on straight onto stderr (with fprintf).
            cap = cv2.VideoCapture(name, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        video, audio = av_stream_kinds(path)  # OpenCV only says it cannot open a file of sound alone (an .m4a as .mp4)
        raise VideoError(f"{path}: {'it holds sound only, no video' if audio and not video else 'OpenCV cannot open this file as a video'}")
    return cap


def _decode_threads(info: VideoInfo) -> int | None:
    """One decoding thread for small frames: FFmpeg's frame threading costs more than it gains there
    (measured: 320x240 MPEG-4 decodes 27% faster on one thread; 720p H.264 35% slower)."""
    if 0 < info.width * info.height <= SMALL_FRAME_PIXELS:
        return 1
    return None


def _capture_info(path: Path, cap) -> VideoInfo:
    import cv2

    fps = plausible_fps(cap.get(cv2.CAP_PROP_FPS))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    return VideoInfo(
        path=Path(path),
        frame_count=max(count, 0),
        fps=fps,
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0),
        codec=_fourcc(cap.get(cv2.CAP_PROP_FOURCC)),
        pixel_aspect=pixel_aspect(cap),
    )


def pixel_aspect(cap) -> tuple[int, int]:
    """A capture's sample aspect ratio (width:height of a pixel as shown), (1, 1) when it states none.

    Of its frames as the capture returns them: the stream states it for the stored frames, so where
    the capture turns them upright by a quarter turn (a phone video's display rotation) a pixel's
    width and height swap."""
    import cv2

    num, den = cap.get(cv2.CAP_PROP_SAR_NUM), cap.get(cv2.CAP_PROP_SAR_DEN)
    if not (np.isfinite(num) and np.isfinite(den)) or num <= 0 or den <= 0:
        return (1, 1)
    num, den = int(num), int(den)
    rotation = cap.get(cv2.CAP_PROP_ORIENTATION_META)
    turned = cap.get(cv2.CAP_PROP_ORIENTATION_AUTO)
    if np.isfinite(rotation) and turned and round(rotation) % 180 == 90:
        num, den = den, num
    divisor = math.gcd(num, den) or 1
    return (num // divisor, den // divisor)


def _fourcc(value: float) -> str:
    code = int(value or 0) & 0xFFFFFFFF
    text = code.to_bytes(4, "little").decode("latin-1").strip("\x00 ")
    return text if text.isprintable() else ""


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """What the container says about a video (frame count may be wrong; see read_clips)."""
    cap = open_opencv_capture(Path(path))
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
    """BGR frame from OpenCV → RGB uint8 at (height, width): the one frame-preparation path.

    Shrinking averages blocks of pixels, then resizes by the factor left, below 2, linearly:
    2x2 blocks (OpenCV's vectorised INTER_AREA path) while both sides are at least twice the
    target's, then pairs along the side still twice the target's or more (a linear resize by exactly
    2 averages pixel pairs), then INTER_LINEAR to the target. Only vectorised resizes: OpenCV's
    INTER_AREA by other factors, or by fractions, runs a generic loop about 5x slower per pixel (and
    20x on odd sizes). An odd last row or column is left out of a halving, so that it averages whole
    blocks; the last step then maps the target's pixels onto the whole frame's (warpAffine), not onto
    what is left, which would shift them by up to half a pixel.

    Measured on bigbuckbunny.mp4's frames, against the earlier integer-factor INTER_AREA then linear
    or area step (2 cores): 720p to 224x224 1.36 → 0.47 ms, to 172 1.05 → 0.34; 1080p to 224
    1.30 → 0.69; 854x480 to 224 1.36 → 0.18; 320x240 to 172 0.46 → 0.07; 1079x1919 to 224
    6.6 → 1.0. Mean distance to a plain INTER_AREA resize (the slowest, 3.3 ms at 720p, and the
    reference), in grey levels: 1.3-1.9 at 224, 172 and 112 px from 720p (the earlier steps: 2.0-2.6),
    at most 2.9 over 4K to 320x240, odd sizes and 64 to 299 px (the earlier: 3.7), but 3.5 for 640x272
    to 299 (one side shrunk, the other enlarged). Frames under
    twice the target are resized linearly: as before, but for those from 1.5 to 2 times it (320x240 at
    172: a plain INTER_AREA before, 1.6 grey levels from it now).
    """
    import cv2

    height, width = size
    rows0, cols0 = frame_bgr.shape[:2]
    rows, cols, block_rows, block_cols = rows0, cols0, 1, 1
    while rows >= 2 * height and cols >= 2 * width:
        frame_bgr = frame_bgr[: rows - rows % 2, : cols - cols % 2]
        rows, cols, block_rows, block_cols = rows // 2, cols // 2, 2 * block_rows, 2 * block_cols
        frame_bgr = cv2.resize(frame_bgr, (cols, rows), interpolation=cv2.INTER_AREA)
    while cols >= 2 * width:  # a wide frame: its width alone
        frame_bgr = frame_bgr[:, : cols - cols % 2]
        cols, block_cols = cols // 2, 2 * block_cols
        frame_bgr = cv2.resize(frame_bgr, (cols, rows), interpolation=cv2.INTER_LINEAR)
    while rows >= 2 * height:  # a tall one
        frame_bgr = frame_bgr[: rows - rows % 2]
        rows, block_rows = rows // 2, 2 * block_rows
        frame_bgr = cv2.resize(frame_bgr, (cols, rows), interpolation=cv2.INTER_LINEAR)
    if (rows * block_rows, cols * block_cols) != (rows0, cols0):  # rows or columns were left out
        scale_x, scale_y = cols0 / (width * block_cols), rows0 / (height * block_rows)
        target_to_source = np.array([[scale_x, 0.0, 0.5 * scale_x - 0.5], [0.0, scale_y, 0.5 * scale_y - 0.5]])
        frame_bgr = cv2.warpAffine(
            frame_bgr, target_to_source, (width, height),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE,
        )
    elif rows != height or cols != width:
        frame_bgr = cv2.resize(frame_bgr, (width, height), interpolation=cv2.INTER_LINEAR)
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


def _decode_planned(cap, targets: np.ndarray, seeks: np.ndarray, size) -> tuple[dict[int, np.ndarray], bool]:
    """Decode sorted unique `targets`, seeking before those flagged in `seeks`, grabbing forward otherwise.

    Returns (frames by index, whether every grab succeeded: False means the stream ended early).
    """
    import cv2

    frames: dict[int, np.ndarray] = {}
    position = 0  # index of the frame the next grab() returns
    for target, seek in zip(targets.tolist(), seeks.tolist()):
        if seek:
            cap.set(cv2.CAP_PROP_POS_FRAMES, target)
            position = target
        while position < target:
            if not cap.grab():
                return frames, False
            position += 1
        if not cap.grab():
            if not seek:
                return frames, False
            continue  # a seek that misses one frame: leave it to the nearest-frame fallback
        position += 1
        ok, frame = cap.retrieve()
        if ok and frame is not None:
            frames[target] = to_model_frame(frame, size)
    return frames, True


@dataclass
class _PacketScan:
    """What demuxing the video stream without decoding it tells (see _scan_packets)."""

    count: int  # packets in the video stream: one per frame for the codecs we rely on it for
    keyframes: np.ndarray  # indices of the packets flagged as keyframes, ascending
    packets: dict[int, np.ndarray]  # raw bytes of the packets asked for


def _open_raw(path: Path):
    """A capture in OpenCV's raw mode (CAP_PROP_FORMAT -1: packets, not decoded frames), or None."""
    import cv2

    from varec_cli.video.opencv_paths import opencv_path

    with opencv_path(path) as name:
        cap = cv2.VideoCapture(name, cv2.CAP_FFMPEG)
    if cap.isOpened() and cap.set(cv2.CAP_PROP_FORMAT, -1):
        return cap
    cap.release()
    return None


def _scan_packets(cap, keep: set[int] | frozenset[int] = frozenset()) -> _PacketScan | None:
    """Read every packet of the video stream from a raw-mode capture, without decoding any.

    Costs a demux pass, ~1-4 microseconds a packet. Keeps the bytes of the packets in `keep`.
    """
    import cv2

    keyframes: list[int] = []
    packets: dict[int, np.ndarray] = {}
    count = 0
    try:
        while cap.grab():
            if cap.get(cv2.CAP_PROP_LRF_HAS_KEY_FRAME):
                keyframes.append(count)
            if count in keep:
                ok, data = cap.retrieve()
                if ok and data is not None:
                    packets[count] = np.ascontiguousarray(data).reshape(-1)
            count += 1
    except cv2.error:
        return None
    return _PacketScan(count, np.asarray(keyframes, dtype=np.int64), packets)


def _jpeg_scale(height: int, width: int, size: tuple[int, int]) -> int:
    """The largest JPEG DCT downscale (8, 4, 2 or 1) that keeps the frame at least the model size."""
    for factor in (8, 4, 2):
        if height >= factor * size[0] and width >= factor * size[1]:
            return factor
    return 1


def _decode_jpeg_packets(
    packets: dict[int, np.ndarray], targets, size, *, frame_size: tuple[int, int], scale: int = 1
) -> dict[int, np.ndarray]:
    """imdecode the packets of `targets` at 1/`scale`; a packet that is not a JPEG of the stream's
    `frame_size` (height, width), e.g. one field of an interlaced frame, is left out."""
    import cv2

    flags = cv2.IMREAD_IGNORE_ORIENTATION | {
        1: cv2.IMREAD_COLOR,
        2: cv2.IMREAD_REDUCED_COLOR_2,
        4: cv2.IMREAD_REDUCED_COLOR_4,
        8: cv2.IMREAD_REDUCED_COLOR_8,
    }[scale]
    expected = (-(-frame_size[0] // scale), -(-frame_size[1] // scale))
    frames: dict[int, np.ndarray] = {}
    for index in targets:
        data = packets.get(int(index))
        if data is None or data.size < 4 or data[0] != 0xFF or data[1] != 0xD8:  # not a JPEG (SOI)
            continue
        try:
            image = cv2.imdecode(data, flags)
        except cv2.error:
            image = None
        if image is not None and image.ndim == 3 and image.shape[:2] == expected:
            frames[int(index)] = to_model_frame(image, size)
    return frames


def count_frames(path: str | os.PathLike) -> int:
    """Frames actually decodable, by grabbing them all (for files whose header count is 0 or wrong);
    with PyAV where OpenCV decodes none (see video/frames.py)."""
    from varec_cli.video.frames import open_frame_capture

    try:
        cap = open_frame_capture(path)
    except VideoError:
        return 0
    try:
        n = 0
        while cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def plan_seeks(targets: np.ndarray, keyframes: np.ndarray) -> np.ndarray:
    """For sorted unique frame `targets`: seek (True) or grab forward (False) before each one.

    Greedy, and optimal for this cost model since both choices end just after the target:
    grabbing forward decodes every frame from the current position to the target; a seek decodes
    from the keyframe at or before target-SEEK_BACKOFF to the target, plus SEEK_OVERHEAD.
    """
    targets = np.asarray(targets, dtype=np.int64)
    keyframes = np.asarray(keyframes, dtype=np.int64)
    if len(keyframes) == 0 or len(targets) == 0:
        return np.zeros(len(targets), dtype=bool)
    positions = np.concatenate([[0], targets[:-1] + 1])  # each read starts after the previous target
    k = np.searchsorted(keyframes, np.maximum(targets - SEEK_BACKOFF, 0), side="right") - 1
    landing = np.where(k >= 0, keyframes[np.maximum(k, 0)], 0)
    first = positions == 0  # OpenCV grabs a frame before its first seek
    seek_cost = targets - landing + 1 + SEEK_OVERHEAD + first
    grab_cost = targets - positions + 1
    return seek_cost < grab_cost


def choose_strategy(
    frame_count: int, indices: np.ndarray, *, codec: str = "", keyframes: np.ndarray | None = None
) -> str:
    """The decode strategy for sampling `indices` from a video (see STRATEGIES).

    Motion-JPEG → "jpeg". With keyframe positions (a packet scan): "grab" when seeking never pays,
    "seek" when it always does, else "mixed". Without them: "seek" only when sampled frames are
    SEEK_MIN_GAP or more apart, else "grab".
    """
    unique = np.unique(indices)
    if codec.lower() in JPEG_FOURCCS:
        return "jpeg"
    if len(unique) < 2:
        return "grab"
    if keyframes is not None:
        seeks = plan_seeks(unique, keyframes)
        return "seek" if seeks.all() else "mixed" if seeks.any() else "grab"
    mean_gap = frame_count / len(unique)
    return "seek" if mean_gap >= SEEK_MIN_GAP else "grab"


def read_clips(
    path: str | os.PathLike,
    num_frames: int,
    size: tuple[int, int],
    *,
    views: int = 1,
    strategy: str = "auto",
    cores: int | None = None,
) -> Clips:
    """Decode `views` uniformly sampled clips of `num_frames` frames, resized to `size` (height, width).

    `cores`: how many CPU cores this one read may keep busy (default: all this process may use);
    callers that decode several videos at once give each its share.

    Header frame counts lie: 0, too many or too few. "av" (auto's choice but for Motion-JPEG)
    counts the packets it demuxes. A packet scan (Motion-JPEG, "mixed", and
    "auto" when the header count is 0 or the samples are far enough apart for a seek to pay)
    counts the frames first and locates the keyframes. Otherwise the header is trusted and
    verified while decoding. When the decoded frames disagree with the count, the clip is
    re-sampled from the true count (a second pass over the file).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown decode strategy {strategy!r}")
    path = Path(path)
    cores = usable_cores() if cores is None else max(1, int(cores))
    if strategy in ("auto", "av"):
        check_video_file(path)
        try:
            clips = _read_av(path, num_frames, size, views, cores=cores, jpeg_too=strategy == "av")
        except VideoError:
            raise
        except Exception:  # PyAV choked on something OpenCV may still read: let OpenCV try
            clips = None
        if clips is not None:
            return clips
        strategy = "auto"  # av cannot read this one (see _read_av): OpenCV's choice
    cap = open_opencv_capture(path)
    try:
        info = _capture_info(path, cap)
        jpeg = strategy in ("auto", "jpeg") and _is_jpeg_stream(info, cap)
        if jpeg or strategy == "mixed" or (strategy == "auto" and _scan_may_pay(info, num_frames, views)):
            clips = _read_scanned(path, cap, info, jpeg, num_frames, size, views)
            if clips is not None:
                return clips
        if strategy == "auto" and _decode_threads(info):
            cap.release()
            cap = open_opencv_capture(path, threads=_decode_threads(info))
        return _read_trusting_header(path, cap, info, num_frames, size, views, strategy)
    finally:
        cap.release()


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _av_threads(width: int, height: int, cores: int) -> int:
    """FFmpeg frame-threading threads for one av decoder: one up to 640x480, where frame threading's
    start-up and the drains after each jump cost more than it gains (measured: bikes.mp4, 640x272,
    5 samples 43 ms on one thread, 56 on two); `cores` above (bigbuckbunny.mp4, 720p: 200 ms on one,
    124 on two). Not FFmpeg's automatic count: that is cores + 1, and the extra thread adds a frame of
    latency to every drain and competes for the cores (bigbuckbunny.mp4, 5 samples on 2 cores: 139 ms
    vs 124)."""
    if 0 < width * height <= AV_SINGLE_THREAD_PIXELS:
        return 1
    return max(1, cores)


def set_av_decoder_threads(context, cores: int) -> None:
    context.thread_count = _av_threads(context.width, context.height, cores)
    if context.thread_count != 1:
        context.thread_type = "AUTO"


def _read_av(path: Path, num_frames, size, views, *, cores: int, jpeg_too: bool = False) -> Clips | None:
    """read_clips with PyAV (the av strategy, see the top of this module), or None when it does not
    apply: no video stream PyAV can open, Motion-JPEG (unless `jpeg_too`: the jpeg strategy decodes
    it at reduced scale), a rotated video (OpenCV rotates it: its path keeps that), packets without
    distinct timestamps, a stream that does not start on a keyframe, or a file over AV_MAX_FILE_BYTES."""
    import av

    if path.stat().st_size > AV_MAX_FILE_BYTES:
        return None
    container = open_av_container(path)
    if container is None:
        return None
    try:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        context = stream.codec_context
        if context is None:  # no decoder for this codec in PyAV's FFmpeg: OpenCV's may have one
            return None
        if context.name == "mjpeg" and not jpeg_too:
            return None
        stated = _stream_stated_length(stream)  # as stated_length reads it: before demuxing
        try:
            packets = [p for p in container.demux(stream) if p.size and not p.is_discard]
        except av.FFmpegError:
            return None
        if not packets:
            return None
        pts = [p.pts for p in packets]
        if None in pts or len(set(pts)) != len(pts) or not packets[0].is_keyframe or pts[0] != min(pts):
            return None
        fps = _av_fps(stream, pts)
        indices = sample_frame_indices(len(packets), num_frames, views=views)
        frames = _decode_av(path, context, packets, np.unique(indices), size, cores=cores)
    finally:
        container.close()
    if frames is None:
        return None
    info = VideoInfo(path, len(packets), fps, context.width, context.height, context.name)
    if len(frames) < len(np.unique(indices)):  # fewer decodable frames than packets (a truncated file)
        clips = _resample_sequentially(path, num_frames, size, views, info, "grab")
    else:
        clips = _assemble(path, frames, indices, len(packets), fps, "av")
    clips.stated = stated
    return clips


def open_av_container(path: Path):
    """A PyAV container with a 32-byte probe (the decoder reads the stream's parameters from the
    bitstream itself), or None when PyAV cannot open the file."""
    import av

    try:
        return av.open(str(path), container_options={"probesize": "32"})
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return None


def _av_fps(stream, pts: list[int]) -> float:
    """Frames per second: av_stated_rate, else the presentation timestamps' span; 0.0 when none is
    plausible."""
    if fps := av_stated_rate(stream):
        return fps
    if len(pts) > 1 and stream.time_base and max(pts) > min(pts):
        return plausible_fps((len(pts) - 1) / float((max(pts) - min(pts)) * stream.time_base))
    return 0.0


def av_stated_rate(stream) -> float:
    """A PyAV stream's frame rate as stated: the container's average rate, else the codec's (MPEG-TS/PS
    carry none the short probe sees); 0.0 when neither is plausible."""
    for rate in (stream.average_rate, stream.codec_context.framerate):
        if fps := plausible_fps(rate):
            return fps
    return 0.0


def plausible_fps(rate, limit: float = 1000.0) -> float:
    """`rate` as frames per second, or 0.0 where it is not believable: above `limit` (up to 1000 fps,
    the default, is high-speed footage; beyond, a clock rate reported instead of a frame rate)."""
    fps = float(rate or 0.0)
    return fps if np.isfinite(fps) and 0 < fps <= limit else 0.0


@dataclass
class _AvPlan:
    """Where each sampled frame is in the demuxed packets, and where its decoding can start."""

    packets: list
    pts: np.ndarray  # presentation timestamp of each packet, in decode order
    order: np.ndarray  # order[rank] = decode position of the frame at that presentation rank
    keyframes: np.ndarray  # decode positions of the keyframe packets

    @classmethod
    def of(cls, packets: list) -> _AvPlan:
        pts = np.array([p.pts for p in packets], dtype=np.int64)
        keyframes = np.flatnonzero([p.is_keyframe for p in packets])
        return cls(packets, pts, np.argsort(pts, kind="stable"), keyframes)

    def start(self, rank: int) -> int:
        """The last keyframe at or before the frame's packet that does not follow it in presentation
        order (an open GOP's leading frames need the GOP before)."""
        at = int(self.order[rank])
        start = self.keyframes[self.keyframes <= at]
        start = start[self.pts[start] <= self.pts[at]]
        return int(start[-1]) if len(start) else 0

    def runs(self, targets: list[int]) -> list[_AvGroup]:
        """`targets` (sorted ranks) in runs: a run starts at a keyframe with a reset decoder, where
        the next target's keyframe lies past the packet of the targets so far; otherwise decoding
        goes on. Every decoder cuts here (_decode_av_run), alone or in parallel, so the decoder
        state each frame comes from does not depend on how the runs are shared out. (In a damaged
        stream, what FFmpeg conceals can still differ: it fills from whatever buffers it reuses.)"""
        runs: list[_AvGroup] = []
        end = -1  # packet position the current run has reached
        sizes = np.cumsum([0] + [p.size for p in self.packets])
        for rank in targets:
            start, at = self.start(rank), int(self.order[rank])
            if not runs or start > end + 1:
                runs.append(_AvGroup([], 0, 0))
                first = start
            else:
                first = end + 1
            run = runs[-1]
            run.ranks.append(rank)
            if at > end:
                run.bytes += int(sizes[at + 1] - sizes[max(first, 0)])
                run.packets += at + 1 - max(first, 0)
                end = at
        return runs

    def groups(self, targets: list[int], workers: int) -> list[_AvGroup]:
        """The runs of `targets` in at most `workers` consecutive groups that separate decoders can
        take in parallel, of about equal cost (bytes of the packets each decodes)."""
        runs = self.runs(targets)
        workers = max(1, min(workers, len(runs)))
        total = sum(run.bytes for run in runs)
        groups = [_AvGroup([], 0, 0)]
        done = 0
        for run in runs:
            share = total * len(groups) / workers
            if groups[-1].ranks and len(groups) < workers and done + run.bytes / 2 > share:
                groups.append(_AvGroup([], 0, 0))
            groups[-1].ranks.extend(run.ranks)
            groups[-1].bytes += run.bytes
            groups[-1].packets += run.packets
            done += run.bytes
        return groups


@dataclass
class _AvGroup:
    """Sampled frames one decoder takes, and what it decodes for them."""

    ranks: list[int]
    bytes: int  # of the packets it sends the decoder
    packets: int


def _worth_sharing(groups: list[_AvGroup], big_frames: bool) -> bool:
    """Whether decoders in parallel beat one decoder: every group must hold enough work to pay for
    a second opening of the file and a thread, in packets big enough that decoding, not Python's
    per-packet work (which holds the lock), is the cost; and above 640x480 the largest group must be
    small enough to beat one decoder's frame threading."""
    if len(groups) < 2:
        return False
    sizes = [group.bytes for group in groups]
    if min(sizes) < PARALLEL_MIN_GROUP_BYTES or sum(sizes) < PARALLEL_MIN_PACKET_BYTES * sum(g.packets for g in groups):
        return False
    return not big_frames or max(sizes) * FRAME_THREADING_GAIN <= sum(sizes)


def _decode_av(path: Path, context, packets: list, targets: np.ndarray, size, *, cores: int):
    """Decode the frames at sorted unique presentation ranks `targets` of demuxed `packets`.

    Frame i is the packet with the i-th smallest pts. Where the samples fall in several runs that
    each start at a keyframe, the runs are shared out among up to `cores` decoders in threads (FFmpeg
    decodes without holding Python's lock), each with its share of the cores, when that pays (see
    _worth_sharing): the same packets are decoded, on more cores at once. Measured on 2 cores, 16
    samples: bikes.mp4 (H.264, 640x272, 6 keyframes) 78 → 44 ms; 320x240 XVID 15 → 11 ms; MPEG-4
    part 2 1280x720, 10 s, 89 → 49 ms (its single decoder used frame threading). A decoder that
    starts afresh mid-stream may miss what a decoder that went through the earlier packets knows
    (headers sent once, in a spliced or damaged stream): when the shared decoding misses a frame,
    one decoder does it all again, so the frames never depend on `cores`. None when the video
    turns out rotated.
    """
    plan = _AvPlan.of(packets)
    ranks = [int(t) for t in targets]
    groups = plan.groups(ranks, cores)
    if not _worth_sharing(groups, context.width * context.height > AV_SINGLE_THREAD_PIXELS):
        set_av_decoder_threads(context, cores)
        return _decode_av_run(context, plan, ranks, size)
    threads = max(1, cores // len(groups))
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(groups) - 1, thread_name_prefix="varec-av") as pool:
        others = [pool.submit(_decode_av_own_decoder, path, plan, g.ranks, size, threads) for g in groups[1:]]
        set_av_decoder_threads(context, threads)
        results = [_decode_av_run(context, plan, groups[0].ranks, size)] + [future.result() for future in others]
    if any(result is None for result in results):
        return None
    frames: dict[int, np.ndarray] = {}
    for result in results:
        frames.update(result)
    if len(frames) < len(ranks):  # one decoder from the start, as with one core
        decode_av_packet(context, None)
        context.flush_buffers()
        return _decode_av_run(context, plan, ranks, size)
    return frames


def _decode_av_own_decoder(path: Path, plan: _AvPlan, targets: list[int], size, threads: int):
    """_decode_av_run on a decoder of its own, from a second opening of the file: its codec
    parameters, the stream headers included (FFmpeg copies headers found only in the first packet
    into them), are the ones the first decoder started from."""
    container = open_av_container(path)
    if container is None:
        return {}
    try:
        context = container.streams.video[0].codec_context
        set_av_decoder_threads(context, threads)
        return _decode_av_run(context, plan, targets, size)
    finally:
        container.close()


def decode_av_packet(context, packet) -> list:
    import av

    try:
        return context.decode(packet)
    except av.FFmpegError:  # a corrupt packet: its frame is missing, as in OpenCV
        return []


def _decode_av_run(context, plan: _AvPlan, targets: list[int], size) -> dict[int, np.ndarray] | None:
    """Decode the frames at sorted presentation ranks `targets` with one decoder.

    Each run (plan.runs) is decoded from its keyframe by a reset decoder, and only its own frames
    are taken from it: a frame the previous run's decoder happened to reach first is decoded again
    in its run, as a decoder of its own would. Packets that hold no target are decoded with
    skip_frame NONREF: a frame no other frame references is dropped undecoded. Once a run's last
    sample has its packet in, the decoder is drained rather than fed on: the packets after it, which
    a frame-threaded decoder or a B-frame stream's reorder delay would otherwise start decoding, are
    not decoded (bikes.mp4, 5 samples: 3-4% less time). None when the video turns out rotated.

    A frame-threaded decoder waits for its next packet while its caller converts a frame, and then
    the conversions and the decoding share the cores. So for a decoder on several threads (see
    set_av_decoder_threads) the sampled frames are held, up to AV_HELD_BYTES, and converted in batches on
    as many threads (see _convert_av_frames); on one thread each is converted as it comes.
    Measured on 2 cores, bigbuckbunny.mp4 (720p H.264, every frame decoded), 16 samples, reads one
    after another: 142 ms converting as they come, 137 held and converted on one thread, 127-132 on
    two. Converting each sampled frame on a worker thread as it comes out, while decoding goes on,
    was slower (one or two workers, even at nice 19: 187-191 ms against 175-183 held): the converter
    takes the cores from the frame threads, which wait on each other's progress. Between reads that
    allocate and free hundreds of MB (the clips benchmark's "read all"), the held frames' fresh buffers
    cost page faults, and the gain shrinks to about 1%. (Pinning glibc's
    malloc thresholds, mmap 32 MiB and trim 64 MiB, made later reads fault a few dozen times instead
    of ~6000 and 4-8% faster, but halved a Keras training epoch through a frozen MobileNetV2 in the
    same process, 5.0 → 10.1 s in two runs each way: not done.) Measured again after to_model_frame
    became 3x cheaper, 16 samples interleaved with read all (medians of 15 rounds): held 166 ms,
    converted as they come 170, converted as they come on a SCHED_IDLE thread 168; held frames copied
    into a buffer kept per thread (a tenth of the page faults, but a copy) 2% faster in paired rounds,
    within the noise: none kept. Decoding alone, converting nothing, takes 143 ms there.
    """
    from av.video.reformatter import VideoReformatter

    # One swscale context for many frames: frame.to_ndarray(format=...) builds one per frame, with a
    # thread pool (measured: 3.5 ms a frame at 320x240, against 0.1 ms reused on one thread).
    reformatter = VideoReformatter()
    convert_threads = max(1, context.thread_count)  # as many as decode (set by set_av_decoder_threads)
    hold_limit = 0  # frames held before converting; 0: none held yet
    packets, order = plan.packets, plan.order
    wanted = {int(plan.pts[order[t]]): t for t in targets}
    target_positions = {int(order[t]) for t in targets}
    frames: dict[int, np.ndarray] = {}
    held: dict[int, object] = {}  # decoded sampled frames (av.VideoFrame), not converted yet
    taking: set[int] = set()  # ranks of the run being decoded
    rotated = False

    def send(packet) -> None:
        nonlocal rotated, hold_limit
        for frame in decode_av_packet(context, packet):
            rank = wanted.get(frame.pts)
            if rank is None or rank in frames or rank in held or rank not in taking:
                continue
            if getattr(frame, "rotation", 0) % 360:
                rotated = True
                return
            if convert_threads <= 1:
                frames[rank] = _av_model_frame(reformatter, frame, size)
                continue
            if not hold_limit:
                hold_limit = max(1, AV_HELD_BYTES // max(1, sum(plane.buffer_size for plane in frame.planes)))
            held[rank] = frame
            if len(held) >= hold_limit:
                frames.update(_convert_av_frames(held, size, convert_threads))
                held.clear()

    position = None  # decode position of the next packet to send
    skipping = None
    drained = False
    for run in plan.runs(targets):
        if position is not None:  # the previous run's last frames, then a reset decoder
            if not drained:
                send(None)
            context.flush_buffers()
        taking = set(run.ranks)
        position, drained = plan.start(run.ranks[0]), False
        last_packet = max(int(order[rank]) for rank in run.ranks)
        for target in run.ranks:
            while target not in frames and target not in held and not rotated:
                if position >= len(packets) or position > last_packet:
                    if not drained:
                        send(None)  # drain: the last frames come out only now
                        drained = True
                    break
                skip = position not in target_positions
                if skip != skipping:
                    context.skip_frame = "NONREF" if skip else "DEFAULT"
                    skipping = skip
                send(packets[position])
                position += 1
            if rotated:
                return None
    if held:
        frames.update(_convert_av_frames(held, size, convert_threads))
    return frames


def _av_model_frame(reformatter, frame, size) -> np.ndarray:
    """A decoded av frame → model frame: BGR by swscale as OpenCV converts it, then to_model_frame."""
    return to_model_frame(reformatter.reformat(frame, format="bgr24", threads=1).to_ndarray(), size)


def _convert_av_frames(held: dict, size, threads: int) -> dict[int, np.ndarray]:
    """_av_model_frame for each held frame, shared among `threads` threads (swscale and OpenCV run
    without Python's lock), each with its own swscale context."""
    from av.video.reformatter import VideoReformatter

    def convert(ranks: list[int]) -> dict[int, np.ndarray]:
        reformatter = VideoReformatter()
        return {rank: _av_model_frame(reformatter, held[rank], size) for rank in ranks}

    ranks = sorted(held)
    threads = max(1, min(threads, len(ranks)))
    if threads == 1:
        return convert(ranks)
    from concurrent.futures import ThreadPoolExecutor

    shares = [ranks[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="varec-convert") as pool:
        others = [pool.submit(convert, share) for share in shares[1:]]
        converted = convert(shares[0])
        for future in others:
            converted.update(future.result())
    return converted


def _is_jpeg_stream(info: VideoInfo, cap) -> bool:
    import cv2

    rotated = int(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0) % 360 != 0
    return info.codec.lower() in JPEG_FOURCCS and not rotated


def _scan_may_pay(info: VideoInfo, num_frames: int, views: int) -> bool:
    """Whether a packet scan can change the plan: the header has no count, or two samples are
    far enough apart that a seek could cost less than grabbing forward (see plan_seeks)."""
    if info.frame_count <= 0:
        return True
    targets = np.unique(sample_frame_indices(info.frame_count, num_frames, views=views))
    gaps = np.diff(np.concatenate([[-1], targets]))
    return bool(gaps.max() > SEEK_BACKOFF + SEEK_OVERHEAD + 1)


def _read_scanned(path: Path, cap, info: VideoInfo, jpeg: bool, num_frames, size, views) -> Clips | None:
    """read_clips after a packet scan (a second, raw-mode capture); `cap` is the decoding capture,
    nothing read from it yet. None when there is no raw mode or no packet (then the header is
    trusted and verified)."""
    keep: set[int] = set()
    if jpeg and info.frame_count > 0:  # fetch the packets the header count points to, in one pass
        keep = set(np.unique(sample_frame_indices(info.frame_count, num_frames, views=views)).tolist())
    scan = _scan(path, keep)
    if scan is None or scan.count == 0:
        return None
    total = scan.count
    indices = sample_frame_indices(total, num_frames, views=views)
    targets = np.unique(indices)
    frames: dict[int, np.ndarray] = {}
    if jpeg:
        if not set(targets.tolist()) <= set(scan.packets):  # the header lied: fetch the right ones
            scan = _scan(path, set(targets.tolist())) or scan
        scale = _jpeg_scale(info.height, info.width, size)
        frame_size = (info.height, info.width)
        frames = _decode_jpeg_packets(scan.packets, targets, size, frame_size=frame_size, scale=scale)
        mode = "jpeg"
    else:
        mode = choose_strategy(total, indices, keyframes=scan.keyframes)
    left = np.array([t for t in targets.tolist() if t not in frames], dtype=np.int64)
    if len(left):  # everything but a JPEG stream, or JPEG packets imdecode refused: decode them
        threads = _decode_threads(info)
        decoder = open_opencv_capture(path, threads=threads) if threads else cap
        try:
            decoded, complete = _decode_planned(decoder, left, plan_seeks(left, scan.keyframes), size)
        finally:
            decoder.release()
        frames.update(decoded)
        if not complete:  # fewer decodable frames than packets (a truncated file): count them
            return _resample_sequentially(path, num_frames, size, views, info, mode)
    return _assemble(path, frames, indices, total, info.fps, mode)


def _scan(path: Path, keep: set[int]) -> _PacketScan | None:
    raw = _open_raw(path)
    if raw is None:
        return None
    try:
        return _scan_packets(raw, keep)
    finally:
        raw.release()


def _read_trusting_header(path: Path, cap, info: VideoInfo, num_frames, size, views, strategy) -> Clips:
    """read_clips from the header's frame count, verified while decoding (grab, seek, no raw mode)."""
    import cv2

    total = info.frame_count
    if total <= 0:
        total = count_frames(path)
        if total == 0:
            raise VideoError(f"{path}: no decodable frame in this video")
    indices = sample_frame_indices(total, num_frames, views=views)
    mode = strategy if strategy in ("grab", "seek") else choose_strategy(total, indices)
    if mode == "seek":
        frames = _decode_seeking(cap, indices, size)
        cap.set(cv2.CAP_PROP_POS_FRAMES, total)
        header_right = len(frames) == len(np.unique(indices)) and not cap.grab()
    else:
        mode = "grab"
        frames, grabbed, more = _decode_sequential(cap, indices, size)
        header_right = grabbed == total and not more
    if not header_right:
        return _resample_sequentially(path, num_frames, size, views, info, mode)
    return _assemble(path, frames, indices, total, info.fps, mode)


def _resample_sequentially(path: Path, num_frames, size, views, info: VideoInfo, mode: str) -> Clips:
    """Count the decodable frames, re-sample from that count and decode sequentially."""
    total = count_frames(path)
    if total == 0:
        raise VideoError(f"{path}: no decodable frame in this video")
    indices = sample_frame_indices(total, num_frames, views=views)
    from varec_cli.video.frames import open_frame_capture

    cap = open_frame_capture(path)
    try:
        frames, _, _ = _decode_sequential(cap, indices, size)
    finally:
        cap.release()
    return _assemble(path, frames, indices, total, info.fps, mode)


def _assemble(path: Path, frames: dict[int, np.ndarray], indices: np.ndarray, total: int, fps: float, mode: str):
    missing = [int(i) for i in np.unique(indices) if int(i) not in frames]
    if missing:
        if not frames:
            raise VideoError(f"{path}: no decodable frame in this video")
        # A frame that grabs but fails to decode: fall back to the nearest decoded one.
        have = np.array(sorted(frames))
        for i in missing:
            frames[i] = frames[int(have[np.abs(have - i).argmin()])]
    stacked = np.stack([np.stack([frames[int(i)] for i in row]) for row in indices])
    return Clips(frames=stacked, indices=indices, frame_count=total, fps=fps, strategy=mode)


def iter_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Every frame of a video in order, as OpenCV BGR arrays, one at a time (constant memory):
    OpenCV's decoding, or PyAV's where OpenCV's decodes nothing (see video/frames.py)."""
    from varec_cli.video.frames import open_frame_capture

    cap = open_frame_capture(path)
    try:
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            yield frame
    finally:
        cap.release()
