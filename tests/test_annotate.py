"""`varec annotate`: windows, the drawn label, the output video's properties, the timeline, safety."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from children import stop_when_ready
from synthetic import (
    action_change_frames,
    decode_index,
    moving_square_frames,
    require_x264,
    set_avi_frame_count,
    still_square_frames,
    write_av_video,
    write_index_video,
    write_motion_video,
    write_video,
)

from varec_cli.annotate import annotate_video, window_and_stride_frames
from varec_cli.errors import VarecError
from varec_cli.models.classifier import Classifier, ClipSpec, load_classifier

REPO = Path(__file__).resolve().parent.parent
LABELS = ["moving_left", "moving_right", "standing_still"]


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return load_classifier(tiny_model)


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    """A scratch CNN + GRU that really tells left from right (and still), trained in ~10-20 s on a CPU."""
    import keras

    from varec_cli.models.architecture import build_model
    from varec_cli.models.modelfile import ModelMetadata, save_model
    from varec_cli.video.reader import read_clips

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("training")
    clips, targets = [], []

    def add(name, frames, target):
        path = write_video(folder / f"{name}.avi", frames, fps=12.0)
        clips.append(read_clips(path, 6, (32, 32)).frames[0])
        targets.append(target)

    for k in range(32):
        for target, direction in enumerate(["left", "right"]):
            a = moving_square_frames(direction, 12, 64, seed=1000 + 7 * k + target)
            b = moving_square_frames(direction, 12, 64, seed=2000 + 7 * k + target)
            add(f"{direction}{k}", a, target)
            add(f"{direction}{k}-straddle", a[6:] + b[:6], target)  # what a window across two passes sees
        for j in range(2):
            add(f"still{k}-{j}", still_square_frames(12, 64, seed=3000 + 2 * k + j), 2)
    model = build_model(3, backbone="scratch", rnn="gru", frames=6, size=32, units=16)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(np.stack(clips).astype("float32"), np.array(targets), epochs=25, batch_size=16, verbose=0)
    assert history.history["accuracy"][-1] > 0.95
    metadata = ModelMetadata(
        labels=LABELS, frames=6, size=(32, 32), backbone="scratch", preprocessing="unit", rnn="gru",
        feature_dim=128, clip_seconds=1.0,
    )
    return save_model(model, tmp_path_factory.mktemp("trained") / "left-right.keras", metadata)


def _frames(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


def _properties(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        return cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        cap.release()


def _assert_only_label_box_changed(source, output, box, *, outside_tolerance):
    """Every frame: the box clearly changed, the rest equal up to codec noise. Returns the frame count."""
    count = 0
    for count, (before, after) in enumerate(zip(_frames(source), _frames(output), strict=True), 1):
        assert before.shape == after.shape
        diff = np.abs(before.astype(np.int16) - after.astype(np.int16))
        inside = diff[box.y0 : box.y1, box.x0 : box.x1].mean()
        assert inside > 20, (count, inside)
        # Codec blocks touching the box may carry some of it: leave a 16-pixel margin out.
        mask = np.ones(diff.shape[:2], bool)
        mask[: box.y1 + 16, : box.x1 + 16] = False
        outside = diff[mask].mean()
        assert outside < outside_tolerance, (count, outside)
    return count


def _no_leftovers(folder, *expected):
    """Only the expected files are in the folder: no output, no temp file."""
    assert sorted(p.name for p in Path(folder).iterdir()) == sorted(expected)


# --- windows ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "count, expected",
    [
        (48, [(0, 12), (6, 18), (12, 24), (18, 30), (24, 36), (30, 42), (36, 48)]),
        (50, [(0, 12), (6, 18), (12, 24), (18, 30), (24, 36), (30, 42), (36, 48), (38, 50)]),  # last ends on the last frame
        (10, [(0, 10)]),  # shorter than a window: one window
    ],
)
def test_windows_cover_the_video(tiny, tmp_path, count, expected):
    """At 10 fps, window 1.2 s = 12 frames, stride 0.6 s = 6 frames."""
    video = write_index_video(tmp_path / "idx.avi", count, fps=10.0)
    result = annotate_video(tiny, video, tmp_path / "out.avi", window=1.2, stride=0.6)
    assert [(w.start, w.end) for w in result.windows] == expected
    whole = annotate_video(tiny, video, tmp_path / "whole.avi", window=0)
    assert [(w.start, w.end) for w in whole.windows] == [(0, count)]


def test_a_video_shorter_than_a_window_is_summarised_as_such(cli, tiny_model, tmp_path):
    video = write_index_video(tmp_path / "short.avi", 3, fps=10.0)
    result = cli("annotate", video, "-o", tmp_path / "out.avi", "-m", tiny_model, "--window", "1.2")
    assert result.exit_code == 0, result.output
    assert "3 frames" in result.stdout and "1 window (the whole video: shorter than the 12-frame window)" in result.stdout


def test_window_defaults_follow_the_model(tiny):
    assert tiny.spec.clip_seconds == 1.0
    assert window_and_stride_frames(tiny, 25.0) == (25, 12)
    assert window_and_stride_frames(tiny, 10.0, window=2, stride=0.5) == (20, 5)
    assert window_and_stride_frames(tiny, 10.0, window=0) == (None, None)
    with pytest.raises(VarecError, match="stride"):
        window_and_stride_frames(tiny, 10.0, window=1, stride=2)


def test_a_window_longer_than_any_video_is_the_whole_video_without_overflow(cli, tiny_model, tiny, tmp_path):
    import warnings

    for window in (1e20, 8e306, 1.7e308):  # the last two reach infinity in frames (was a traceback)
        assert window_and_stride_frames(tiny, 25.0, window=window) == (2**31 - 1, 2**31 - 1)
    video = write_motion_video(tmp_path / "clip.avi", "left", count=20, size=64)
    with warnings.catch_warnings(record=True) as caught:  # NumPy's overflow warning reached the terminal
        warnings.simplefilter("always")
        result = cli("annotate", video, "-o", tmp_path / "out.avi", "-m", tiny_model, "--window", "1e20")
    assert result.exit_code == 0, result.output
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], [str(w.message) for w in caught]
    assert "1 window (the whole video" in result.stdout


@pytest.mark.parametrize("header", [None, 0, 23, 400], ids=["right", "zero", "under", "over"])
def test_windows_are_classified_from_their_sampled_frames(tiny, tmp_path, header):
    """Each window = predict_clips on its frames sampled with THE sampler, whatever the header says."""
    from varec_cli.video.reader import sample_frame_indices, to_model_frame

    frames = moving_square_frames("right", count=47, size=48, seed=3)
    video = write_video(tmp_path / "clip.avi", frames, fps=10.0)
    model_frames = np.stack([to_model_frame(f, tiny.spec.size) for f in _frames(video)])
    if header is not None:
        set_avi_frame_count(video, header)
    result = annotate_video(tiny, video, tmp_path / "out.avi", window=1.2, stride=0.5)
    assert (result.window_frames, result.stride_frames) == (12, 5)
    assert result.frames == 47
    assert [(w.start, w.end) for w in result.windows] == [(s, s + 12) for s in range(0, 36, 5)]  # the last one ends on frame 47
    for window in result.windows:
        indices = sample_frame_indices(47, 6, start=window.start, end=window.end)[0]
        expected = tiny.predict_clips(model_frames[indices][None])[0]
        if header == 400 and window.end == 47:
            continue  # the header over-counted: the last window is built from the nearest decoded frames
        np.testing.assert_allclose(window.probabilities, expected, atol=1e-5)


def test_a_long_window_converts_its_samples_not_every_frame(tiny, tmp_path, monkeypatch):
    """Memory follows the frames converted: near the end, a long --window used to convert (and keep)
    every frame of the last window, a whole video's worth with --window as long as the video."""
    from varec_cli.video import reader

    video = write_video(tmp_path / "long.avi", moving_square_frames("right", count=240, size=48, seed=1), fps=24.0)
    converted = []
    convert = reader.to_model_frame
    monkeypatch.setattr(reader, "to_model_frame", lambda frame, size: converted.append(1) or convert(frame, size))
    result = annotate_video(tiny, video, tmp_path / "out.avi", window=8.0, stride=4.0)
    assert result.window_frames == 192 and result.frames == 240
    assert len(converted) < 60  # 6 samples a window and a grid near the end, not the last 192 frames


