"""Every input a user can get wrong ends in one `error:` line, exit 1, no traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic import write_motion_video


def _assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_missing_video(cli, tiny_model, tmp_path):
    _assert_one_line_error(cli("predict", tmp_path / "nope.avi", "-m", tiny_model), "nope.avi", "no such file")


def test_empty_file(cli, tiny_model, tmp_path):
    (tmp_path / "zero.avi").touch()
    _assert_one_line_error(cli("predict", tmp_path / "zero.avi", "-m", tiny_model), "zero.avi", "file is empty")


def test_text_file_named_avi(cli, tiny_model, tmp_path):
    (tmp_path / "fake.avi").write_text("hello\n" * 100)
    _assert_one_line_error(cli("predict", tmp_path / "fake.avi", "-m", tiny_model), "fake.avi")


def test_a_sound_only_file_is_said_to_be_one(cli, tiny_model, tmp_path):
    """An .m4a named .mp4 (a podcast, a voice memo): it has no video, not a format OpenCV fails on."""
    import av
    import numpy as np

    with av.open(str(tmp_path / "memo.mp4"), "w") as container:
        sound = container.add_stream("aac", rate=44100)
        sound.layout = "mono"
        for start in range(0, 44100, 1024):
            piece = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
            piece.sample_rate, piece.pts = 44100, start
            container.mux(sound.encode(piece))
        container.mux(sound.encode(None))
    for command in (["predict", tmp_path / "memo.mp4", "-m", tiny_model],
                    ["annotate", tmp_path / "memo.mp4", "-o", tmp_path / "out.mp4", "-m", tiny_model]):
        _assert_one_line_error(cli(*command), "memo.mp4: it holds sound only, no video")


def test_an_empty_name_is_neither_the_working_folder_nor_the_default_model(cli, tiny_model, tmp_path, monkeypatch):
    """`varec predict "$CLIP"` with CLIP unset searched the whole working folder for videos."""
    monkeypatch.chdir(tmp_path)
    write_motion_video(tmp_path / "clip.avi", "left", count=20)
    result = cli("predict", "", "-m", tiny_model)
    assert result.exit_code == 2 and "an empty name is no video" in result.stderr and "clip.avi" not in result.stdout
    _assert_one_line_error(cli("info", ""), "the model is empty")
    _assert_one_line_error(cli("predict", tmp_path / "clip.avi", "-m", " "), "the model is empty")


def test_truncated_video(cli, tiny_model, tmp_path):
    video = write_motion_video(tmp_path / "whole.avi", "left", count=30)
    truncated = tmp_path / "truncated.avi"
    truncated.write_bytes(video.read_bytes()[:300])
    _assert_one_line_error(cli("predict", truncated, "-m", tiny_model), "truncated.avi")


def test_directory_without_videos(cli, tiny_model, tmp_path):
    (tmp_path / "empty_dir").mkdir()
    _assert_one_line_error(cli("predict", tmp_path / "empty_dir", "-m", tiny_model), "no video files")
    (tmp_path / "recordings").mkdir()  # a camcorder's transport streams: skipped by folder searches, and said
    for name in ("rec1.ts", "REC2.MTS"):
        (tmp_path / "recordings" / name).write_bytes(b"G" * 188)
    _assert_one_line_error(
        cli("predict", tmp_path / "recordings", "-m", tiny_model),
        "no video files in this directory (2 .ts/.mts files left out", "give such videos one by one",
    )


@pytest.mark.parametrize("kind", ["missing", "text", "directory", "plain-keras-zip"])
def test_model_that_is_not_a_model(cli, tmp_path, kind):
    import zipfile

    video = write_motion_video(tmp_path / "clip.avi", "left")
    model = tmp_path / "model.keras"
    if kind == "text":
        model.write_text("not a model")
    elif kind == "directory":
        model.mkdir()
    elif kind == "plain-keras-zip":
        with zipfile.ZipFile(model, "w") as archive:
            archive.writestr("config.json", "{}")
    _assert_one_line_error(cli("predict", video, "--model", model), "model.keras")
    _assert_one_line_error(cli("info", model), "model.keras")


def test_usage_errors_exit_2(cli, tiny_model, tmp_path):
    assert cli("predict").exit_code == 2
    assert cli("predict", "x.avi", "--top-k", "0", "-m", tiny_model).exit_code == 2
    assert cli("no-such-command").exit_code == 2
    # An option value out of its range is a usage error too, wherever it is checked.
    for bad in (("--split", "4"), ("--lr", "-1"), ("--lr", "0"), ("--lr", "inf"), ("--lr", "nan"), ("--val-fraction", "1.5"),
                ("--backbone-weights", "imagenet", "--backbone", "scratch")):
        result = cli("train", "--dataset", tmp_path, "-o", tmp_path / "m.keras", *bad)
        assert result.exit_code == 2 and bad[0] in result.stderr, (bad, result.output)
    assert cli("evaluate", "--dataset", tmp_path, "-m", tiny_model, "--split", "0").exit_code == 2
    assert cli("evaluate", "--dataset", tmp_path, "-m", tiny_model, "--val-fraction", "-0.1").exit_code == 2


def test_a_tensorboard_path_that_cannot_be_a_folder_fails_before_any_work(cli, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    result = cli("train", "--dataset", tmp_path / "nowhere", "-o", tmp_path / "m.keras", "--tensorboard", taken / "tb")
    assert result.exit_code == 1
    _assert_one_line_error(result, f"--tensorboard {taken / 'tb'}: {taken} is not a folder")


def test_debug_shows_traceback(tmp_path):
    env = {**os.environ, "VAREC_DEBUG": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "varec_cli", "info", str(tmp_path / "missing.keras")],
        capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    env.pop("VAREC_DEBUG")
    proc = subprocess.run(
        [sys.executable, "-m", "varec_cli", "info", str(tmp_path / "missing.keras")],
        capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 1 and proc.stderr.strip().startswith("error: ") and "Traceback" not in proc.stderr


def test_a_closed_stderr_or_stdout_loses_its_lines_and_nothing_else(tiny_model, tmp_path):
    """`varec ... 2>&-` or `>&-`: the process starts without that descriptor. The command still runs
    (it failed with exit 1 and no output), and nothing meant for stderr lands in a file varec opens."""
    from varec_cli.video.reader import count_frames

    def run(args, *closed):
        return subprocess.run(
            [sys.executable, "-m", "varec_cli", *map(str, args)], capture_output=not closed or 1 not in closed,
            text=True, timeout=300, preexec_fn=lambda: [os.close(fd) for fd in closed],
        )

    info = run(["info", tiny_model], 2)
    assert info.returncode == 0 and "classes        3" in info.stdout
    assert run(["info", tiny_model], 1).returncode == 0
    video = write_motion_video(tmp_path / "clip.avi", "left", count=30, size=64)
    output = tmp_path / "out.avi"
    annotated = run(["annotate", video, "-o", output, "-m", tiny_model], 1, 2)
    assert annotated.returncode == 0 and count_frames(output) == 30


def _keras_backend_not_installed() -> str:
    import importlib.util

    for backend in ("openvino", "torch", "jax"):
        if importlib.util.find_spec(backend) is None:
            return backend
    pytest.skip("every Keras backend is installed here")


def _varec_process(*args, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "varec_cli", *map(str, args)], capture_output=True, text=True, env=env)


def test_a_keras_config_file_for_another_backend_does_not_change_varecs(tiny_model, tmp_path):
    """~/.keras/keras.json written for other work, naming a backend varec's environment lacks."""
    backend = _keras_backend_not_installed()
    (tmp_path / "keras-home").mkdir()
    (tmp_path / "keras-home" / "keras.json").write_text(f'{{"backend": "{backend}"}}')
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path / "keras-home")
    video = write_motion_video(tmp_path / "clip.avi", "left")
    proc = _varec_process("predict", video, "-m", tiny_model, "--json", env=env)
    assert proc.returncode == 0 and '"predictions"' in proc.stdout, proc.stderr


