"""Videos OpenCV opens but cannot decode (AV1: its wheels carry no decoder for it), and videos cut
short: annotate, stream and predict must all read them, and say the same about them."""

import json

import numpy as np
import pytest
from synthetic import decode_index, index_frame, moving_square_frames, write_av_video

from varec_cli.annotate import annotate_video
from varec_cli.models.classifier import load_classifier
from varec_cli.predict import classify_video
from varec_cli.video.frames import AvFrameCapture, open_frame_capture
from varec_cli.video.reader import iter_frames


def _av1(path, frames, rotation=0):
    import av

    if "libsvtav1" not in av.codecs_available:
        pytest.skip("this PyAV has no AV1 encoder to make the test video with")
    return write_av_video(path, frames, codec="libsvtav1", rotation=rotation)


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return load_classifier(tiny_model)


def test_opencv_cannot_decode_av1_here_so_the_frames_come_from_pyav(tmp_path):
    import cv2

    video = _av1(tmp_path / "clip.webm", [index_frame(i) for i in range(30)])
    opencv = cv2.VideoCapture(str(video))
    assert opencv.isOpened() and not opencv.grab()  # the premise: opens, decodes nothing
    opencv.release()
    capture = open_frame_capture(video)
    assert isinstance(capture, AvFrameCapture)
    assert capture.get(cv2.CAP_PROP_FPS) == 25.0
    capture.release()
    assert [decode_index(frame) for frame in iter_frames(video)] == list(range(30))


def test_a_rotated_av1_video_is_turned_as_opencv_turns_other_codecs(tmp_path):
    frames = [index_frame(i) for i in range(10)]
    h264 = write_av_video(tmp_path / "h264.mp4", frames, options={"crf": "0"}, rotation=90)
    av1 = _av1(tmp_path / "av1.mp4", frames, rotation=90)
    shown_h264 = next(iter_frames(h264))  # OpenCV's, turned by OpenCV
    shown_av1 = next(iter_frames(av1))
    assert shown_h264.shape == shown_av1.shape == (80, 48, 3)
    assert np.abs(shown_h264.astype(int) - shown_av1).mean() < 8  # the same picture, lossy either way


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
    assert "30 captured, 30 processed" in result.stderr and "(30 frames)" in result.stderr
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
    result = annotate_video(tiny, cut, tmp_path / "out.avi", window=window)
    assert 20 < result.frames == readable < 80
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