def test_window_zero_is_what_predict_gives(tiny, tmp_path):
    from varec_cli.predict import classify_video

    video = write_motion_video(tmp_path / "left.avi", "left", count=30)
    result = annotate_video(tiny, video, tmp_path / "out.avi", window=0)
    expected = classify_video(tiny, video, top_k=3)
    assert len(result.windows) == 1 and (result.windows[0].start, result.windows[0].end) == (0, 30)
    np.testing.assert_array_equal(result.windows[0].probabilities, expected.probabilities)
    assert len(result.segments) == 1
    segment = result.segments[0]
    assert (segment.start, segment.end, segment.label) == (0.0, 2.5, expected.predictions[0][0])
    assert segment.score == pytest.approx(expected.predictions[0][1], abs=1e-6)



@pytest.mark.parametrize("suffix, fourcc", [("avi", "XVID"), ("avi", "MJPG"), ("mkv", "h264")])
def test_window_zero_on_a_file_cut_short_labels_every_frame_it_can_read(tiny, tmp_path, suffix, fourcc):
    """A file cut short: the whole-video classification and the frame-by-frame writing agree on how
    many frames it has, and every readable frame is labelled."""
    from varec_cli.video.reader import iter_frames

    frames = moving_square_frames("left", 120, 96, 0)
    if fourcc == "h264":  # Matroska: still readable without its end (an mp4 loses its index there)
        video = write_av_video(tmp_path / f"whole.{suffix}", frames, fps=12)
    else:
        video = write_video(tmp_path / f"whole.{suffix}", frames, 12.0, fourcc=fourcc)
    data = video.read_bytes()
    video.write_bytes(data[: int(len(data) * 0.77)])
    readable = sum(1 for _ in iter_frames(video))
    result = annotate_video(tiny, video, tmp_path / "out.avi", window=0)
    assert result.frames == readable and 20 < readable < 120
    assert sum(1 for _ in iter_frames(tmp_path / "out.avi")) == readable
    assert result.segments[-1].end == pytest.approx(readable / 12.0)


