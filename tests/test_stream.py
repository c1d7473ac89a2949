import functools
import http.server
import re
import threading
import time

import numpy as np
import pytest
from children import stop_when_ready
from synthetic import decode_index, moving_square_frames, real_mp4_clips, write_bounce_video, write_index_video, write_video

from varec_cli.errors import VideoError
from varec_cli.models.classifier import ClipSpec, load_classifier
from varec_cli.models.streaming import frame_spacing
from varec_cli.video.reader import count_frames, iter_frames, probe_video, read_clips, to_model_frame

LINE = re.compile(r"^(\d\d):(\d\d)\.(\d)  (\S+)  ([01]\.\d\d)$")
LABELS = ["moving_left", "moving_right"]


def _label_lines(stdout: str) -> list[tuple[float, str, float]]:
    lines = []
    for line in stdout.splitlines():
        match = LINE.match(line)
        assert match, f"not a label line: {line!r}"
        minutes, seconds, tenths, label, probability = match.groups()
        lines.append((int(minutes) * 60 + int(seconds) + int(tenths) / 10, label, float(probability)))
    return lines


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    """A scratch CNN + GRU trained (a few seconds) to tell a square moving left from one moving right.

    Clips of 12 frames at 12 fps (clip_seconds 1.0) sampled to 6 frames of 32 px, as predict would.
    """
    import keras

    from varec_cli.models.architecture import build_model
    from varec_cli.models.modelfile import ModelMetadata, save_model

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("train")
    clips, targets = [], []
    for seed in range(16):
        for target, direction in enumerate(("left", "right")):
            video = write_video(folder / f"{direction}{seed}.avi", moving_square_frames(direction, seed=seed), 12.0)
            clips.append(read_clips(video, 6, (32, 32)).frames[0])
            targets.append(target)
    model = build_model(2, backbone="scratch", rnn="gru", frames=6, size=32, units=16, dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(np.stack(clips).astype("float32"), np.array(targets), epochs=20, batch_size=8, verbose=0)
    metadata = ModelMetadata(
        labels=LABELS, frames=6, size=(32, 32), backbone="scratch", preprocessing="unit", rnn="gru",
        feature_dim=128, clip_seconds=1.0,
    )
    return save_model(model, folder / "left-right.keras", metadata)


def test_labels_follow_the_action_in_order(cli, trained_model, tmp_path):
    """The square goes left for 1 s, then right: the lines say so, in that order, at source times."""
    video = write_bounce_video(tmp_path / "bounce.avi", "left", seed=100)
    result = cli("stream", "--source", video, "--model", trained_model, "--no-display")
    assert result.exit_code == 0, result.output
    lines = _label_lines(result.stdout)
    assert [label for _, label, _ in lines] == ["moving_left", "moving_right"]
    (t_left, _, p_left), (t_right, _, p_right) = lines
    # The first prediction needs a full window (frames 0..11 → 00:00.9); the change shows up
    # once the window holds mostly right-moving frames, before the video ends (00:01.9).
    assert t_left == pytest.approx(11 / 12, abs=0.06) and p_left >= 0.5
    assert t_left < t_right <= 23 / 12 and p_right >= 0.5
    assert "24 captured, 24 processed" in result.stderr
    assert "end of the video" in result.stderr


def test_no_display_is_automatic_without_a_display(cli, trained_model, tmp_path, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    video = write_bounce_video(tmp_path / "bounce.avi", "right", seed=101)
    result = cli("stream", "-s", video, "-m", trained_model)
    assert result.exit_code == 0, result.output
    assert [label for _, label, _ in _label_lines(result.stdout)] == ["moving_right", "moving_left"]


def test_a_display_that_does_not_answer_falls_back_to_no_window(cli, trained_model, tmp_path, monkeypatch):
    # :7631 names no X server (not :99, where CI machines often run Xvfb): OpenCV's Qt backend would
    # abort the process on the first window.
    monkeypatch.setenv("DISPLAY", ":7631")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    video = write_bounce_video(tmp_path / "bounce.avi", "right", seed=101)
    result = cli("stream", "-s", video, "-m", trained_model)
    assert result.exit_code == 0, result.output
    assert "warning: cannot open a window" in result.stderr and "streaming without a window" in result.stderr
    assert [label for _, label, _ in _label_lines(result.stdout)] == ["moving_right", "moving_left"]


def test_real_clip_streams_and_records_every_frame(cli, tiny_model, tmp_path, real_clip):
    recording = tmp_path / "rec.avi"
    result = cli("stream", "-s", real_clip, "-m", tiny_model, "--no-display", "--threshold", "0", "-o", recording)
    assert result.exit_code == 0, result.output
    lines = _label_lines(result.stdout)
    assert lines and [t for t, _, _ in lines] == sorted(t for t, _, _ in lines)
    assert {label for _, label, _ in lines} <= {"moving_left", "moving_right", "standing_still"}
    source, recorded = probe_video(real_clip), probe_video(recording)
    assert count_frames(recording) == count_frames(real_clip)
    assert (recorded.width, recorded.height) == (source.width, source.height)
    assert recorded.fps == pytest.approx(source.fps, rel=1e-3)
    frames = f"{count_frames(real_clip)} captured, {count_frames(real_clip)} processed"
    assert frames in result.stderr and "recording" in result.stderr


def test_recording_holds_every_frame_with_the_overlay(cli, tiny_model, tmp_path):
    video = write_index_video(tmp_path / "index.avi", 30, fps=15.0, height=120, width=160)
    recording = tmp_path / "out" / "rec.avi"
    recording.parent.mkdir()
    result = cli("stream", "-s", video, "-m", tiny_model, "--no-display", "--threshold", "0.99", "-o", recording)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # an untrained model is never that sure: nothing claimed
    info = probe_video(recording)
    assert (info.width, info.height, info.fps) == (160, 120, 15.0)
    frames = list(iter_frames(recording))
    assert len(frames) == 30
    # In order, one per source frame (the bottom half, below the overlay box, still spells the index).
    assert [decode_index(f[60:]) for f in frames] == list(range(30))
    source = list(iter_frames(video))[29]  # bars 0, 2, 3, 4 white
    assert np.abs(frames[29][:10, :30].astype(int) - source[:10, :30]).mean() > 40  # the overlay is there
    assert [p.name for p in recording.parent.iterdir()] == ["rec.avi"]  # no temp file left


def test_an_odd_sized_source_is_recorded_a_pixel_smaller_and_said_so(cli, tiny_model, tmp_path):
    import av

    video = tmp_path / "odd.avi"  # OpenCV's writer would round the size down itself: PyAV's mjpeg does not
    with av.open(str(video), "w") as container:
        stream = container.add_stream("mjpeg", rate=8)
        stream.width, stream.height, stream.pix_fmt = 81, 49, "yuvj420p"
        for i in range(8):
            frame = av.VideoFrame.from_ndarray(np.full((49, 81, 3), 30 * i, np.uint8), format="bgr24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    assert (probe_video(video).height, probe_video(video).width) == (49, 81)
    recording = tmp_path / "rec.avi"
    result = cli("stream", "-s", video, "-m", tiny_model, "--no-display", "-o", recording)
    assert result.exit_code == 0, result.output
    assert "81x49 has an odd side; the encoder writes 80x48" in result.stderr
    assert (probe_video(recording).height, probe_video(recording).width) == (48, 80)


def _durations(stderr: str) -> tuple[float, float]:
    """The summary's (duration, source time) in seconds: from the first frame to the end, model load left out."""
    match = re.search(r"^  duration +(\d+\.\d) s \((\d+\.\d) s of source time\)$", stderr, re.MULTILINE)
    assert match, stderr
    return float(match.group(1)), float(match.group(2))


def test_realtime_file_is_paced_and_still_recorded_in_full(cli, tiny_model, tmp_path):
    """10 frames at 5 fps: its last frame is due 1.8 s after its first. Played as fast as it decodes,
    the stream is over in a fraction of that; with --realtime it takes (at least) that long."""
    video = write_index_video(tmp_path / "index.avi", 10, fps=5.0)
    last_frame_due = 9 / 5.0
    fast = cli("stream", "-s", video, "-m", tiny_model, "--no-display")
    assert fast.exit_code == 0, fast.output
    fast_seconds, _ = _durations(fast.stderr)
    # The control: the machine itself is far quicker than the clip, so a long realtime run is pacing.
    assert fast_seconds < last_frame_due / 2, fast.stderr

    recording = tmp_path / "rec.avi"
    result = cli("stream", "-s", video, "-m", tiny_model, "--no-display", "--realtime", "-o", recording)
    assert result.exit_code == 0, result.output
    seconds, source_seconds = _durations(result.stderr)
    assert seconds >= last_frame_due - 0.05, result.stderr  # printed to a tenth: 1.75 may show as 1.7
    assert source_seconds == 2.0
    assert count_frames(recording) == 10
    assert "10 captured" in result.stderr


def test_max_seconds_stops_at_source_time(cli, tiny_model, tmp_path):
    video = write_index_video(tmp_path / "index.avi", 40, fps=10.0)
    recording = tmp_path / "rec.avi"
    result = cli("stream", "-s", video, "-m", tiny_model, "--no-display", "--max-seconds", "1.5", "-o", recording)
    assert result.exit_code == 0, result.output
    assert "15 captured, 15 processed" in result.stderr and "max-seconds" in result.stderr
    assert "(1.5 s of source time)" in result.stderr
    assert count_frames(recording) == 15


def test_a_files_sound_is_recorded_with_its_frames_up_to_the_stop(cli, tiny_model, tmp_path):
    """A file's sound goes into an .mp4 recording, as far as the frames go: the whole of it, or up
    to --max-seconds, also when --realtime records in the capture thread; an .avi says it left it out."""
    from synthetic import require_x264, sound_of, write_video_with_sound

    require_x264()
    t = np.arange(44100 * 2) / 44100
    video = write_video_with_sound(tmp_path / "talk.mp4", moving_square_frames("left", 50, 64), 0.5 * np.sin(2 * np.pi * 440 * t))
    for options, seconds in (((), 2.0), (("--max-seconds", "1"), 1.0), (("--realtime", "--max-seconds", "1"), 1.0)):
        recording = tmp_path / "rec.mp4"
        result = cli("stream", "-s", video, "-m", tiny_model, "--no-display", *options, "-o", recording)
        assert result.exit_code == 0, result.output
        frames = round(25 * seconds)
        assert f"recording   {recording} ({frames} frames, codec h264, audio aac)" in result.stderr, options
        heard, rate, _ = sound_of(recording)
        assert abs(len(heard) / rate - seconds) < 0.05, options
        assert np.sqrt(np.mean(heard[: rate // 2] ** 2)) > 0.3  # the tone, not silence
    result = cli("stream", "-s", video, "-m", tiny_model, "--no-display", "-o", tmp_path / "rec.avi")
    assert result.exit_code == 0, result.output
    assert "(50 frames, codec MJPG, the sound left out: only .mp4 output keeps it)" in result.stderr


def test_the_source_time_covers_the_last_frame(cli, tiny_model, tmp_path):
    video = write_index_video(tmp_path / "slow.avi", 5, fps=1.0)  # 5 s long, as predict says
    result = cli("stream", "-s", video, "-m", tiny_model, "--no-display")
    assert result.exit_code == 0, result.output
    assert "(5.0 s of source time)" in result.stderr


def test_a_high_speed_file_keeps_its_frame_rate(cli, tiny_model, tmp_path):
    """480 fps footage: the times, --max-seconds and the recording follow the file's rate, as in
    predict and annotate (cameras and network streams stay capped at 240: they report clock rates)."""
    import cv2

    video = write_index_video(tmp_path / "fast.avi", 480, fps=480.0)
    recording = tmp_path / "rec.avi"
    result = cli("stream", "-s", video, "-m", tiny_model, "--no-display", "--max-seconds", "0.5", "-o", recording)
    assert result.exit_code == 0, result.output
    assert "240 captured, 240 processed" in result.stderr
    cap = cv2.VideoCapture(str(recording))
    assert cap.get(cv2.CAP_PROP_FPS) == 480 and count_frames(recording) == 240
    cap.release()


def test_a_video_shorter_than_the_window_says_why_nothing_was_predicted(cli, tiny_model, tmp_path):
    video = write_index_video(tmp_path / "short.avi", 5, fps=25.0)  # 0.2 s; the model's window is 1 s
    result = cli("stream", "-s", video, "-m", tiny_model, "--no-display")
    assert result.exit_code == 0, result.output
    assert "latency     none: no prediction (the video is shorter than the model's window)" in result.stderr


def test_predictions_that_never_reach_the_threshold_are_said(cli, tiny_model, tmp_path):
    video = write_index_video(tmp_path / "v.avi", 40, fps=10.0)  # an untrained 3-class model: far from sure
    quiet = cli("stream", "-s", video, "-m", tiny_model, "--no-display", "--threshold", "0.999")
    assert quiet.exit_code == 0 and quiet.stdout == ""
    assert "labels      none: no prediction reached --threshold 0.999" in quiet.stderr
    told = cli("stream", "-s", video, "-m", tiny_model, "--no-display", "--threshold", "0")
    assert told.exit_code == 0 and told.stdout and "reached --threshold" not in told.stderr


def test_not_a_number_is_a_usage_error(cli, tiny_model, tmp_path):
    video = write_index_video(tmp_path / "v.avi", 5)
    result = cli("stream", "-s", video, "-m", tiny_model, "--no-display", "--max-seconds", "nan")
    assert result.exit_code == 2 and "--max-seconds" in result.stderr


def test_missing_camera_fails_before_the_model_loads_with_one_line(cli, tmp_path):
    """The camera is opened before the model is loaded (which may take seconds, or a download): with a
    model that does not exist either, the error is about the camera."""
    result = cli("stream", "--source", "9", "--model", tmp_path / "no-model.keras", "--no-display")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: camera 9: cannot open it"), result.stderr
    assert "no-model" not in result.stderr


def test_unreachable_stream_fails_before_the_model_loads_with_one_line(cli, tmp_path):
    import socket

    with socket.socket() as probe:  # a local port nobody listens on: the connection is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://user:secret@127.0.0.1:{port}/live.avi"
    result = cli("stream", "-s", url, "-m", tmp_path / "no-model.keras", "--no-display")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: http://user:***@127.0.0.1:{port}/live.avi: cannot open this stream")
    assert "secret" not in result.stderr and "no-model" not in result.stderr


def test_a_stream_that_never_answers_fails_at_the_open_timeout_with_one_line(cli, tmp_path, monkeypatch):
    """A server that takes the connection and then says nothing (a hung camera, a stalled proxy) fails
    once stream.OPEN_TIMEOUT_MS has passed, before the model loads. Were that timeout not applied,
    OpenCV would wait longer than this server does: it answers with a real video after 20 s, the
    stream opens, and the missing model becomes the error."""
    import varec_cli.stream

    monkeypatch.setattr(varec_cli.stream, "OPEN_TIMEOUT_MS", 300)
    write_index_video(tmp_path / "live.avi", 10, fps=10.0)
    done = threading.Event()

    class AnswersLate(_QuietHandler):
        first = threading.Lock()

        def do_GET(self):  # noqa: N802 - http.server naming
            if AnswersLate.first.acquire(blocking=False) and done.wait(20):  # the first request waits
                return  # the test is over: send nothing
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(AnswersLate, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/live.avi"
        result = cli("stream", "-s", url, "-m", tmp_path / "no-model.keras", "--no-display")
    finally:
        done.set()
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: {url}: cannot open this stream"), result.stderr


def test_a_missing_file_is_named_as_given(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("stream", "--source", "./0", "-m", tmp_path / "no-model.keras", "--no-display")
    assert result.exit_code == 1 and result.stderr.startswith("error: ./0: no such file")
    (tmp_path / "0").write_bytes(b"not a video")  # there, but no video: still `./0`, not camera-like `0`
    result = cli("stream", "--source", "./0", "-m", tmp_path / "no-model.keras", "--no-display")
    assert result.exit_code == 1 and result.stderr.startswith("error: ./0: "), result.stderr


def test_an_empty_source_is_a_usage_error(cli, tmp_path):
    result = cli("stream", "--source", " ", "-m", tmp_path / "no-model.keras", "--no-display")
    assert result.exit_code == 2 and "--source" in result.stderr


def test_missing_file_and_bad_output_fail_before_the_model_loads(cli, tmp_path):
    missing = cli("stream", "-s", tmp_path / "nope.avi", "-m", tmp_path / "no-model.keras")
    assert missing.exit_code == 1 and "no such file" in missing.stderr
    video = write_index_video(tmp_path / "v.avi", 5)
    overwrite = cli("stream", "-s", video, "-m", tmp_path / "no-model.keras", "-o", video)
    assert overwrite.exit_code == 1 and "overwrite the input" in overwrite.stderr


def test_ctrl_c_finalises_the_recording_and_prints_the_summary(cli, tiny_model, tmp_path, monkeypatch):
    import varec_cli.stream

    calls = []

    def interrupt(seconds):
        calls.append(seconds)
        raise KeyboardInterrupt

    monkeypatch.setattr(varec_cli.stream, "format_time", interrupt)  # Ctrl-C at the first label line
    video = write_index_video(tmp_path / "index.avi", 40, fps=10.0)
    recording = tmp_path / "rec.avi"
    result = cli("stream", "-s", video, "-m", tiny_model, "--no-display", "--threshold", "0", "-o", recording)
    assert calls and result.exit_code == 130
    assert "Ctrl-C" in result.stderr and "recording" in result.stderr
    # A file drops nothing: frames decoded ahead are "still queued", not "skipped".
    import re

    assert re.search(r"\(0 skipped to stay live(, \d+ still queued when it stopped)?\)", result.stderr), result.stderr
    assert "recording" in result.stderr and f"({count_frames(recording)} frames, codec MJPG)" in result.stderr
    assert 6 <= count_frames(recording) < 40


def test_a_stop_while_a_frame_is_drawn_leaves_it_out_of_the_count_and_the_recording(
    cli, tiny_model, tmp_path, monkeypatch
):
    import varec_cli.stream

    drawn = []
    draw = varec_cli.stream._Overlay.draw

    def stopped_at_the_tenth(self, frame):  # Ctrl-C lands while frame 10 gets its overlay
        drawn.append(1)
        if len(drawn) == 10:
            raise KeyboardInterrupt
        return draw(self, frame)

    monkeypatch.setattr(varec_cli.stream._Overlay, "draw", stopped_at_the_tenth)
    video = write_index_video(tmp_path / "index.avi", 40, fps=10.0)
    recording = tmp_path / "rec.avi"
    result = cli("stream", "-s", video, "-m", tiny_model, "--no-display", "-o", recording)
    assert result.exit_code == 130
    assert ", 9 processed" in result.stderr and "(9 frames, codec MJPG)" in result.stderr and count_frames(recording) == 9
    assert "(0.9 s of source time)" in result.stderr  # up to the end of the last frame recorded


def _stream_stopped_by(signals, tiny_model, tmp_path):
    """`varec stream -o rec.avi` in a child process, held at its first label line; signals[0] is sent
    there, and any later ones while the recording is finalised (made slow). (returncode, stderr)."""
    import os
    import subprocess
    import sys

    video = write_index_video(tmp_path / "index.avi", 40, fps=10.0)
    script = (
        "import sys, time\n"
        "import varec_cli.stream as stream\n"
        "from varec_cli.video import writer\n"
        "def at_first_label(seconds):\n"
        "    print('ready', file=sys.stderr, flush=True); time.sleep(60)\n"
        "stream.format_time = at_first_label\n"
        "finalise = writer.AtomicVideoWriter.__exit__\n"
        "def slow_finalise(self, *exc):\n"
        "    print('finalising', file=sys.stderr, flush=True); time.sleep(1.0)\n"
        "    return finalise(self, *exc)\n"
        "writer.AtomicVideoWriter.__exit__ = slow_finalise\n"
        "import runpy; sys.argv = ['varec'] + sys.argv[1:]\n"
        "runpy.run_module('varec_cli', run_name='__main__')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "stream", "-s", str(video), "-m", str(tiny_model), "--no-display",
         "--threshold", "0", "-o", str(tmp_path / "rec.avi")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )

    def stop():
        proc.send_signal(signals[0])
        assert proc.stderr.readline().strip() == "finalising"
        for later in signals[1:]:
            proc.send_signal(later)

    _, err = stop_when_ready(proc, proc.stderr, stop)
    return proc.returncode, err


def test_sigterm_finalises_the_recording_and_exits_143(tiny_model, tmp_path):
    """`timeout`, `docker stop` and systemd stop a long `stream -o` with SIGTERM: the recording is kept, as
    on Ctrl-C (by default the signal would end the process with the recording under its temp name)."""
    import signal

    code, err = _stream_stopped_by([signal.SIGTERM], tiny_model, tmp_path)
    assert code == 143, err
    assert "ended (SIGTERM)" in err and "Traceback" not in err
    assert 6 <= count_frames(tmp_path / "rec.avi") < 40
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_a_second_ctrl_c_while_the_recording_is_finalised_does_not_lose_it(tiny_model, tmp_path):
    import signal

    code, err = _stream_stopped_by([signal.SIGINT, signal.SIGINT], tiny_model, tmp_path)  # pressed twice
    assert code == 130, err
    assert "ended (Ctrl-C)" in err and 6 <= count_frames(tmp_path / "rec.avi") < 40


def test_a_closed_stderr_stops_no_stream_whatever_its_encoding(tiny_model, tmp_path):
    """click writes through its own text layer where stderr's encoding is ASCII: the labels still come."""
    import os
    import subprocess
    import sys

    video = write_index_video(tmp_path / "index.avi", 20, fps=10.0)
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads stderr: the warnings and the summary have nowhere to go
    try:
        result = subprocess.run(
            [sys.executable, "-m", "varec_cli", "stream", "-s", str(video), "-m", str(tiny_model), "--no-display",
             "--threshold", "0"],
            stdout=subprocess.PIPE, stderr=writer, text=True, timeout=120, env={**os.environ, "PYTHONIOENCODING": "ascii"},
        )
    finally:
        os.close(writer)
    assert result.returncode == 0 and result.stdout.strip(), result.stdout


def test_a_closed_output_pipe_ends_the_stream_while_no_label_line_is_written(tiny_model, tmp_path):
    """`varec stream | head -1` once head has its line, while the label holds (or none is claimed) and
    nothing is written that could find the pipe closed: the stream still ends, instead of running
    until the camera is unplugged."""
    import os
    import subprocess
    import sys

    video = write_index_video(tmp_path / "index.avi", 200, fps=10.0)
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = subprocess.run(  # --threshold 1: no label is ever claimed, so no line is ever written
            [sys.executable, "-m", "varec_cli", "stream", "-s", str(video), "-m", str(tiny_model), "--no-display",
             "--threshold", "1"],
            stdout=writer, stderr=subprocess.PIPE, text=True, timeout=120,
        )
    finally:
        os.close(writer)
    assert result.returncode == 0, result.stderr
    assert "ended (the output pipe was closed)" in result.stderr, result.stderr
    captured = int(re.search(r"frames +(\d+) captured", result.stderr).group(1))
    assert captured < 200


def test_a_closed_output_pipe_ends_the_stream_and_keeps_the_recording(tiny_model, tmp_path):
    """`varec stream -o rec.avi | head -1`: once the reader of the labels is gone, the stream ends as
    on q, with its recording finalised, instead of failing silently and losing it."""
    import os
    import subprocess
    import sys

    video = write_index_video(tmp_path / "index.avi", 40, fps=10.0)
    recording = tmp_path / "rec.avi"
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before the first label line
    try:
        result = subprocess.run(
            [sys.executable, "-m", "varec_cli", "stream", "-s", str(video), "-m", str(tiny_model), "--no-display",
             "--threshold", "0", "-o", str(recording)],
            stdout=writer, stderr=subprocess.PIPE, text=True, timeout=120,
        )
    finally:
        os.close(writer)
    assert result.returncode == 0, result.stderr
    assert "ended (the output pipe was closed)" in result.stderr and "Traceback" not in result.stderr
    assert 1 <= count_frames(recording) < 40  # up to where the closed pipe was found, finalised
    # The summary adds up: every processed frame is in the recording, the one whose label line found
    # the pipe closed included; frames decoded ahead and never processed are counted as such.
    import re

    captured, processed, skipped = map(int, re.search(
        r"frames +(\d+) captured, (\d+) processed \((\d+) skipped", result.stderr).groups())
    recorded = int(re.search(r"recording .*\((\d+) frames?, codec", result.stderr).group(1))
    assert recorded == processed == count_frames(recording), result.stderr
    queued = captured - processed - skipped
    assert (f"{queued} still queued when it stopped" in result.stderr) == (queued > 0), result.stderr


# --- library level ---------------------------------------------------------------------------


def test_ring_buffer_reproduces_the_whole_clip_prediction(tiny_model, tmp_path):
    """Frames spaced as the model's training clips: the stream's prediction at the end of a clip
    is the clip-level prediction (same frames, same order, same network)."""
    classifier = load_classifier(tiny_model)  # 6 frames, clip_seconds 1.0
    video = write_video(tmp_path / "r.avi", moving_square_frames("right", count=12), 12.0)
    whole = classifier.predict_clips(read_clips(video, 6, (32, 32)).frames)[0]
    session = classifier.start_stream(fps=12.0)
    outputs = [session.push(to_model_frame(f, (32, 32)), timestamp=i / 12) for i, f in enumerate(iter_frames(video))]
    assert all(o is None for o in outputs[:11])  # the window spans 11 frame intervals
    # Batched and one-frame convolutions round differently (oneDNN): ~1e-4 apart, far below what
    # other frames or another order would change.
    np.testing.assert_allclose(outputs[11], whole, atol=1e-3)


@pytest.mark.parametrize("rnn", ["gru", "gru-reset-before", "lstm", "bilstm"])
def test_the_projected_stream_head_gives_the_keras_head_s_probabilities(rnn):
    """The stream head computes the RNN's input projections for the whole window at once and writes
    its loop out; each layer kind, each direction and both GRU variants must give what the Keras
    layers give."""
    from varec_cli.models.architecture import build_sequence_head
    from varec_cli.models.stream_head import projected_head
    from varec_cli.runtime import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(1)
    frames, features = 7, 40
    if rnn == "gru-reset-before":  # Keras 2's GRU default, in models converted from it
        window = keras.Input((frames, features))
        x = keras.layers.GRU(12, reset_after=False)(window)
        head = keras.Model(window, keras.layers.Dense(5, activation="softmax")(x))
    else:
        head = build_sequence_head(frames, features, 5, rnn=rnn, units=12)
    rng = np.random.default_rng(3)  # trained-like weights: every bias non-zero, each gate its own
    head.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.3 for w in head.get_weights()])
    projected = projected_head(head, min_kernel_bytes=0)
    assert projected is not head
    windows = np.random.default_rng(2).standard_normal((3, frames, features)).astype(np.float32) * 2
    want = np.asarray(head(windows, training=False))
    np.testing.assert_allclose(np.asarray(projected(windows, training=False)), want, rtol=1e-5, atol=1e-6)
    # A window with the frames in another order is another prediction: the loop's order matters.
    assert not np.allclose(np.asarray(projected(windows[:, ::-1], training=False)), want, atol=1e-4)


@pytest.mark.parametrize("kind", ["bidirectional-sum", "gru-backwards", "dense-twice"])
def test_a_head_the_projection_does_not_cover_is_left_as_it_is(kind):
    from varec_cli.models.stream_head import projected_head
    from varec_cli.runtime import import_keras

    keras = import_keras()
    window = keras.Input((5, 10))
    if kind == "bidirectional-sum":
        x = keras.layers.Bidirectional(keras.layers.LSTM(6), merge_mode="sum")(window)
    elif kind == "gru-backwards":
        x = keras.layers.GRU(6, go_backwards=True)(window)
    else:
        x = keras.layers.GRU(6)(window)
        square = keras.layers.Dense(6, activation="tanh")
        x = square(square(x))  # one layer applied twice
    head = keras.Model(window, keras.layers.Dense(3, activation="softmax")(x))
    assert projected_head(head, min_kernel_bytes=0) is head

def test_a_stream_through_the_projected_head_matches_the_whole_clip_prediction(tiny_model, tmp_path, monkeypatch):
    from varec_cli.models import stream_head

    monkeypatch.setattr(stream_head, "PROJECT_MIN_KERNEL_BYTES", 0)  # the tiny model's kernel is small
    classifier = load_classifier(tiny_model)
    video = write_video(tmp_path / "r.avi", moving_square_frames("right", count=12), 12.0)
    whole = classifier.predict_clips(read_clips(video, 6, (32, 32)).frames)[0]
    session = classifier.start_stream(fps=12.0)
    assert isinstance(session._functions.sequence_head.layers[1], stream_head.ProjectedRecurrence)
    outputs = [session.push(to_model_frame(f, (32, 32)), timestamp=i / 12) for i, f in enumerate(iter_frames(video))]
    np.testing.assert_allclose(outputs[11], whole, atol=1e-3)  # as in the test above

def test_the_portable_stream_step_other_backends_run_matches_the_whole_clip_prediction(tiny_model, tmp_path, monkeypatch):
    """On JAX or PyTorch a session runs build_step_model through Keras, not the TensorFlow step; it
    must take a session's frames and ring buffer alike, and refuse a frame of the wrong size."""
    from varec_cli.models import streaming

    monkeypatch.setattr(streaming, "tensorflow_backend", lambda: False)
    classifier = load_classifier(tiny_model)
    video = write_video(tmp_path / "r.avi", moving_square_frames("right", count=12), 12.0)
    whole = classifier.predict_clips(read_clips(video, 6, (32, 32)).frames)[0]
    session = streaming.RingBufferSession(classifier, fps=12.0)
    assert "portable_step" in session._functions.step.__name__
    outputs = [session.push(to_model_frame(f, (32, 32)), timestamp=i / 12) for i, f in enumerate(iter_frames(video))]
    np.testing.assert_allclose(outputs[11], whole, atol=1e-3)  # as in the tests above
    with pytest.raises(ValueError, match="frames of"):
        session.push(np.zeros((32, 16, 6), np.uint8), timestamp=1.0)


def test_a_source_sparser_than_the_model_s_spacing_repeats_its_newest_frame(tiny_model):
    """At 3 fps the 6-frame, 1 s model wants frames 0.133 s apart: each wanted time takes the nearest
    frame, the new one included (then the encoder runs first and the head on its own), and the
    probabilities are those of the whole model on that window."""
    from varec_cli.models.streaming import RingBufferSession

    classifier = load_classifier(tiny_model)
    frames = [to_model_frame(f, (32, 32)) for f in moving_square_frames("right", count=5)]
    session = RingBufferSession(classifier, fps=3.0)
    outputs = [session.push(frame, timestamp=i / 3) for i, frame in enumerate(frames)]
    assert [o is None for o in outputs] == [True, True, False, False, False]
    # At 1.333 s (frame 4) the wanted times 0.667, 0.8, 0.933, 1.067, 1.2 and 1.333 s are nearest to
    # frames 2, 2, 3, 3, 4 and 4: 1.2 s is nearer to the new frame than to frame 3, at 1.0 s.
    window = np.stack([frames[i] for i in (2, 2, 3, 3, 4, 4)])[None]
    np.testing.assert_allclose(outputs[4], classifier.predict_clips(window)[0], atol=1e-3)
    assert session._functions._head_call is not None  # the head alone was built: on first use, for this


def test_frame_spacing():
    assert frame_spacing(1.0, 6, 12.0) == pytest.approx((1.0 - 1 / 12) / 5)  # every 2.2 frames at 12 fps
    assert frame_spacing(2.0, 16, None) == pytest.approx(2.0 / 15)
    assert frame_spacing(None, 16, 25.0) is None  # unknown clip length: every frame
    assert frame_spacing(1.0, 1, 25.0) is None


def test_without_clip_seconds_every_frame_enters_the_window(tiny_model, tmp_path):
    from varec_cli.models.streaming import RingBufferSession

    classifier = load_classifier(tiny_model)
    classifier.spec = ClipSpec(6, 32, 32, clip_seconds=None)
    session = RingBufferSession(classifier, fps=25.0)
    frames = [to_model_frame(f, (32, 32)) for f in moving_square_frames("left", count=8)]
    outputs = [session.push(f) for f in frames]
    assert [o is None for o in outputs] == [True] * 5 + [False] * 3
    clip = np.stack(frames[2:8])[None]
    np.testing.assert_allclose(outputs[-1], classifier.predict_clips(clip)[0], atol=1e-5)
    session.reset()
    assert session.push(frames[0]) is None


@pytest.mark.parametrize("whole_step_under_xla", [False, True], ids=["head-under-xla", "all-under-xla"])
@pytest.mark.parametrize("rnn", ["gru", "lstm", "bilstm"])
def test_fused_tensorflow_step_matches_the_portable_step(tmp_path, rnn, whole_step_under_xla):
    """On TensorFlow a stream step packs its inputs and runs the head, or the whole step, under
    XLA; other backends run build_step_model through Keras. All must give the same feature and
    probabilities."""
    from varec_cli.models.architecture import build_model, split_model
    from varec_cli.models.streaming import build_step_model, keras_predict_step_call
    from varec_cli.models.tf_calls import tensorflow_step_call

    frames, size = 5, 32
    encoder, head = split_model(build_model(4, backbone="scratch", rnn=rnn, frames=frames, size=size, units=8))
    dim = int(encoder.output_shape[-1])
    shapes = ((1, size, size, 3), (1, frames - 1, dim))
    fused = tensorflow_step_call(encoder, head, *shapes, jit_compile=whole_step_under_xla)
    portable = keras_predict_step_call(build_step_model(encoder, head, frames))
    rng = np.random.default_rng(0)
    for _ in range(3):
        frame = rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8)
        past = rng.standard_normal((1, frames - 1, dim)).astype(np.float32)
        got, want = fused(frame, past), portable(frame, past)
        assert [a.shape for a in got] == [(1, dim), (1, 4)]
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        kept = [a.copy() for a in got]
        # As a session calls it: one frame, the ring buffer's own feature vectors, not stacked.
        for a, b in zip(fused(frame[0], list(past[0])), kept):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
        other = rng.integers(0, 256, (1, size, size, 3), dtype=np.uint8)
        fused(other, past)  # a later call leaves the arrays an earlier one returned alone
        for a, b in zip(got, kept):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="frames of"):
        fused(np.zeros((size, size // 2, 3), np.uint8), past)


def test_fused_step_gives_each_thread_its_own_answers(tmp_path):
    """The step fills its input vector in place, one per thread: sessions of one model streaming in
    several threads at once must not see each other's frames."""
    from concurrent.futures import ThreadPoolExecutor

    from varec_cli.models.architecture import build_model, split_model
    from varec_cli.models.tf_calls import tensorflow_step_call

    frames, size = 4, 32
    encoder, head = split_model(build_model(3, backbone="scratch", rnn="gru", frames=frames, size=size, units=8))
    dim = int(encoder.output_shape[-1])
    step = tensorflow_step_call(encoder, head, (1, size, size, 3), (1, frames - 1, dim))
    rng = np.random.default_rng(1)
    inputs = [
        (rng.integers(0, 256, (size, size, 3), dtype=np.uint8), list(rng.standard_normal((frames - 1, dim)).astype(np.float32)))
        for _ in range(4)
    ]
    alone = [step(*pair) for pair in inputs]

    def run(index: int):
        return [step(*inputs[index]) for _ in range(40)]

    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(run, range(4)))
    for index, results in enumerate(together):
        for result in results:
            for a, b in zip(result, alone[index]):
                np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)



@pytest.mark.parametrize("jit_compile", [False, True], ids=["graph", "xla"])
def test_compiled_calls_fold_the_weights_in_where_they_are_small_enough(monkeypatch, jit_compile):
    """Compiled calls (a stream's, feature extraction's) hold the model's weights as constants (no
    variable read per call); over FOLD_MAX_WEIGHT_BYTES they read the variables. Either way they give
    the model's outputs."""
    import tensorflow as tf

    from varec_cli.models import tf_frozen
    from varec_cli.models.architecture import build_model, split_model

    encoder, _ = split_model(build_model(3, backbone="scratch", rnn="gru", frames=4, size=32, units=8))
    signature = [tf.TensorSpec((1, 32, 32, 3), tf.float32)]
    frame = tf.constant(np.random.default_rng(2).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32))
    want = encoder(frame, training=False).numpy()

    def run(x):
        return encoder(x, training=False)

    folded = tf_frozen.with_constant_weights(run, signature, jit_compile=jit_compile)
    assert folded.variables == ()
    np.testing.assert_allclose(folded(frame).numpy(), want, rtol=1e-4, atol=1e-5)
    monkeypatch.setattr(tf_frozen, "FOLD_MAX_WEIGHT_BYTES", 1024)  # the encoder's weights are ~1 MB
    reading = tf_frozen.with_constant_weights(run, signature, jit_compile=jit_compile)
    assert len(reading.variables) == len(encoder.weights)
    np.testing.assert_allclose(reading(frame).numpy(), want, rtol=1e-4, atol=1e-5)


def test_a_stream_whose_weights_are_too_big_to_fold_matches_the_whole_clip_prediction(tiny_model, tmp_path, monkeypatch):
    from varec_cli.models import streaming, tf_frozen

    monkeypatch.setattr(tf_frozen, "FOLD_MAX_WEIGHT_BYTES", 0)
    classifier = load_classifier(tiny_model)
    video = write_video(tmp_path / "r.avi", moving_square_frames("right", count=12), 12.0)
    whole = classifier.predict_clips(read_clips(video, 6, (32, 32)).frames)[0]
    session = streaming.RingBufferSession(classifier, fps=12.0)
    outputs = [session.push(to_model_frame(f, (32, 32)), timestamp=i / 12) for i, f in enumerate(iter_frames(video))]
    np.testing.assert_allclose(outputs[11], whole, atol=1e-3)  # as in the tests above


def _taking(seconds: float, outputs=(0.0,)):
    """A call that takes `seconds` (by the clock, as a real model's call would) and counts its calls."""

    def call(*arrays):
        call.calls += 1
        until = time.perf_counter() + seconds
        while time.perf_counter() < until:
            pass
        return [np.asarray(outputs, np.float32)]

    call.calls = 0
    return call


def test_xla_is_kept_only_where_it_is_faster_and_gives_the_same_outputs():
    from varec_cli.models.streaming import XLA_TRY_BELOW_S, faster_with_xla

    quick_plain = _taking(XLA_TRY_BELOW_S / 2)
    xla = _taking(0)
    assert faster_with_xla(quick_plain, lambda: xla, []) is xla
    assert faster_with_xla(quick_plain, lambda: _taking(XLA_TRY_BELOW_S), []) is quick_plain
    assert faster_with_xla(quick_plain, lambda: _taking(0, outputs=(0.5,)), []) is quick_plain  # wrong: not kept

    def cannot_compile():
        raise ValueError("an op XLA does not support")

    assert faster_with_xla(quick_plain, cannot_compile, []) is quick_plain


def test_xla_is_not_even_built_for_a_slow_call_and_a_big_one_is_called_twice():
    from varec_cli.models.streaming import XLA_SURELY_SLOW_S, XLA_TRY_BELOW_S, faster_with_xla

    built = []
    slow_plain = _taking(XLA_TRY_BELOW_S * 1.5)
    assert faster_with_xla(slow_plain, lambda: built.append(1) or _taking(0), []) is slow_plain
    assert built == []
    big = _taking(XLA_SURELY_SLOW_S * 1.2)
    assert faster_with_xla(big, lambda: built.append(1) or _taking(0), []) is big
    assert built == [] and big.calls == 2  # the call that traces, one to time: start-up stays short

# --- live behaviour: a real model slowed down, or a stand-in classifier where none is needed ---


class _SlowClassifier:
    """Takes `delay` seconds per frame and remembers which frames it saw."""

    labels = ["a", "b"]

    def __init__(self, delay: float):
        self.spec = ClipSpec(1, 48, 80)
        self.delay = delay
        self.seen: list[int] = []

    def start_stream(self, fps=None):
        outer = self

        class Session:
            def push(self, frame, timestamp=None):
                outer.seen.append(decode_index(frame))
                time.sleep(outer.delay)
                return np.array([0.9, 0.1], np.float32)

            def reset(self):
                pass

        return Session()


class _SlowedDown:
    """A real classifier whose stream sessions take `delay` seconds more per frame, and which records
    the source time of every frame it is given."""

    def __init__(self, classifier, delay: float):
        self.classifier, self.delay = classifier, delay
        self.spec, self.labels = classifier.spec, classifier.labels
        self.times: list[float] = []

    def start_stream(self, fps=None):
        session, outer = self.classifier.start_stream(fps=fps), self

        class Session:
            def push(self, frame, timestamp=None):
                outer.times.append(timestamp)
                time.sleep(outer.delay)
                return session.push(frame, timestamp=timestamp)

            def reset(self):
                session.reset()

        return Session()


def test_live_source_skips_frames_instead_of_lagging(tiny_model, tmp_path):
    """A realtime file at 25 fps and inference slower than that: inference takes the newest frame each
    time, skipping the ones it could not keep up with instead of queueing them, while the recording
    keeps every frame."""
    from varec_cli.stream import StreamOptions, open_source, run_stream

    video = write_index_video(tmp_path / "index.avi", 25, fps=25.0)
    classifier = _SlowedDown(load_classifier(tiny_model), delay=0.12)  # 3 frame intervals per frame
    summary = run_stream(
        classifier, open_source(str(video)), StreamOptions(realtime=True, smooth=1, output=tmp_path / "rec.avi")
    )
    assert summary.ended == "end of the video"
    assert summary.frames_captured == 25 and summary.frames_recorded == 25 and count_frames(tmp_path / "rec.avi") == 25
    assert summary.frames_skipped > 0
    assert summary.frames_processed + summary.frames_skipped == summary.frames_captured  # none left queued
    seen = [round(t * 25) for t in classifier.times]  # source times are index / fps
    assert len(seen) == summary.frames_processed
    assert all(a < b for a, b in zip(seen, seen[1:])), seen  # always forward, never an old frame
    assert seen[-1] == 24  # the newest frame is never dropped: the last one is classified


@pytest.mark.parametrize("url", ["rtsp://camera.invalid/live", "http://camera.invalid/live.mjpg"])
def test_dropped_stream_is_retried_then_ends_cleanly(tmp_path, monkeypatch, url):
    """Also over HTTP when the camera's picture is uniform (a black screen): a reopened source that
    starts with the stream's first frame is taken for a recording played again only where that frame
    shows something."""
    import varec_cli.stream as stream

    class DroppingCapture:
        def __init__(self, frames):
            self.frames = frames

        def read(self):
            if self.frames:
                self.frames -= 1
                return True, np.zeros((48, 80, 3), np.uint8)
            return False, None

        def release(self):
            pass

    reopened = []
    # The first reopen gets 3 more frames, then the stream is gone for good.
    monkeypatch.setattr(stream, "_open_capture", lambda source: reopened.append(1) or (
        DroppingCapture(3) if len(reopened) == 1 else None
    ))
    monkeypatch.setattr(stream, "RECONNECT_DELAYS", (0.01, 0.01, 0.01))
    opened = stream.OpenedSource(
        stream.parse_source(url), DroppingCapture(4), np.zeros((48, 80, 3), np.uint8), 25.0
    )
    summary = stream.run_stream(_SlowClassifier(delay=0.0), opened, stream.StreamOptions())
    assert summary.frames_captured == 1 + 4 + 3
    assert len(reopened) == 4 and "dropped" in summary.ended and not summary.interrupted


def test_sources_are_parsed():
    from varec_cli.stream import parse_source

    assert (parse_source("0").kind, parse_source("0").target) == ("camera", 0)
    assert parse_source(" 2 ").target == 2
    assert parse_source("rtsp://10.0.0.5:554/stream").kind == "network"
    assert parse_source("HTTPS://example.com/live.m3u8").kind == "network"
    assert parse_source("./0").kind == "file"
    assert str(parse_source("rtsp://admin:hunter2@cam/live")) == "rtsp://admin:***@cam/live"
    with pytest.raises(VideoError):
        parse_source("  ")


@pytest.fixture
def http_server(tmp_path):
    """Serves tmp_path over HTTP on 127.0.0.1; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_a_video_file_served_over_http_is_read_like_a_file(cli, tiny_model, tmp_path, http_server):
    """A recording served over HTTP arrives as fast as the network allows: timed by the clock it would
    pass in a fraction of a second and never fill the model's window. Its header has a frame count,
    so it is read like a file: every frame, in order, at its frame rate's times; it ends at its last
    frame instead of being reopened."""
    write_index_video(tmp_path / "served.avi", 40, fps=20.0)
    recording = tmp_path / "rec.avi"
    result = cli("stream", "-s", f"{http_server}/served.avi", "-m", tiny_model, "--no-display", "-o", recording,
                 "--threshold", "0")
    assert result.exit_code == 0, result.output
    assert "40 captured, 40 processed" in result.stderr and "end of the video" in result.stderr
    lines = _label_lines(result.stdout)
    assert lines, result.output  # the window filled: labels came
    assert lines[0][0] == pytest.approx(1.0, abs=0.06)  # the tiny model's 1 s clip, in the video's own time
    assert count_frames(recording) == 40


def test_a_served_recording_without_a_frame_count_ends_instead_of_playing_again(cli, tiny_model, tmp_path, http_server):
    """An MPEG-TS recording over HTTP states no frame count, so it is read as live: at its end it is
    reopened like a dropped stream, and it used to play again from its first frame, forever (a 30-frame
    file recorded as 450 frames in 8 s). The reopened source's first frame is the stream's first: the end."""
    from synthetic import write_video_with_sound

    t = np.arange(44100 * 2) / 44100
    write_video_with_sound(tmp_path / "served.ts", moving_square_frames("left", 30, 64), 0.1 * np.sin(t))
    recording = tmp_path / "rec.avi"
    result = cli("stream", "-s", f"{http_server}/served.ts", "-m", tiny_model, "--no-display", "-o", recording,
                 "--max-seconds", "20")
    assert result.exit_code == 0, result.output
    assert "ended (end of the video)" in result.stderr and "30 captured" in result.stderr, result.stderr
    assert count_frames(recording) == 30
    if "0 predictions" in result.stderr:  # it came faster than its time: the way out is said, not "too short"
        assert "a recording served without a frame count, such as a .ts over HTTP, is read as live, timed as it " \
            "arrives; download it and give the file" in result.stderr, result.stderr
    # the TS has sound, but a network source is recorded without it: the summary says so
    assert "codec" in result.stderr and "without sound (only a file source's sound is recorded)" in result.stderr


def test_window_shows_each_frame_and_quits_on_q(tmp_path, monkeypatch):
    """The window path without a display: a stand-in window that 'presses q' at the 5th frame."""
    import varec_cli.stream as stream

    shown = []

    class FakeWindow:
        def show(self, frame_bgr):
            shown.append(frame_bgr)
            return len(shown) < 5

        def close(self):
            shown.append("closed")

    monkeypatch.setattr(stream, "_Window", FakeWindow)
    video = write_index_video(tmp_path / "index.avi", 20, fps=10.0)
    recording = tmp_path / "rec.avi"
    labels = []
    summary = stream.run_stream(
        _SlowClassifier(delay=0.0),
        stream.open_source(str(video)),
        stream.StreamOptions(display=True, output=recording),
        on_label=labels.append,
    )
    assert summary.ended == "quit from the window" and summary.frames_processed == 5
    assert shown[-1] == "closed" and all(f.shape == (48, 80, 3) for f in shown[:-1])
    assert [(c.label, c.time) for c in labels] == [("a", 0.0)]
    assert count_frames(recording) == 5


def test_the_library_refuses_to_record_over_its_source(tiny_model, tmp_path):
    """run_stream called directly (not through the CLI) checks the recording's path too: the source
    video is left as it was."""
    from varec_cli.stream import StreamOptions, open_source, run_stream

    video = write_index_video(tmp_path / "index.avi", 20, fps=25.0)
    before = video.read_bytes()
    with pytest.raises(VideoError):
        run_stream(load_classifier(tiny_model), open_source(str(video)), StreamOptions(output=video))
    assert video.read_bytes() == before


def _feed_pipe(fifo, data: bytes) -> threading.Thread:
    """A writer for the named pipe `fifo`, as `ffmpeg ... -f mpegts - > fifo` would be."""

    def feed():
        try:
            with open(fifo, "wb") as pipe:  # waits for the reader
                pipe.write(data)
        except BrokenPipeError:  # the reader stopped first
            pass

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return thread


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_streams_like_the_file_it_carries(cli, trained_model, tmp_path):
    """Video piped in (MPEG-TS, which is read in one pass) gives every frame, in order, at the times
    its frame rate says, so the same lines as the file itself; the pipe is read once and the command
    ends when its writer closes it."""
    import os

    from synthetic import write_av_video

    frames = moving_square_frames("left", seed=100) + moving_square_frames("right", seed=100)
    video = write_av_video(tmp_path / "bounce.ts", frames, fps=12, codec="mpeg2video", options={"qscale": "2"})
    from_file = cli("stream", "--source", video, "--model", trained_model, "--no-display")
    assert from_file.exit_code == 0, from_file.output
    fifo = tmp_path / "camera.pipe"
    os.mkfifo(fifo)
    writer = _feed_pipe(fifo, video.read_bytes())
    from_pipe = cli("stream", "--source", fifo, "--model", trained_model, "--no-display", "-o", tmp_path / "rec.avi")
    writer.join(timeout=60)
    assert from_pipe.exit_code == 0, from_pipe.output
    assert [label for _, label, _ in _label_lines(from_pipe.stdout)] == ["moving_left", "moving_right"]
    assert from_pipe.stdout == from_file.stdout
    assert "24 captured, 24 processed" in from_pipe.stderr and "end of the video" in from_pipe.stderr
    assert "without sound" in from_pipe.stderr and count_frames(tmp_path / "rec.avi") == 24


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_carrying_an_mp4_says_what_format_a_pipe_needs(cli, tiny_model, tmp_path):
    """An MP4 whose index comes after the frames cannot be read in one pass: one line saying so, not a
    hang waiting for the pipe to be opened again."""
    import os

    fifo = tmp_path / "clip.pipe"
    os.mkfifo(fifo)
    mp4 = next(clip for clip in real_mp4_clips() if clip.name == "bikes.mp4")  # past what FFmpeg's buffer holds
    writer = _feed_pipe(fifo, mp4.read_bytes())
    result = cli("stream", "--source", fifo, "-m", tiny_model, "--no-display")
    writer.join(timeout=60)
    assert result.exit_code == 1 and result.stderr == (
        f"error: {fifo}: no frame came through the pipe (it needs a format that can be read in one pass, "
        "such as MPEG-TS or Matroska: `ffmpeg ... -f mpegts -`)\n"
    ), result.stderr