def test_a_misspelt_keras_backend_is_one_line(tiny_model):
    proc = _varec_process("info", tiny_model, env={**os.environ, "KERAS_BACKEND": "tensorfow"})
    assert proc.returncode == 1 and proc.stderr == (
        "error: KERAS_BACKEND=tensorfow is not a Keras backend: use tensorflow, jax, torch, numpy or openvino, "
        "or unset it (varec then uses TensorFlow)\n"
    )


def test_a_keras_backend_that_is_not_installed_is_one_line(tiny_model, tmp_path):
    backend = _keras_backend_not_installed()
    proc = _varec_process("info", tiny_model, env={**os.environ, "KERAS_BACKEND": backend})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr == (
        f"error: Keras is set to the {backend} backend (KERAS_BACKEND={backend}), but {backend} is not installed "
        f"beside varec: install it there (pipx inject varec {backend}), or unset KERAS_BACKEND (varec then uses TensorFlow)\n"
    )


def test_ctrl_c_while_the_cli_is_still_loading_exits_130():
    """A real SIGINT that lands while the entry point imports typer and rich (sent by an import hook
    the moment typer is looked for): the same `interrupted` and exit 130, no traceback."""
    script = (
        "import os, signal, sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'typer':\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "sys.argv = ['varec', '--help']\n"
        "from varec_cli.launch import main; main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == "interrupted" and proc.stdout == ""


def test_the_installed_command_starts_through_the_entry_point_that_catches_it():
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "varec"]
    assert script.value == "varec_cli.launch:main"