class RateModel(Classifier):
    """A stand-in for a model that takes frames at a rate (like MoViNet at 5 fps): records clip shapes."""

    name, labels = "rate", ["a", "b"]
    spec = ClipSpec(16, 8, 8, fps=5.0)

    def __init__(self):
        self.shapes = []

    def predict_clips(self, clips):
        self.shapes.append(clips.shape)
        return np.tile(np.float32([0.25, 0.75]), (len(clips), 1))

    def start_stream(self):
        raise NotImplementedError

    def describe(self):
        return {}


def test_models_that_take_frames_at_a_rate_get_that_rate_per_window(tmp_path):
    model = RateModel()
    video = write_video(tmp_path / "long.avi", moving_square_frames("left", 100, 32), fps=10.0)
    result = annotate_video(model, video, tmp_path / "out.avi", window=2.0)
    assert [(w.start, w.end) for w in result.windows] == [(s, s + 20) for s in range(0, 81, 10)]
    assert {shape[1:] for shape in model.shapes} == {(10, 8, 8, 3)}  # 2 s at 5 fps
    model.shapes.clear()
    short = write_video(tmp_path / "short.avi", moving_square_frames("left", 15, 32), fps=10.0)
    annotate_video(model, short, tmp_path / "out.avi", window=2.0)
    assert model.shapes == [(1, 8, 8, 8, 3)]  # 1.5 s: one window, at least 8 frames


