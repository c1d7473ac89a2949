"""Videos whose names are not UTF-8 (Latin-1 bytes from an old disk or a camera's card).

OpenCV crashed the whole process on them (a segmentation fault), so the commands run in a child
process: a regression fails this test instead of ending the test run.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest
from synthetic import moving_square_frames, write_video

CHILD = r"""
import json, sys
from typer.testing import CliRunner
from varec_cli.cli import app

model, video, folder = sys.argv[1:4]
runner = CliRunner()
runs = {
    "predict": ["predict", video, "-m", model, "--json"],
    "annotate": ["annotate", video, "-m", model, "-o", folder + "/annotated.avi"],
    "stream": ["stream", "-s", video, "-m", model, "--no-display", "-o", folder + "/recorded.avi"],
}
results = {}
for name, args in runs.items():
    result = runner.invoke(app, args)
    results[name] = {"code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr, "exception": repr(result.exception)}
print(json.dumps(results))
"""


def test_a_video_named_in_latin1_is_predicted_annotated_and_streamed(tiny_model, tmp_path):
    folder = os.path.join(os.fsencode(tmp_path), b"caf\xe9")  # "café" in Latin-1, folder and file
    try:
        os.mkdir(folder)
    except (OSError, UnicodeError):
        pytest.skip("this file system takes UTF-8 names only")
    plain = write_video(tmp_path / "clip.avi", moving_square_frames("left", 30, 64))
    video = os.path.join(folder, b"cr\xe8me.avi")
    shutil.copyfile(plain, video)

    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tiny_model), os.fsdecode(video), os.fsdecode(folder)],
        capture_output=True, text=True, errors="surrogateescape", timeout=300,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    results = json.loads(child.stdout.splitlines()[-1])
    for name, result in results.items():
        assert result["code"] == 0, (name, result)
    predicted = json.loads(results["predict"]["stdout"])
    assert predicted["frames"] == 30 and len(predicted["predictions"]) == 3
    assert os.fsencode(predicted["video"]) == video  # the JSON names the file by its own bytes
    assert "30 frames" in results["annotate"]["stdout"] and "30 captured, 30 processed" in results["stream"]["stderr"]
    for written in (b"annotated.avi", b"recorded.avi"):
        assert os.path.getsize(os.path.join(folder, written)) > 0
    assert sorted(os.listdir(folder)) == [b"annotated.avi", b"cr\xe8me.avi", b"recorded.avi"]  # no temp file left
