"""Videos OpenCV opens but cannot decode (AV1: its wheels carry no decoder for it), and videos cut
short: annotate, stream and predict must all read them, and say the same about them."""

import json

import numpy as np
import pytest
from synthetic import decode_index, index_frame, moving_square_frames, write_av_video

from varec_cli.annotate import annotate_video
from varec_cli.errors import VideoError
from varec_cli.models.classifier import load_classifier
from varec_cli.predict import classify_video
from varec_cli.video.frames import AvFrameCapture, open_frame_capture
from varec_cli.video.reader import iter_frames, read_clips


def _av1(path, frames, rotation=0, fps=25, pixel_aspect=(1, 1)):
    import av

    if "libsvtav1" not in av.codecs_available:
        pytest.skip("this PyAV has no AV1 encoder to make the test video with")
    return write_av_video(path, frames, fps=fps, codec="libsvtav1", rotation=rotation, pixel_aspect=pixel_aspect)


@pytest.mark.parametrize("rotation, upright", [(0, (2, 1)), (90, (1, 2)), (180, (2, 1)), (270, (1, 2))])
def test_pixel_aspect_is_of_the_frames_as_turned_upright_by_either_decoder(tmp_path, rotation, upright):
    from varec_cli.video.reader import pixel_aspect

    frames = [np.full((32, 48, 3), 60 * i, np.uint8) for i in range(4)]
    h264 = write_av_video(tmp_path / "h264.mp4", frames, pixel_aspect=(2, 1), rotation=rotation)
    av1 = _av1(tmp_path / "av1.mp4", frames, rotation=rotation, pixel_aspect=(2, 1))
    for video, by_pyav in ((h264, False), (av1, True)):
        capture = open_frame_capture(video)
        try:
            assert isinstance(capture, AvFrameCapture) is by_pyav
            assert pixel_aspect(capture) == upright
        finally:
            capture.release()


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return load_classifier(tiny_model)


def test_opencv_cannot_decode_av1_here_so_the_frames_come_from_pyav(tmp_path):
    import cv2

    video = _av1(tmp_path / "clip.webm", [index_frame(i) for i in range(30)])
    opencv = cv2.VideoCapture(str(video))
    opened, decodes = opencv.isOpened(), opencv.grab()
    opencv.release()
    if decodes:
        pytest.skip("this OpenCV decodes AV1 itself")
    assert opened  # the case at hand: OpenCV opens the file, and decodes no frame of it
    capture = open_frame_capture(video)
    assert isinstance(capture, AvFrameCapture)
    assert capture.get(cv2.CAP_PROP_FPS) == 25.0
    capture.release()
    assert [decode_index(frame) for frame in iter_frames(video)] == list(range(30))


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_rotated_av1_video_is_turned_as_opencv_turns_other_codecs(tmp_path, rotation):
    frames = [index_frame(i) for i in range(10)]
    h264 = write_av_video(tmp_path / "h264.mp4", frames, options={"crf": "0"}, rotation=rotation)
    av1 = _av1(tmp_path / "av1.mp4", frames, rotation=rotation)
    back = rotation // 90  # quarter turns clockwise that undo the display rotation
    for video in (h264, av1):  # OpenCV turns the H.264 frames itself; PyAV's are turned by varec
        shown = list(iter_frames(video))
        assert shown[0].shape == ((80, 48, 3) if rotation % 180 else (48, 80, 3))
        assert [decode_index(np.rot90(frame, -back)) for frame in shown] == list(range(10))
    # predict reads a rotated file with OpenCV's strategies, which fall back on the same capture
    clips = read_clips(av1, 5, (48, 48))
    assert clips.frame_count == 10 and clips.frames.shape == (1, 5, 48, 48, 3)