# --- the output video ------------------------------------------------------------------------------


def test_real_mp4_keeps_frames_fps_and_size(tiny, real_clip, tmp_path):
    from varec_cli.video.reader import probe_video

    source = probe_video(real_clip)
    output = tmp_path / "annotated.mp4"
    stages = {}
    result = annotate_video(
        tiny, real_clip, output, top_k=3, on_progress=lambda stage, done, total: stages.setdefault(stage, []).append(done)
    )
    from varec_cli.video.writer import pyav_encodes

    assert result.codec == "h264" if pyav_encodes("h264") else result.codec in ("avc1", "mp4v")
    assert list(stages) == ["analysing", "writing"]
    assert stages["writing"] == list(range(1, source.frame_count + 1))
    fps, width, height = _properties(output)
    assert (width, height) == (source.width, source.height)
    assert fps == pytest.approx(source.fps, rel=1e-3)
    box = result.label_box
    assert 0 < box.x1 <= width and 0 < box.y1 < height / 2  # top-left, never past the frame
    count = _assert_only_label_box_changed(real_clip, output, box, outside_tolerance=6.0)
    assert count == source.frame_count == result.frames
    _no_leftovers(tmp_path, "annotated.mp4")


def test_generated_avi_through_the_cli(cli, tiny_model, tmp_path):
    video = write_index_video(tmp_path / "index.avi", 50, fps=10.0, height=120, width=160)
    output = tmp_path / "annotated.avi"
    timeline = tmp_path / "timeline.json"
    result = cli("annotate", video, "-o", output, "-m", tiny_model, "--top-k", "3", "--timeline", timeline)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout and "MJPG" in result.stdout
    assert _properties(output) == (10.0, 160, 120)
    frames = list(_frames(output))
    assert len(frames) == 50
    assert [decode_index(f[80:]) for f in frames] == list(range(50))  # order kept (box is at the top)
    segments = json.loads(timeline.read_text())
    assert segments and all(set(s) == {"start", "end", "label", "score"} for s in segments)
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == 5.0
    assert all(a["end"] == b["start"] and a["label"] != b["label"] for a, b in zip(segments, segments[1:]))
    assert all(s["label"] in LABELS and 0.0 <= s["score"] <= 1.0 for s in segments)
    _no_leftovers(tmp_path, "index.avi", "annotated.avi", "timeline.json")


def test_the_videos_sound_is_kept_in_mp4_and_said_to_be_left_out_of_avi(cli, tiny_model, tmp_path):
    from synthetic import sound_of, write_video_with_sound

    require_x264()
    t = np.arange(44100 * 2) / 44100
    video = write_video_with_sound(tmp_path / "talk.mp4", moving_square_frames("left", 50, 64), 0.5 * np.sin(2 * np.pi * 440 * t))
    result = cli("annotate", video, "-o", tmp_path / "out.mp4", "-m", tiny_model)
    assert result.exit_code == 0, result.output
    assert "codec h264, audio aac;" in result.stdout
    heard, rate, _ = sound_of(tmp_path / "out.mp4")
    assert abs(len(heard) / rate - 2.0) < 0.05
    result = cli("annotate", video, "-o", tmp_path / "out.avi", "-m", tiny_model)
    assert result.exit_code == 0, result.output
    assert "codec MJPG, the sound left out: only .mp4 output keeps it;" in result.stdout


def test_an_odd_sized_video_is_reported_at_the_size_written(cli, tiny_model, tmp_path):
    frames = [np.full((61, 63, 3), 20 * i, np.uint8) for i in range(12)]
    video = write_av_video(tmp_path / "odd.mkv", frames, fps=12, codec="ffv1")
    output = tmp_path / "odd-annotated.avi"
    result = cli("annotate", video, "-o", output, "-m", tiny_model)
    assert result.exit_code == 0, result.output
    assert "63x61 has an odd side; the encoder writes 62x60" in result.stderr
    assert "12 frames, 62x60," in result.stdout and _properties(output)[1:] == (62, 60)


