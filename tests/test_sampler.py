import numpy as np
import pytest
from synthetic import decode_index, set_avi_frame_count, write_index_video

from varec_cli.errors import VideoError
from varec_cli.video.reader import read_clips, sample_frame_indices


def test_indices_span_first_to_last_in_order():
    idx = sample_frame_indices(100, 5)
    assert idx.shape == (1, 5)
    assert idx[0].tolist() == [0, 25, 50, 74, 99] or idx[0].tolist() == [0, 25, 50, 75, 99]
    assert idx[0, 0] == 0 and idx[0, -1] == 99
    assert np.all(np.diff(idx[0]) > 0)


def test_indices_are_uniformly_spaced():
    idx = sample_frame_indices(301, 16)[0]
    gaps = np.diff(idx)
    assert gaps.max() - gaps.min() <= 1
    assert abs(gaps.mean() - 300 / 15) < 0.01


def test_short_video_repeats_frames_instead_of_padding():
    idx = sample_frame_indices(3, 8)[0]
    assert len(idx) == 8
    assert set(idx.tolist()) == {0, 1, 2}
    assert np.all(np.diff(idx) >= 0)


def test_single_frame_video_and_range():
    assert sample_frame_indices(1, 4)[0].tolist() == [0, 0, 0, 0]
    idx = sample_frame_indices(100, 4, start=40, end=60)[0]
    assert idx[0] == 40 and idx[-1] == 59


def test_views_interleave_and_stay_in_range():
    idx = sample_frame_indices(200, 8, views=3)
    assert idx.shape == (3, 8)
    assert idx.min() >= 0 and idx.max() <= 199
    assert all(np.all(np.diff(row) > 0) for row in idx)
    assert len({tuple(row) for row in idx}) == 3  # three different views
    assert np.all(idx[0] <= idx[1]) and np.all(idx[1] <= idx[2])


def test_empty_range_rejected():
    with pytest.raises(ValueError):
        sample_frame_indices(0, 4)


def _decoded(clips):
    return [[decode_index(f) for f in view] for view in clips.frames]


@pytest.mark.parametrize("strategy", ["grab", "seek", "auto"])
def test_read_clips_returns_the_sampled_frames_in_order(tmp_path, strategy):
    video = write_index_video(tmp_path / "idx.avi", 50)
    clips = read_clips(video, 6, (24, 40), strategy=strategy)
    assert clips.frames.shape == (1, 6, 24, 40, 3)
    assert clips.frames.dtype == np.uint8
    assert _decoded(clips)[0] == clips.indices[0].tolist() == sample_frame_indices(50, 6)[0].tolist()
    assert clips.frame_count == 50


def test_frames_are_rgb(tmp_path):
    from synthetic import write_video

    blue_bgr = np.zeros((32, 32, 3), np.uint8)
    blue_bgr[..., 0] = 255
    video = write_video(tmp_path / "blue.avi", [blue_bgr] * 4)
    frame = read_clips(video, 2, (32, 32)).frames[0, 0]
    assert frame[..., 2].mean() > 200 and frame[..., 0].mean() < 50  # blue lands in the last (B of RGB) channel


@pytest.mark.parametrize("header_count", [0, 10, 100])
def test_lying_header_frame_counts(tmp_path, header_count):
    video = write_index_video(tmp_path / "lie.avi", 40)
    set_avi_frame_count(video, header_count)
    clips = read_clips(video, 5, (24, 40))
    assert clips.frame_count == 40
    decoded = _decoded(clips)[0]
    assert decoded == sample_frame_indices(40, 5)[0].tolist()
    assert decoded[-1] == 39  # the real last frame, not the header's idea of it


def test_short_video_clip_repeats_real_frames(tmp_path):
    video = write_index_video(tmp_path / "short.avi", 3)
    decoded = _decoded(read_clips(video, 7, (24, 40)))[0]
    assert sorted(set(decoded)) == [0, 1, 2] and decoded == sorted(decoded)


def test_multi_view_clips(tmp_path):
    video = write_index_video(tmp_path / "idx.avi", 90)
    clips = read_clips(video, 5, (24, 40), views=3)
    assert _decoded(clips) == clips.indices.tolist()


def test_unreadable_inputs_name_the_file(tmp_path):
    text = tmp_path / "notes.avi"
    text.write_text("this is not a video\n" * 50)
    empty = tmp_path / "empty.avi"
    empty.touch()
    for path in (text, empty, tmp_path / "missing.avi", tmp_path):
        with pytest.raises(VideoError) as info:
            read_clips(path, 4, (32, 32))
        assert str(path) in str(info.value)


def test_real_h264_clip(real_clip):
    clips = read_clips(real_clip, 8, (64, 64))
    assert clips.frames.shape == (1, 8, 64, 64, 3)
    assert clips.frame_count > 8 and clips.fps > 0
    assert clips.frames.std() > 5  # real pictures, not blank frames
