"""`varec predict` ends its process with os._exit (skipping TensorFlow's teardown): output must
still be complete and exit codes unchanged. Only a real process shows it, hence subprocesses."""

import json
import os
import subprocess
import sys
from pathlib import Path

from synthetic import write_motion_video

REPO = Path(__file__).resolve().parents[1]


def _varec(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "varec_cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=300
    )


def test_predict_output_is_complete_and_exit_codes_hold(tiny_model, tmp_path):
    videos = [write_motion_video(tmp_path / f"clip{i}.avi", "left", seed=i) for i in range(3)]
    done = _varec("predict", *videos, tmp_path / "missing.avi", "--model", tiny_model, "--json")
    assert done.returncode == 1  # one bad video: the others classified, exit 1 at the end
    records = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert [r["video"] for r in records] == [str(v) for v in videos]
    assert "missing.avi" in done.stderr and "Traceback" not in done.stderr

    table = _varec("predict", videos[0], "--model", tiny_model)
    assert table.returncode == 0 and "moving_" in table.stdout


# The CLI run as the console script runs it (cli.main), in a process with an atexit handler: the
# handler's line shows that the process went through Python's normal exit; os._exit skips it.
_WITH_ATEXIT_MARKER = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('atexit handler ran', flush=True))\n"
    "from varec_cli.cli import main\n"
    "sys.argv = ['varec'] + sys.argv[1:]\n"
    "main()\n"
)


def _varec_with_atexit_marker(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-c", _WITH_ATEXIT_MARKER, *map(str, args)],
        capture_output=True, text=True, env=env, timeout=300,
    )


def test_commands_that_did_not_ask_exit_normally(tiny_model, tmp_path):
    info = _varec_with_atexit_marker("info", tiny_model)
    assert info.returncode == 0 and "moving_left" in info.stdout, info.stderr
    assert info.stdout.rstrip().endswith("atexit handler ran")  # the normal exit, after the output

    # The control: predict asks for the fast exit, which skips the handlers (its output still complete).
    video = write_motion_video(tmp_path / "clip.avi", "left")
    predict = _varec_with_atexit_marker("predict", video, "--model", tiny_model, "--json")
    assert predict.returncode == 0, predict.stderr
    assert "atexit handler ran" not in predict.stdout
    assert [json.loads(line)["video"] for line in predict.stdout.splitlines()] == [str(video)]