def test_generated_avi_label_box(tiny, tmp_path):
    frames = [f for i in range(3) for f in still_square_frames(10, 96, seed=i)]
    video = write_video(tmp_path / "still.avi", frames, fps=15.0)
    result = annotate_video(tiny, video, tmp_path / "out.avi", font_scale=0.5)
    assert result.frames == 30
    _assert_only_label_box_changed(video, tmp_path / "out.avi", result.label_box, outside_tolerance=4.0)


def test_timeline_follows_a_change_of_action(cli, trained_model, tmp_path):
    """Two passes to the left, then two to the right (12 frames each, 12 fps): left until ~2 s, then right."""
    video = write_video(tmp_path / "change.avi", action_change_frames("left", "right", 2, 12, 64, seed=7), fps=12.0)
    result = cli("annotate", video, "-o", tmp_path / "out.mp4", "-m", trained_model, "--timeline", "-")
    assert result.exit_code == 0, result.output
    segments = json.loads(result.stdout)
    assert [s["label"] for s in segments] == ["moving_left", "moving_right"], segments
    assert segments[0]["start"] == 0.0 and segments[1]["end"] == 4.0
    assert segments[0]["end"] == segments[1]["start"] == pytest.approx(2.0, abs=0.6)
    assert all(s["score"] > 0.6 for s in segments)
    assert "wrote" in result.stderr  # with --timeline -, stdout is only the JSON


# --- safety ----------------------------------------------------------------------------------------


def _one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_output_naming_the_input_is_refused(cli, tiny_model, tmp_path):
    video = write_motion_video(tmp_path / "clip.avi", "left")
    original = video.read_bytes()
    _one_line_error(cli("annotate", video, "-o", video, "-m", tiny_model), "overwrite the input")
    os.symlink(video, tmp_path / "link.avi")
    _one_line_error(cli("annotate", video, "-o", tmp_path / "link.avi", "-m", tiny_model), "overwrite the input")
    _one_line_error(cli("annotate", video, "-o", tmp_path / "out.avi", "-m", tiny_model, "--timeline", video))
    assert video.read_bytes() == original
    _no_leftovers(tmp_path, "clip.avi", "link.avi")


def test_a_timeline_naming_the_output_under_another_name_is_refused(cli, tmp_path):
    video = write_motion_video(tmp_path / "clip.avi", "left")
    output = tmp_path / "out.mp4"
    output.write_bytes(b"an earlier annotation")
    os.link(output, tmp_path / "timeline.json")  # a second name of the output file
    missing_model = tmp_path / "no-model.keras"  # refused before the model is read
    _one_line_error(
        cli("annotate", video, "-o", output, "--timeline", tmp_path / "timeline.json", "-m", missing_model),
        "the timeline and the output video are the same file",
    )
    assert output.read_bytes() == b"an earlier annotation"
    _one_line_error(  # the input itself: named as the timeline, not as "the output"
        cli("annotate", video, "-o", output, "--timeline", video, "-m", missing_model),
        f"{video}: the timeline would overwrite the input {video}",
    )


def test_bad_output_path_fails_before_anything_is_read(cli, tmp_path):
    video = write_motion_video(tmp_path / "clip.avi", "left")
    missing_model = tmp_path / "no-model.keras"  # the output is checked first, before the model loads
    _one_line_error(cli("annotate", video, "-o", tmp_path / "nowhere" / "out.mp4", "-m", missing_model), "does not exist")
    _one_line_error(cli("annotate", video, "-o", tmp_path / "out.mkv", "-m", missing_model), "unsupported output extension")
    _one_line_error(cli("annotate", video, "-o", tmp_path / "out", "-m", missing_model), "no extension to choose the video format by")
    (tmp_path / "dir.mp4").mkdir()
    _one_line_error(cli("annotate", video, "-o", tmp_path / "dir.mp4", "-m", missing_model), "names a folder")
    _one_line_error(
        cli("annotate", video, "-o", tmp_path / "o.mp4", "--timeline", tmp_path / "nowhere" / "t.json", "-m", missing_model),
        "does not exist",
    )
    _one_line_error(cli("annotate", tmp_path / "missing.avi", "-o", tmp_path / "o.mp4", "-m", missing_model), "no such file")
    _no_leftovers(tmp_path, "clip.avi", "dir.mp4")