def test_ctrl_c_exits_130(tmp_path, tiny_model):
    """A real SIGINT while a command works: exit 130 and no traceback."""
    import signal

    video = write_motion_video(tmp_path / "clip.avi", "left")
    script = (
        "import time, varec_cli.predict as p\n"
        "def slow(*a, **k):\n"
        "    print('ready', flush=True); time.sleep(30)\n"
        "p.classify_video = slow\n"
        "import sys; sys.argv = ['varec', 'predict', sys.argv[1], '--model', sys.argv[2]]\n"
        "from varec_cli.cli import main; main()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(video), str(tiny_model)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "interrupted" in err


def test_quoted_library_messages_are_cut_at_a_word_on_one_line():
    from varec_cli.errors import brief

    long = "Requested the deserialization of a layer whose configuration runs on " * 5
    cut = brief(long, 60)
    assert len(cut) <= 64 and cut.endswith(" ...") and long.startswith(cut[:-4])
    assert brief("\n\n  first words\nsecond line", first_line=True) == "first words"
    assert brief("two\nlines") == "two lines"
    assert brief(ValueError()) == "ValueError" and brief(ValueError("\n"), first_line=True) == "ValueError"


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs a sysfs at /sys")
def test_an_output_folder_the_file_system_refuses_fails_before_any_work(cli, tmp_path):
    """/sys refuses new files even to root, whom every permission check lets through: refused at once
    (the dataset does not even exist), not after the first epoch."""
    for args in (("-o", "/sys/m.keras"), ("-o", tmp_path / "m.keras", "--tensorboard", "/sys/tb")):
        result = cli("train", "--dataset", tmp_path / "nowhere", *args)
        assert result.exit_code == 1
        _assert_one_line_error(result, "/sys")
        assert "nowhere" not in result.stderr
    assert not list(Path("/sys").glob(".varec-write-check-*"))


def test_empty_names_given_to_the_library_search_nothing(tmp_path, monkeypatch):
    """A library caller's empty model or video name (a script's unset variable) is an error, not the
    working folder."""
    from varec_cli.errors import ModelError
    from varec_cli.models.classifier import open_classifier
    from varec_cli.predict import collect_videos

    write_motion_video(tmp_path / "clip.avi", "left")
    monkeypatch.chdir(tmp_path)
    videos, problems, _ = collect_videos(["", " "])
    assert videos == [] and len(problems) == 2 and all("empty" in str(p) for p in problems)
    with pytest.raises(ModelError, match="the model is empty"):
        open_classifier("")


def test_links_that_lead_nowhere_say_so_instead_of_no_such_file(cli, tiny_model, tmp_path):
    """`ls` shows the name, so "no such file" would send the user looking in the wrong place."""
    (tmp_path / "loop1.mp4").symlink_to(tmp_path / "loop2.mp4")
    (tmp_path / "loop2.mp4").symlink_to(tmp_path / "loop1.mp4")
    (tmp_path / "moved.mp4").symlink_to(tmp_path / "gone.mp4")
    for name, words in (("loop1.mp4", "symbolic links that loop"), ("moved.mp4", f"a symbolic link to {tmp_path / 'gone.mp4'}, which does not exist")):
        link = tmp_path / name
        _assert_one_line_error(cli("predict", link, "-m", tiny_model), f"{link}: {words}")
        _assert_one_line_error(cli("annotate", link, "-o", tmp_path / "out.mp4", "-m", tiny_model), f"{link}: {words}")
        _assert_one_line_error(cli("stream", "-s", link, "-m", tiny_model, "--no-display"), f"{link}: {words}")
        _assert_one_line_error(cli("info", link), f"{link}: {words}")
        _assert_one_line_error(cli("predict", write_motion_video(tmp_path / "clip.avi", "left"), "-m", link), f"{link}: {words}")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_or_a_device_given_as_a_video_file_is_refused_at_once(tiny_model, tmp_path):
    """predict, annotate and info need a file they can read more than once; a named pipe without a
    writer would also block any open() of it. Run in a child process: a regression would hang."""
    fifo = tmp_path / "clip.pipe"
    os.mkfifo(fifo)
    for args in (("predict", fifo, "-m", tiny_model), ("annotate", fifo, "-o", tmp_path / "o.mp4", "-m", tiny_model)):
        proc = subprocess.run(
            [sys.executable, "-m", "varec_cli", *map(str, args)], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 1 and proc.stderr == (
            f"error: {fifo}: a pipe, not a video file; save the video to a file first, "
            f"or label it as it comes with `varec stream --source {fifo}`\n"
        ), proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "varec_cli", "predict", os.devnull, "-m", str(tiny_model)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1 and proc.stderr.startswith(f"error: {os.devnull}: a device, not a video file"), proc.stderr


def test_a_frame_rate_past_belief_gives_no_length_instead_of_zero_seconds(cli, tiny_model, tmp_path):
    """An AVI header stating 4e9 frames per second: predict's length is unknown (null), not 0.0 s,
    and annotate says why it assumes a rate."""
    import json
    import struct

    video = write_motion_video(tmp_path / "clip.avi", "left", count=24)
    data = bytearray(video.read_bytes())
    strh = data.find(b"strh")
    struct.pack_into("<II", data, strh + 8 + 20, 1, 4_000_000_000)  # dwScale, dwRate
    struct.pack_into("<I", data, data.find(b"avih") + 8, 0)  # dwMicroSecPerFrame
    video.write_bytes(bytes(data))
    result = cli("predict", video, "-m", tiny_model, "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["frames"] == 24 and record["seconds"] is None
    table = cli("predict", video, "-m", tiny_model)
    assert table.exit_code == 0 and "(24 frames, no frame rate)" in table.stdout, table.stdout
    annotated = cli("annotate", video, "-o", tmp_path / "out.avi", "-m", tiny_model)
    assert annotated.exit_code == 0 and "gives no believable frame rate; assuming 25 fps" in annotated.stderr, annotated.stderr


def test_not_a_number_is_not_called_out_of_range(cli, tiny_model, tmp_path):
    video = write_motion_video(tmp_path / "clip.avi", "left")
    for args, option, words in (
        (("stream", "-s", video, "--threshold", "nan", "--no-display"), "--threshold", "must be a probability from 0 to 1"),
        (("stream", "-s", video, "--threshold", "1.5", "--no-display"), "--threshold", "must be a probability from 0 to 1"),
        (("annotate", video, "-o", tmp_path / "o.avi", "--window", "nan"), "--window", "must be a number of seconds, 0 or more"),
        (("annotate", video, "-o", tmp_path / "o.avi", "--window", "-1"), "--window", "must be a number of seconds, 0 or more"),
    ):
        result = cli(*args, "-m", tiny_model)
        assert result.exit_code == 2 and option in result.stderr and words in result.stderr, result.stderr
        assert "greater than" not in result.stderr and "less than" not in result.stderr


def test_labels_the_terminal_cannot_encode_are_escaped_not_a_traceback(tiny_model, tmp_path):
    """An ASCII (or cp1252) stdout and a model whose labels are German and Japanese."""
    from synthetic import model_with_metadata

    model = model_with_metadata(tiny_model, tmp_path / "unicode.keras", labels=["schöpfen", "日本の踊り", "still"])
    video = write_motion_video(tmp_path / "clip.avi", "left")
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    for args in (("predict", video, "-m", model), ("info", model)):
        proc = _varec_process(*args, env=env)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-500:]
        assert "sch\\xf6pfen" in proc.stdout and "\\u65e5\\u672c" in proc.stdout, proc.stdout