def test_damaged_av1_files_end_where_decoding_fails_without_a_traceback(tmp_path):
    source = _av1(tmp_path / "clip.flv", moving_square_frames("left", 100, 64))
    for seed in range(1, 6):  # FLV damaged in its middle third: PyAV raised IndexError on some
        data = bytearray(source.read_bytes())
        for offset in np.random.default_rng(seed).integers(len(data) // 3, len(data) * 2 // 3, 40):
            data[offset] ^= 0xFF
        damaged = tmp_path / f"damaged{seed}.flv"
        damaged.write_bytes(bytes(data))
        try:
            count = sum(1 for _ in iter_frames(damaged))
        except VideoError:  # nothing decodable: the one-line error, which is fine too
            continue
        assert 0 < count < 100


def test_an_av1_file_keeps_its_frame_rate_where_the_container_states_none(cli, tiny_model, tmp_path):
    video = _av1(tmp_path / "clip.ivf", moving_square_frames("left", 30, 64), fps=10)  # IVF: no average rate
    result = cli("stream", "--source", video, "--model", tiny_model, "--no-display")
    assert result.exit_code == 0, result.output
    assert "(3.0 s of source time)" in result.stderr and "warning" not in result.stderr


@pytest.mark.parametrize("window", [None, 0])
def test_annotate_reads_an_av1_video_as_predict_does(tiny, tmp_path, window):
    video = _av1(tmp_path / "clip.webm", moving_square_frames("left", 30, 64))
    result = annotate_video(tiny, video, tmp_path / "out.avi", window=window)
    assert result.frames == 30 and not result.warnings
    assert sum(1 for _ in iter_frames(tmp_path / "out.avi")) == 30
    if window == 0:
        np.testing.assert_array_equal(result.windows[0].probabilities, classify_video(tiny, video).probabilities)


def test_stream_reads_an_av1_video(cli, tiny_model, tmp_path):
    video = _av1(tmp_path / "clip.webm", moving_square_frames("right", 30, 64))
    result = cli("stream", "--source", video, "--model", tiny_model, "--no-display", "-o", tmp_path / "rec.avi")
    assert result.exit_code == 0, result.output
    assert "30 captured, 30 processed" in result.stderr and "(30 frames, codec MJPG)" in result.stderr
    assert "warning" not in result.stderr


def _cut_after_index(tmp_path, count=100):
    """An mp4 with its index (moov) first, cut half way through its frames: a download that stopped."""
    whole = write_av_video(  # a keyframe every 10 frames: the bytes spread evenly over the frames
        tmp_path / "whole.mp4", moving_square_frames("left", count, 64), options={"g": "10"},
        container_options={"movflags": "faststart"},
    )
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: (data.index(b"mdat") + len(data)) // 2])
    return whole, cut


@pytest.mark.parametrize("window", [None, 0])
def test_annotate_labels_what_a_cut_file_holds_and_says_it_is_cut(tiny, tmp_path, window):
    whole, cut = _cut_after_index(tmp_path)
    readable = sum(1 for _ in iter_frames(cut))
    calls = []
    result = annotate_video(tiny, cut, tmp_path / "out.avi", window=window, on_progress=lambda *c: calls.append(c))
    assert 20 < result.frames == readable < 80
    assert [c for c in calls if c[0] == "writing"][-1] == ("writing", readable, readable)  # a bar that ends full
    assert sum(1 for _ in iter_frames(tmp_path / "out.avi")) == readable
    assert result.segments[-1].end == pytest.approx(readable / 25)
    (warning,) = result.warnings
    assert "cut.mp4" in warning and "of the 4.0 s its container states" in warning
    assert not annotate_video(tiny, whole, tmp_path / "whole-out.avi", window=window).warnings


def test_stream_and_predict_say_the_same_of_a_cut_file(cli, tiny_model, tmp_path):
    _, cut = _cut_after_index(tmp_path)
    streamed = cli("stream", "--source", cut, "--model", tiny_model, "--no-display")
    assert streamed.exit_code == 0, streamed.output
    warnings = [line for line in streamed.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "of the 4.0 s its container states decode" in warnings[0]
    predicted = cli("predict", cut, "--model", tiny_model, "--json")
    assert "of the 4.0 s its container states decode" in json.loads(predicted.stdout)["warning"]


@pytest.mark.parametrize("suffix", ["mp4", "mkv"])
def test_a_variable_frame_rate_is_not_taken_for_missing_frames(cli, tiny_model, tmp_path, suffix):
    """30 frames stated at 30 fps, with a 1 s pause after frame 20: 1.9 s long, every frame there."""
    from fractions import Fraction

    import av

    video = tmp_path / f"vfr.{suffix}"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 30)
        for i, frame in enumerate(moving_square_frames("left", 30, 64)):
            picture = av.VideoFrame.from_ndarray(frame, format="bgr24")
            picture.pts = i + (30 if i >= 20 else 0)
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    for command in (("predict", video, "--json"), ("stream", "-s", video, "--no-display")):
        result = cli(*command, "-m", tiny_model)
        assert result.exit_code == 0 and "cut short" not in result.output, result.output
    assert not annotate_video(load_classifier(tiny_model), video, tmp_path / "out.avi").warnings