def test_bad_options(cli, tiny_model, tmp_path):
    video = write_motion_video(tmp_path / "clip.avi", "left")
    out = tmp_path / "out.avi"
    both = cli("annotate", video, "-o", out, "-m", tiny_model, "--window", "1", "--stride", "2")
    assert both.exit_code == 2 and "longer than the window" in both.stderr  # a usage error, told before any work
    # against the window the model gives (1 s here), known only once it is read: a usage error all the same
    default = cli("annotate", video, "-o", out, "-m", tiny_model, "--stride", "2")
    assert default.exit_code == 2 and "longer than the window (1 s, the model's clip span)" in default.stderr
    assert "--window" in default.stderr and not out.exists()
    assert cli("annotate", video, "-o", out, "-m", tiny_model, "--window", "0", "--stride", "1").exit_code == 2
    assert cli("annotate", video, "-o", out, "-m", tiny_model, "--window", "-1").exit_code == 2
    assert cli("annotate", video, "-o", out, "-m", tiny_model, "--top-k", "0").exit_code == 2
    assert cli("annotate", video, "-o", out, "-m", tiny_model, "--font-scale", "0").exit_code == 2
    assert cli("annotate", video, "-m", tiny_model).exit_code == 2  # -o is required
    for option, value in (("--window", "inf"), ("--stride", "nan"), ("--font-scale", "inf"), ("--font-scale", "nan")):
        result = cli("annotate", video, "-o", out, "-m", tiny_model, option, value)
        assert result.exit_code == 2 and option in result.stderr, (option, value, result.output)
    model_copy = tmp_path / "copy.keras"
    model_copy.write_bytes(Path(tiny_model).read_bytes())
    overwrite = cli("annotate", video, "-o", out, "-m", model_copy, "--timeline", model_copy)
    assert overwrite.exit_code == 2 and "is the model file" in overwrite.stderr
    assert model_copy.read_bytes() == Path(tiny_model).read_bytes()
    _no_leftovers(tmp_path, "clip.avi", "copy.keras")


def test_failure_while_writing_leaves_nothing(tiny, tmp_path):
    """An exception from the progress callback mid-write: no output, no temp file, an old output kept."""
    video = write_motion_video(tmp_path / "clip.avi", "left", count=30)
    output = tmp_path / "out.mp4"
    output.write_bytes(b"previous result")

    def stop(stage, done, total):
        if stage == "writing" and done == 10:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        annotate_video(tiny, video, output, timeline=tmp_path / "t.json", on_progress=stop)
    assert output.read_bytes() == b"previous result"
    _no_leftovers(tmp_path, "clip.avi", "out.mp4")


