"""video/writer.py (codec by extension, atomic output) and video/overlay.py (the label box)."""

import os
import stat

import numpy as np
import pytest
from synthetic import decode_index, index_frame, require_x264, write_index_video

from varec_cli.errors import VideoError
from varec_cli.video.reader import iter_frames, probe_video
from varec_cli.video.overlay import Box, default_font_scale, draw_predictions
from varec_cli.video.writer import AtomicVideoWriter, check_output_path, codecs_for, encoded_size


# --- writer ----------------------------------------------------------------------------------------


def test_codec_follows_the_extension(tmp_path):
    assert codecs_for("a.mp4") == ("h264", "avc1", "mp4v") == codecs_for("A.MP4") == codecs_for("a.m4v")
    assert codecs_for("a.avi") == ("MJPG", "XVID")
    for name in ("a.mkv", "a.mov", "a.mp4.txt"):
        with pytest.raises(VideoError, match="unsupported output extension"):
            codecs_for(name)
    with pytest.raises(VideoError, match="a: no extension to choose the video format by; use one of .avi"):
        codecs_for("a")


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_writes_frames_fps_and_size(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    with AtomicVideoWriter(path, 29.97, (48, 80)) as writer:
        for i in range(20):
            writer.write(index_frame(i))
    assert writer.codec in codecs_for(path) and writer.frames_written == 20
    frames, fps = list(iter_frames(path)), probe_video(path).fps
    assert fps == pytest.approx(29.97, rel=1e-3)
    assert [f.shape for f in frames] == [(48, 80, 3)] * 20
    from synthetic import decode_index

    assert [decode_index(f) for f in frames] == list(range(20))
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not the temp file's private 0600


def test_mp4_is_h264_that_browsers_play(tmp_path):
    """H.264 in 4:2:0 with its colour matrix stated and the index first (faststart), odd sides rounded down."""
    from fractions import Fraction

    import av

    require_x264()
    path = tmp_path / "out.mp4"
    rng = np.random.default_rng(0)
    frames = [np.clip(index_frame(i, 49, 81).astype(int) + rng.integers(-3, 4, (49, 81, 3)), 0, 255).astype(np.uint8)
              for i in range(30)]
    with AtomicVideoWriter(path, 30000 / 1001, (49, 81)) as writer:
        for frame in frames:
            writer.write(frame)
    assert writer.codec == "h264" and writer.frames_written == 30
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        assert (context.name, context.pix_fmt, stream.width, stream.height) == ("h264", "yuv420p", 80, 48)
        assert stream.average_rate == Fraction(30000, 1001)
        assert (int(context.colorspace), int(context.color_range)) == (6, 1)  # BT.601 (SMPTE 170M), limited range
        assert len([f for f in container.decode(stream)]) == 30
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")
    written = list(iter_frames(path))
    from synthetic import decode_index

    assert [decode_index(f) for f in written] == list(range(30))
    error = np.mean([np.abs(a.astype(int) - b[:48, :80].astype(int)).mean() for a, b in zip(written, frames)])
    assert error < 3.0  # grey levels: CRF 20 keeps the picture


@pytest.mark.parametrize("encoder", [("no-such-encoder", {}), ("libx264", {"preset": "no-such-preset"})])
def test_an_mp4_encoder_pyav_cannot_open_falls_back_to_opencvs(tmp_path, monkeypatch, encoder):
    from varec_cli.video import writer as writer_module

    monkeypatch.setitem(writer_module.PYAV_ENCODERS, "h264", encoder)
    path = tmp_path / "out.mp4"
    with AtomicVideoWriter(path, 25, (48, 80)) as writer:
        for i in range(10):
            writer.write(index_frame(i))
    assert writer.codec in ("avc1", "mp4v") and len(list(iter_frames(path))) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


@pytest.mark.parametrize("suffix, encoders", [(".avi", None), (".mp4", None), (".mp4", "OpenCV's")])
def test_a_file_the_disk_cut_short_is_an_error_not_a_video(tmp_path, suffix, encoders):
    """A full disk, as a file size limit (RLIMIT_FSIZE) in a child process: OpenCV's writer ignores its
    failed writes, and the file would have passed for complete."""
    import subprocess
    import sys

    pytest.importorskip("resource")
    child = f"""
import resource, signal
import numpy as np
from varec_cli.errors import VideoError
from varec_cli.video import writer as writer_module
from varec_cli.video.writer import AtomicVideoWriter
if {encoders!r}:  # PyAV without x264: an mp4 by OpenCV, which fails to write its index, unreported
    writer_module.PYAV_ENCODERS["h264"] = ("no-such-encoder", {{}})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
noise = np.random.default_rng(0).integers(0, 256, (100, 240, 320, 3), dtype=np.uint8)
try:
    with AtomicVideoWriter({str(tmp_path / ("out" + suffix))!r}, 25, (240, 320)) as writer:
        for frame in noise:
            writer.write(frame)
except VideoError as failed:
    print(failed)
"""
    shown = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    message = shown.stdout.strip()
    assert message.startswith(f"{tmp_path / ('out' + suffix)}: "), message
    # OpenCV's writers are caught by the file they leave: frames missing (avi) or no index (mp4); PyAV's
    # fails as it writes
    expected = {
        (".avi", None): "of the 100 frames reached the file (disk full?); nothing written",
        (".mp4", None): "cannot write the video: File too large",
        (".mp4", "OpenCV's"): "the written file cannot be read back (disk full?); nothing written",
    }[suffix, encoders]
    assert expected in message, message
    assert list(tmp_path.iterdir()) == []


def _tone(seconds: float, rate: int = 44100, hz: float = 440.0, silent_until: float = 0.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return np.where(t < silent_until, 0.0, 0.5 * np.sin(2 * np.pi * hz * t))


def _write(path, frames: int, audio_from=None) -> AtomicVideoWriter:
    with AtomicVideoWriter(path, 25, (48, 80), audio_from=audio_from) as writer:
        for i in range(frames):
            writer.write(index_frame(i))
    return writer


def test_mp4_output_keeps_the_sound_copied_and_cut_to_the_picture(tmp_path):
    """AAC is copied packet for packet; the 3 s of sound end with the 2 s of frames."""
    import av
    from synthetic import sound_of, write_video_with_sound

    require_x264()
    source = write_video_with_sound(tmp_path / "talk.mp4", [index_frame(i) for i in range(50)], _tone(3.0))
    writer = _write(tmp_path / "out.mp4", 50, audio_from=source)
    assert (writer.codec, writer.audio, writer.audio_left_out) == ("h264", "aac", False)
    with av.open(str(source)) as original, av.open(str(tmp_path / "out.mp4")) as copy:
        before = [bytes(p) for p in original.demux(original.streams.audio[0]) if p.size]
        after = [bytes(p) for p in copy.demux(copy.streams.audio[0]) if p.size]
    assert after == before[: len(after)] and 85 <= len(after) <= 89  # 2 s of 1024-sample packets, priming included
    heard, rate, codec = sound_of(tmp_path / "out.mp4")
    assert (rate, codec) == (44100, "aac") and abs(len(heard) / rate - 2.0) < 0.05
    assert [decode_index(f) for f in iter_frames(tmp_path / "out.mp4")] == list(range(50))


def test_sound_in_a_codec_mp4_does_not_hold_is_encoded_to_aac(tmp_path):
    from synthetic import sound_of, write_video_with_sound

    require_x264()
    source = write_video_with_sound(tmp_path / "talk.avi", [index_frame(i) for i in range(50)], _tone(2.0),
                                    audio_codec="pcm_s16le")
    writer = _write(tmp_path / "out.mp4", 50, audio_from=source)
    assert writer.audio == "aac (from pcm_s16le)"
    heard, rate, _ = sound_of(tmp_path / "out.mp4")
    spectrum = np.abs(np.fft.rfft(heard[4096:4096 + 16384]))
    assert abs(np.argmax(spectrum) * rate / 16384 - 440) < 5  # the same tone
    assert abs(len(heard) / rate - 2.0) < 0.05


def test_the_sound_starts_with_the_first_frame(tmp_path):
    """Frames from 0.5 s, a tone from 0.5 s (silence before): the output starts with the tone."""
    from synthetic import sound_of, write_video_with_sound

    require_x264()
    source = write_video_with_sound(tmp_path / "late.mp4", [index_frame(i) for i in range(25)],
                                    _tone(1.5, silent_until=0.5), video_start=0.5)
    _write(tmp_path / "out.mp4", 25, audio_from=source)
    heard, rate, _ = sound_of(tmp_path / "out.mp4")
    first = heard[2048 : 2048 + rate // 10]  # after the encoder's priming
    assert np.sqrt(np.mean(first**2)) > 0.2  # the tone (RMS 0.35), not the silence before the picture


def test_mp3_is_copied(tmp_path):
    from synthetic import write_video_with_sound

    require_x264()
    source = write_video_with_sound(tmp_path / "talk.avi", [index_frame(i) for i in range(50)], _tone(2.0),
                                    audio_codec="libmp3lame")
    assert _write(tmp_path / "out.mp4", 50, audio_from=source).audio == "mp3"  # the decoder's name is mp3float


def test_a_sample_rate_aac_does_not_take_is_encoded_at_the_nearest_it_does(tmp_path):
    from synthetic import sound_of, write_video_with_sound

    require_x264()
    source = write_video_with_sound(tmp_path / "studio.mkv", [index_frame(i) for i in range(50)],
                                    _tone(2.0, rate=192_000), rate=192_000, audio_codec="pcm_s16le")
    writer = _write(tmp_path / "out.mp4", 50, audio_from=source)
    assert (writer.codec, writer.audio) == ("h264", "aac (from pcm_s16le)")
    heard, rate, _ = sound_of(tmp_path / "out.mp4")
    assert rate == 96_000 and abs(len(heard) / rate - 2.0) < 0.05
    spectrum = np.abs(np.fft.rfft(heard[8192 : 8192 + 32768]))
    assert abs(np.argmax(spectrum) * rate / 32768 - 440) < 5


def test_sound_that_turns_from_stereo_to_mono_is_kept(tmp_path):
    """Broadcast recordings switch layouts mid-stream (MP2 in MPEG-TS here, encoded to AAC)."""
    from fractions import Fraction

    import av
    from synthetic import sound_of

    require_x264()
    source = tmp_path / "broadcast.ts"

    def mp2(layout: str, first: int, samples: int) -> list:
        encoder = av.CodecContext.create("mp2", "w")
        encoder.sample_rate, encoder.layout, encoder.format = 48_000, layout, "s16"
        encoder.time_base = Fraction(1, 48_000)
        channels = len(av.AudioLayout(layout).channels)
        tone = (_tone(samples / 48_000, rate=48_000) * 20_000).astype(np.int16)
        packets = []
        for start in range(0, samples, 1152):
            block = np.repeat(tone[start : start + 1152], channels)[None, :]
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = 48_000, first + start, Fraction(1, 48_000)
            packets += encoder.encode(frame)
        return packets + encoder.encode(None)

    with av.open(str(source), "w", format="mpegts") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 80, 48, "yuv420p"
        audio = container.add_stream("mp2", rate=48_000)
        audio.layout = "stereo"
        for i in range(50):
            picture = av.VideoFrame.from_ndarray(index_frame(i), format="bgr24")
            picture.pts = i
            container.mux(video.encode(picture))
        container.mux(video.encode(None))
        for packet in mp2("stereo", 0, 48_000) + mp2("mono", 48_000, 48_000):
            packet.stream = audio
            container.mux(packet)
    with av.open(str(source)) as container:
        assert {frame.layout.name for frame in container.decode(audio=0)} == {"stereo", "mono"}
    writer = _write(tmp_path / "out.mp4", 50, audio_from=source)
    assert writer.audio == "aac (from mp2)"
    heard, rate, _ = sound_of(tmp_path / "out.mp4")
    assert abs(len(heard) / rate - 2.0) < 0.05
    assert np.sqrt(np.mean(heard[rate + 4800 : rate + 9600] ** 2)) > 0.2  # the mono second is there too


def _loudness_at_the_start_of_its_copy(source, output) -> float:
    """Copy `source`'s frames as decoded (the first, frame 25, at 1 s) with its sound, as annotate
    does; the RMS of the copy's first 0.1 s of sound, after the AAC encoder's priming."""
    from synthetic import sound_of

    frames = list(iter_frames(source))
    assert decode_index(frames[0]) == 25
    with AtomicVideoWriter(output, 25, (48, 80), audio_from=source) as writer:
        for frame in frames:
            writer.write(frame)
    heard, rate, _ = sound_of(output)
    return float(np.sqrt(np.mean(heard[2048 : 2048 + rate // 10] ** 2)))


def test_the_sound_starts_with_the_first_frame_that_decodes(tmp_path):
    """A recording that starts mid-GOP: its first 10 frames cannot decode, the picture starts at
    frame 25 (1 s, the next keyframe), and so must the sound (silent before 1 s here)."""
    from synthetic import without_first_video_packets, write_video_with_sound

    require_x264()
    whole = write_video_with_sound(
        tmp_path / "whole.ts", [index_frame(i) for i in range(75)], _tone(3.0, silent_until=1.0),
        video_options={"g": "25", "bf": "0", "x264-params": "repeat-headers=1:scenecut=0"},
    )
    cut = without_first_video_packets(whole, tmp_path / "cut.ts", 10)
    assert _loudness_at_the_start_of_its_copy(cut, tmp_path / "out.mp4") > 0.2  # the tone at once, no silence first


def test_the_sound_starts_with_the_first_frame_after_damaged_ones(tmp_path):
    """An AVI whose first 25 JPEG frames are damaged: OpenCV passes over them, the picture starts at
    frame 25 (1 s), and so must the sound (silent before 1 s), though PyAV's decoder raises on them."""
    from synthetic import without_first_video_packets, write_video_with_sound

    require_x264()
    whole = write_video_with_sound(tmp_path / "whole.avi", [index_frame(i) for i in range(75)],
                                   _tone(3.0, silent_until=1.0), audio_codec="pcm_s16le")
    damaged = without_first_video_packets(whole, tmp_path / "damaged.avi", 25, damaged=True)
    assert _loudness_at_the_start_of_its_copy(damaged, tmp_path / "out.mp4") > 0.2


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_a_ctrl_c_in_the_middle_of_a_frame_lets_it_finish(tmp_path, monkeypatch, suffix):
    """`varec stream FILE -o rec.mp4` writes from the main thread and keeps its recording on Ctrl-C. A
    real SIGINT, sent while the encoder is at the 10th frame, stops the writing after that frame, whole:
    not with its packets lost or written twice (x264), nor counted without having gone in (OpenCV)."""
    import signal

    from varec_cli.video import writer as writer_module

    if suffix == ".mp4":
        require_x264()
    encoder = writer_module._AvEncoder if suffix == ".mp4" else writer_module._OpenCvEncoder
    write = encoder.write
    calls = []

    def interrupted_at_the_tenth(self, frame):
        calls.append(1)
        if len(calls) == 10:
            os.kill(os.getpid(), signal.SIGINT)  # Python acts on it at its next instruction, here
        write(self, frame)

    monkeypatch.setattr(encoder, "write", interrupted_at_the_tenth)
    interrupted = False
    with AtomicVideoWriter(tmp_path / f"rec{suffix}", 25, (48, 80)) as writer:
        try:
            for i in range(20):
                writer.write(index_frame(i))
        except KeyboardInterrupt:
            interrupted = True  # as the stream does: the recording is finalised
    assert interrupted and writer.frames_written == 10
    assert [decode_index(f) for f in iter_frames(tmp_path / f"rec{suffix}")] == list(range(10))


def test_avi_output_and_silent_sources_have_no_sound(tmp_path):
    import av
    from synthetic import write_video_with_sound

    source = write_video_with_sound(tmp_path / "talk.mp4", [index_frame(i) for i in range(10)], _tone(0.4))
    writer = _write(tmp_path / "out.avi", 10, audio_from=source)
    assert (writer.audio, writer.audio_left_out) == (None, True)
    silent = write_index_video(tmp_path / "silent.avi", 10)
    writer = _write(tmp_path / "out.mp4", 10, audio_from=silent)
    assert (writer.audio, writer.audio_left_out) == (None, False)
    for name in ("out.avi", "out.mp4"):
        with av.open(str(tmp_path / name)) as container:
            assert not container.streams.audio


def test_failure_inside_the_block_leaves_nothing(tmp_path):
    path = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with AtomicVideoWriter(path, 25, (48, 80)) as writer:
            writer.write(index_frame(1))
            assert writer.temp_path.exists() and writer.temp_path.parent == tmp_path
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_an_existing_output(tmp_path):
    path = tmp_path / "out.avi"
    path.write_bytes(b"old")
    with pytest.raises(ValueError):
        with AtomicVideoWriter(path, 25, (48, 80)) as writer:
            writer.write(index_frame(1))
            writer.write(np.zeros((10, 10, 3), np.uint8))  # wrong size
    assert path.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_no_frame_is_an_error(tmp_path):
    with pytest.raises(VideoError, match="no frame"):
        with AtomicVideoWriter(tmp_path / "out.mp4", 25, (48, 80)):
            pass
    assert list(tmp_path.iterdir()) == []


def test_check_output_path(tmp_path):
    video = write_index_video(tmp_path / "in.avi", 3)
    with pytest.raises(VideoError, match="overwrite the input"):
        check_output_path(video, video)
    with pytest.raises(VideoError, match="overwrite the input"):
        check_output_path(tmp_path / "." / "in.avi", video)
    os.link(video, tmp_path / "hard.avi")
    with pytest.raises(VideoError, match="overwrite the input"):
        check_output_path(tmp_path / "hard.avi", video)
    with pytest.raises(VideoError, match="does not exist"):
        check_output_path(tmp_path / "missing" / "out.mp4", video)
    with pytest.raises(VideoError, match="unsupported output extension"):
        check_output_path(tmp_path / "out.webm", video)
    (tmp_path / "d.mp4").mkdir()
    with pytest.raises(VideoError, match="names a folder"):
        check_output_path(tmp_path / "d.mp4", video)
    for folder in (f"{tmp_path}/", f"{tmp_path}/new/"):  # a folder, there or not: not "extension (none)"
        with pytest.raises(VideoError, match=r"names a folder; give the video's file name, e.g. .*/out.mp4"):
            check_output_path(folder, video)
    assert check_output_path(tmp_path / "out.mp4", video) == tmp_path / "out.mp4"
    assert check_output_path(tmp_path / ".mp4", video) == tmp_path / ".mp4"  # a hidden file, but an mp4
    with AtomicVideoWriter(tmp_path / ".mp4", 25.0, (48, 80)) as writer:  # and it can be written
        writer.write(index_frame(0))
    assert sum(1 for _ in iter_frames(tmp_path / ".mp4")) == 1


def test_frames_too_small_to_encode_are_refused_before_any_work(cli, tmp_path):
    video = write_index_video(tmp_path / "dot.avi", 5, height=1, width=40)
    with pytest.raises(VideoError, match="40x1 frames are too small to encode"):
        AtomicVideoWriter(tmp_path / "out.avi", 25.0, (1, 40))
    for args in (("annotate", video, "-o", tmp_path / "out.avi"), ("stream", "-s", video, "--no-display", "-o", tmp_path / "rec.avi")):
        result = cli(*args, "-m", tmp_path / "no-model.keras")  # said before the model is looked for
        assert result.exit_code == 1 and result.stderr.strip() == f"error: {video}: its 40x1 frames are too small to encode (the least is 2x2)"


def test_frames_narrower_than_8_pixels_are_written_to_avi_without_killing_the_process(tmp_path):
    """OpenCV's Motion-JPEG encoder corrupts the heap on such frames and the process dies; they go to
    Xvid instead. In a child process: if it dies, the test fails instead of taking pytest with it."""
    import subprocess
    import sys

    sizes = [(4, 4), (12, 2), (8, 6), (20, 4), (120, 6)]
    script = (
        "import sys, numpy as np\n"
        "from varec_cli.video.writer import AtomicVideoWriter\n"
        f"for h, w in {sizes!r}:\n"
        "    with AtomicVideoWriter(f'{sys.argv[1]}/{h}x{w}.avi', 10.0, (h, w)) as writer:\n"
        "        for i in range(6):\n"
        "            writer.write(np.full((h, w, 3), 40 * i, np.uint8))\n"
        "    print(h, w, writer.codec, flush=True)\n"
    )
    child = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, (child.returncode, child.stdout, child.stderr[-500:])
    for h, w in sizes:
        assert f"{h} {w} XVID" in child.stdout
        assert sum(1 for _ in iter_frames(tmp_path / f"{h}x{w}.avi")) == 6


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_output(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    readonly = tmp_path / "readonly.mp4"
    readonly.write_bytes(b"x")
    readonly.chmod(0o444)
    try:
        with pytest.raises(VideoError, match="not writable"):
            check_output_path(locked / "out.mp4")
        with pytest.raises(VideoError, match="not writable"):
            check_output_path(readonly)
    finally:
        locked.chmod(0o755)


def test_a_replaced_video_keeps_its_mode_a_new_one_follows_the_umask(tmp_path):
    import os

    previous = os.umask(0o027)
    try:
        with AtomicVideoWriter(tmp_path / "new.avi", 10.0, (32, 48)) as writer:
            writer.write(np.zeros((32, 48, 3), np.uint8))
        (tmp_path / "old.avi").write_bytes(b"old")
        os.chmod(tmp_path / "old.avi", 0o604)
        with AtomicVideoWriter(tmp_path / "old.avi", 10.0, (32, 48)) as writer:
            writer.write(np.zeros((32, 48, 3), np.uint8))
    finally:
        os.umask(previous)
    assert (tmp_path / "new.avi").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "old.avi").stat().st_mode & 0o777 == 0o604


def test_odd_sizes_are_written_even():
    assert encoded_size(144, 176) == (144, 176)
    assert encoded_size(143, 175) == (142, 174)


# --- overlay ---------------------------------------------------------------------------------------


def test_default_font_scale_follows_the_frame():
    assert default_font_scale(144, 176) == pytest.approx(0.4)
    assert default_font_scale(720, 1280) == pytest.approx(1.0)
    assert default_font_scale(2160, 3840) == pytest.approx(3.0)


@pytest.mark.parametrize("size", [(144, 176), (240, 320), (720, 1280), (2160, 3840)])
@pytest.mark.parametrize("top_k", [1, 5])
def test_box_fits_and_nothing_else_changes(size, top_k):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    before = frame.copy()
    lines = [(f"a_rather_long_action_label_{i}", 1.0 / (i + 1)) for i in range(top_k)]
    box = draw_predictions(frame, lines, bars=top_k > 1)
    assert 0 == box.x0 == box.y0 and 0 < box.x1 <= size[1] and 0 < box.y1 <= size[0]
    changed = np.any(frame != before, axis=2)
    assert not changed[box.y1 :, :].any() and not changed[:, box.x1 :].any()
    assert changed[box.y0 : box.y1, box.x0 : box.x1].mean() > 0.5  # darkened, with text on it
    # Text grows with the frame: about 1/27 of the shorter side per line (more with the 144p floor).
    assert box.y1 / top_k <= max(size) / 6


def test_text_is_shortened_rather_than_clipped():
    """At a forced large scale on a small frame, the box still fits (smaller text, '..' endings)."""
    frame = np.full((60, 80, 3), 200, np.uint8)
    box = draw_predictions(frame, [("ApplyEyeMakeup", 0.9), ("BlowDryHair", 0.1)], font_scale=3.0, bars=True)
    assert box.x1 <= 80 and box.y1 <= 60
    assert not np.any(frame[box.y1 :] != 200) and not np.any(frame[:, box.x1 :] != 200)


def test_a_huge_font_scale_is_fitted_like_any_other():
    """--font-scale 3000 crashed the process inside OpenCV (its stroke thickness) before any fitting;
    run in a child process so that a regression fails this test and not the whole run."""
    import subprocess
    import sys

    child = """
import numpy as np
from varec_cli.video.overlay import draw_predictions
for scale in (3000.0, 1e9):
    frame = np.full((48, 64, 3), 200, np.uint8)
    box = draw_predictions(frame, [("moving_left", 0.9), ("moving_right", 0.1)], font_scale=scale, bars=True)
    assert 0 < box.x1 <= 64 and 0 < box.y1 <= 48, box
    assert not np.any(frame[box.y1:] != 200) and not np.any(frame[:, box.x1:] != 200)
print("drawn")
"""
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "drawn", result.stderr[-2000:]


def test_nothing_to_draw():
    frame = np.zeros((20, 20, 3), np.uint8)
    assert draw_predictions(frame, []).empty and not frame.any()
    assert Box(0, 0, 0, 0).union(Box(0, 0, 5, 6)) == Box(0, 0, 5, 6)


LONG = "PlayingDhol_with_a_very_long_class_name_indeed"


def _fitted(height, width, lines, font_scale=None, bars=False):
    from varec_cli.video.overlay import _fit

    scale = font_scale or default_font_scale(height, width)
    pairs = [(label, f"  {score:.2f}") for label, score in lines]
    texts, fitted_scale, _ = _fit(pairs, scale, bars, width, height)
    return texts, fitted_scale


def test_a_long_label_is_shortened_and_keeps_its_score():
    texts, scale = _fitted(144, 176, [(LONG, 0.45)])
    assert texts[0].endswith("..  0.45") and texts[0].startswith("Play")
    assert scale == pytest.approx(0.4)  # readable: shortened rather than shrunk
    texts, _ = _fitted(144, 176, [(LONG, 0.45), ("Jump", 0.30), ("Ski", 0.25)], bars=True)
    assert [t[-4:] for t in texts] == ["0.45", "0.30", "0.25"]


def test_the_text_size_does_not_jump_with_the_label_length():
    """Otherwise the text shrinks and grows from segment to segment as long and short labels alternate."""
    assert _fitted(144, 176, [("Jump", 0.6)])[1] == _fitted(144, 176, [(LONG, 0.6)])[1] == pytest.approx(0.4)


@pytest.mark.parametrize("size, top_k", [((1080, 1920), 5), ((1280, 720), 1), ((240, 320), 1)])
def test_a_larger_font_scale_never_gives_smaller_text(size, top_k):
    lines = [(LONG, 0.45)] + [(f"label{i}", 0.1) for i in range(top_k - 1)]
    scales = [_fitted(*size, lines, font_scale=f, bars=top_k > 1)[1] for f in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)]
    # the largest that fits, to within 1%: asking for more never ends smaller (it did by 15%)
    assert all(later >= earlier * 0.98 for earlier, later in zip(scales, scales[1:])), scales