@pytest.mark.parametrize(
    "stop, code, said",
    [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "terminated (SIGTERM)"), ("SIGHUP", 129, "terminated (SIGHUP)"),
     ("nohup", 130, "interrupted")],
)
def test_ctrl_c_mid_run_leaves_nothing(tiny_model, tmp_path, stop, code, said):
    """A real SIGINT to `python -m varec_cli annotate` while it writes: exit 130, no output, no temp file.
    SIGTERM and SIGHUP (timeout, docker stop, a closed terminal) stop it the same way."""
    video = write_motion_video(tmp_path / "clip.avi", "left", count=30)
    script = (
        "import sys, time\n"
        "from varec_cli.video import writer\n"
        "write = writer.AtomicVideoWriter.write\n"
        "def slow_write(self, frame):\n"
        "    write(self, frame)\n"
        "    if self.frames_written == 5:\n"
        "        print('ready', flush=True); time.sleep(60)\n"
        "writer.AtomicVideoWriter.write = slow_write\n"
        "import runpy; sys.argv = ['varec'] + sys.argv[1:]\n"
        "runpy.run_module('varec_cli', run_name='__main__')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "annotate", str(video), "-o", str(tmp_path / "out.mp4"), "-m", str(tiny_model),
         "--timeline", str(tmp_path / "t.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        # under nohup (SIGHUP ignored) a closed terminal must not stop it: then only the SIGINT below does
        preexec_fn=(lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN)) if stop == "nohup" else None,
    )

    def interrupt():
        assert any(p.name.startswith(".out.") for p in tmp_path.iterdir())  # the temp file exists now
        if stop == "nohup":
            proc.send_signal(signal.SIGHUP)
        proc.send_signal(signal.SIGINT if stop == "nohup" else getattr(signal, stop))

    out, err = stop_when_ready(proc, proc.stdout, interrupt)
    assert proc.returncode == code, (out, err)
    assert "Traceback" not in err and err.strip().endswith(said)
    _no_leftovers(tmp_path, "clip.avi")


# --- --show ----------------------------------------------------------------------------------------


def test_show_without_a_display_warns_and_goes_on(cli, tiny_model, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    video = write_motion_video(tmp_path / "clip.avi", "left")
    result = cli("annotate", video, "-o", tmp_path / "out.avi", "-m", tiny_model, "--show")
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "no display" in result.stderr
    assert len(list(_frames(tmp_path / "out.avi"))) == 12


def test_show_when_imshow_fails(tiny, tmp_path, monkeypatch):
    import cv2

    def broken(*args):
        raise cv2.error("The function is not implemented (no GUI backend)")

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr("varec_cli.annotate.display_unavailable", lambda: None)
    monkeypatch.setattr(cv2, "imshow", broken)
    monkeypatch.setattr(cv2, "destroyWindow", broken)
    warnings = []
    video = write_motion_video(tmp_path / "clip.avi", "left")
    result = annotate_video(tiny, video, tmp_path / "out.avi", show=True, on_warning=warnings.append)
    assert result.frames == 12 and len(warnings) == 1 and "cannot open a window" in warnings[0]
    assert result.warnings == warnings



def test_show_with_an_unreachable_display_warns_instead_of_aborting(tiny, tmp_path, monkeypatch):
    """OpenCV's Qt backend aborts the process on a DISPLAY that answers nothing; the probe catches it."""
    monkeypatch.setenv("DISPLAY", ":987")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    warnings = []
    video = write_motion_video(tmp_path / "clip.avi", "left")
    result = annotate_video(tiny, video, tmp_path / "out.avi", show=True, on_warning=warnings.append)
    assert result.frames == 12
    assert len(warnings) == 1 and "cannot open a window" in warnings[0], warnings


def test_a_reader_that_stops_reading_ends_annotate_quietly(tiny_model, tmp_path):
    """`varec annotate ... | head -1`: the video is written, and the closed pipe is no failure."""
    import cv2

    video = write_motion_video(tmp_path / "clip.avi", "left", count=30)
    reader, writer = os.pipe()
    os.close(reader)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "varec_cli", "annotate", str(video), "-o", str(tmp_path / "out.avi"), "-m",
             str(tiny_model)], stdout=writer, stderr=subprocess.PIPE, text=True, timeout=300, cwd=REPO,
        )
    finally:
        os.close(writer)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    cap = cv2.VideoCapture(str(tmp_path / "out.avi"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    cap.release()


def test_a_one_frame_video_is_counted_in_the_singular(cli, tiny_model, tmp_path):
    video = write_index_video(tmp_path / "one.avi", 1)
    annotated = cli("annotate", video, "-o", tmp_path / "out.avi", "-m", tiny_model)
    assert annotated.exit_code == 0, annotated.output
    assert f"wrote {tmp_path / 'out.avi'}: 1 frame, 80x48" in annotated.stdout and "; 1 window" in annotated.stdout
    streamed = cli("stream", "-s", video, "-m", tiny_model, "--no-display", "-o", tmp_path / "rec.avi")
    assert streamed.exit_code == 0, streamed.output
    assert "0 predictions" in streamed.stderr and "(1 frame, codec MJPG)" in streamed.stderr
    predicted = cli("predict", video, "-m", tiny_model)
    assert "(1 frame, 0.04 s)" in predicted.stdout  # 1 frame at 25 fps


@pytest.mark.parametrize("header", [73, 40])
def test_progress_ends_at_the_true_frame_count_when_the_header_lies(tiny, tmp_path, header):
    video = write_motion_video(tmp_path / "clip.avi", "left", count=60)
    set_avi_frame_count(video, header)
    calls = []
    annotate_video(tiny, video, tmp_path / "out.avi", on_progress=lambda *call: calls.append(call))
    analysing = [(done, total) for stage, done, total in calls if stage == "analysing"]
    assert analysing[-1] == (60, 60)  # not stuck at 60 of 73 (a bar that looks cut short)
    assert all(total is None or done <= total for done, total in analysing)  # never past 100%


@pytest.mark.parametrize(
    "rotation, aspect, shown",
    [(0, "2:1", "128x64"), (180, "2:1", "128x64"), (90, "1:2", "32x64"), (270, "1:2", "32x64")],  # 32x64: as tall as 64x128
)
def test_non_square_pixels_are_said_to_come_out_square(cli, tiny_model, tmp_path, rotation, aspect, shown):
    """Wide pixels, stored as they are or sideways (a phone video's display rotation, which shows them
    tall once turned upright, as the output's frames are): the warning and its ffmpeg fix speak of
    the frames as shown."""
    video = write_av_video(
        tmp_path / "wide.mp4", moving_square_frames("left", 12, 64), pixel_aspect=(2, 1), rotation=rotation
    )
    sar = aspect.replace(":", "/")
    expected = (
        f"{video}: its pixels are not square ({aspect}): players show it {shown}, but the output's are square and it "
        f"shows 64x64; `ffmpeg -i {tmp_path / 'out.avi'} -vf setsar={sar} -c:v libx264 fixed.mp4` restores its shape"
    )
    annotated = cli("annotate", video, "-o", tmp_path / "out.avi", "-m", tiny_model)
    assert annotated.exit_code == 0 and f"warning: {expected}" in annotated.stderr
    streamed = cli("stream", "-s", video, "-m", tiny_model, "--no-display", "-o", tmp_path / "out.avi")
    assert streamed.exit_code == 0 and f"warning: {expected}" in streamed.stderr


@pytest.mark.parametrize("rotation, aspect", [(0, (2, 1)), (90, (1, 2))])
def test_mp4_output_keeps_non_square_pixels(cli, tiny_model, tmp_path, rotation, aspect):
    """x264's .mp4 stores the pixel aspect of the frames as written (turned upright): players show it
    as they show the input, and there is nothing to warn about."""
    import av

    require_x264()
    video = write_av_video(
        tmp_path / "wide.mp4", moving_square_frames("left", 12, 64), pixel_aspect=(2, 1), rotation=rotation
    )
    annotated = cli("annotate", video, "-o", tmp_path / "annotated.mp4", "-m", tiny_model)
    streamed = cli("stream", "-s", video, "-m", tiny_model, "--no-display", "-o", tmp_path / "streamed.mp4")
    for result, name in ((annotated, "annotated.mp4"), (streamed, "streamed.mp4")):
        assert result.exit_code == 0 and "not square" not in result.stderr, result.stderr
        with av.open(str(tmp_path / name)) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == (64, 64)
            ratio = stream.sample_aspect_ratio
            assert (ratio.numerator, ratio.denominator) == aspect


def test_square_pixels_are_not_warned_about(cli, tiny_model, tmp_path):
    square = write_av_video(tmp_path / "square.mp4", moving_square_frames("left", 12, 64))
    assert "warning" not in cli("annotate", square, "-o", tmp_path / "out.avi", "-m", tiny_model).stderr
