import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from children import stop_when_ready
from synthetic import model_with_metadata, moving_square_frames, write_av_video, write_motion_video

from varec_cli.models.classifier import load_classifier
from varec_cli.predict import classify_video


def _json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_predict_json_on_generated_and_real_clips(cli, tiny_model, tmp_path, real_clip):
    avi = write_motion_video(tmp_path / "right.avi", "right")
    result = cli("predict", avi, real_clip, "--model", tiny_model, "--json", "--top-k", "2")
    assert result.exit_code == 0, result.output
    records = _json_lines(result.stdout)
    assert [r["video"] for r in records] == [str(avi), str(real_clip)]
    for record in records:
        assert set(record) == {"video", "model", "predictions", "frames", "seconds"}
        scores = [p["score"] for p in record["predictions"]]
        assert len(scores) == 2 and scores == sorted(scores, reverse=True)
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert {p["label"] for p in record["predictions"]} <= {"moving_left", "moving_right", "standing_still"}
    assert records[0]["frames"] == 12 and abs(records[0]["seconds"] - 1.0) < 0.01
    assert records[1]["frames"] > 100


def test_scores_are_the_model_probabilities(tiny_model, tmp_path):
    avi = write_motion_video(tmp_path / "left.avi", "left")
    classifier = load_classifier(tiny_model)
    result = classify_video(classifier, avi, top_k=3)
    assert abs(sum(score for _, score in result.predictions) - 1.0) < 1e-4
    again = classify_video(classifier, avi, top_k=3)
    assert result.predictions == again.predictions  # deterministic: no test-time augmentation


def test_frame_order_changes_the_prediction(tiny_model, tmp_path):
    """Left and right clips hold the same frames in opposite order; an RNN must see a difference."""
    classifier = load_classifier(tiny_model)
    left = classify_video(classifier, write_motion_video(tmp_path / "l.avi", "left"), top_k=3)
    right = classify_video(classifier, write_motion_video(tmp_path / "r.avi", "right"), top_k=3)
    assert not np.allclose(left.probabilities, right.probabilities, atol=1e-6)


def test_clips_option_averages_views(cli, tiny_model, tmp_path):
    """`--clips 3` scores a video by the mean of the model's probabilities over its 3 temporal views,
    each view computed here on its own from the frames the reader samples for it."""
    from varec_cli.video.reader import read_clips

    avi = write_motion_video(tmp_path / "long.avi", "right", count=40)
    result = cli("predict", avi, "-m", tiny_model, "--json", "--clips", "3")
    assert result.exit_code == 0, result.output
    (record,) = _json_lines(result.stdout)
    scores = {p["label"]: p["score"] for p in record["predictions"]}

    classifier = load_classifier(tiny_model)
    views = read_clips(avi, classifier.spec.frames, classifier.spec.size, views=3).frames
    assert len(views) == 3
    per_view = np.stack([classifier.predict_clips(view[None])[0] for view in views])
    # The views differ by far more than the tolerance below: the mean is not any one view.
    assert np.abs(per_view - per_view.mean(axis=0)).max(axis=1).min() > 1e-4, per_view
    expected = dict(zip(classifier.labels, per_view.mean(axis=0)))
    assert set(scores) == set(expected)  # the default top 5: every label of the model
    for label, score in scores.items():  # JSON scores are rounded to 6 decimals
        assert score == pytest.approx(expected[label], abs=1e-5), (label, scores, expected)


def test_table_output(cli, tiny_model, tmp_path):
    avi = write_motion_video(tmp_path / "clip.avi", "left")
    result = cli("predict", avi, "--model", tiny_model, "--top-k", "3")
    assert result.exit_code == 0
    for label in ("moving_left", "moving_right", "standing_still"):
        assert label in result.stdout
    assert "clip.avi" in result.stdout


def test_directory_is_searched_recursively(cli, tiny_model, tmp_path):
    (tmp_path / "videos" / "sub").mkdir(parents=True)
    write_motion_video(tmp_path / "videos" / "a.avi", "left")
    write_motion_video(tmp_path / "videos" / "sub" / "b.avi", "right")
    (tmp_path / "videos" / "readme.txt").write_text("not a video")
    (tmp_path / "videos" / "._a.avi").write_bytes(b"macOS resource fork")  # hidden: skipped, as datasets do
    (tmp_path / "videos" / ".trash").mkdir()
    write_motion_video(tmp_path / "videos" / ".trash" / "old.avi", "left")
    result = cli("predict", tmp_path / "videos", "-m", tiny_model, "--json")
    assert result.exit_code == 0
    assert [r["video"].rsplit("/", 1)[-1] for r in _json_lines(result.stdout)] == ["a.avi", "b.avi"]


def test_a_folder_reached_through_a_link_is_searched_and_one_that_cannot_be_read_is_told(cli, tiny_model, tmp_path):
    """`predict DIR` skipped a linked folder inside DIR, and a folder it could not read, without a word."""
    import os

    for folder in ("elsewhere", "videos"):
        (tmp_path / folder).mkdir()
    write_motion_video(tmp_path / "elsewhere" / "b.avi", "right")
    write_motion_video(tmp_path / "videos" / "a.avi", "left")
    (tmp_path / "videos" / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "videos" / "up").symlink_to(tmp_path / "videos", target_is_directory=True)  # no endless search
    result = cli("predict", tmp_path / "videos", "-m", tiny_model, "--json")
    assert result.exit_code == 0, result.output
    assert [r["video"] for r in _json_lines(result.stdout)] == [
        str(tmp_path / "videos" / "a.avi"), str(tmp_path / "videos" / "linked" / "b.avi")
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return  # root may read anything
    locked = tmp_path / "videos" / "locked"
    locked.mkdir()
    write_motion_video(locked / "c.avi", "left")
    locked.chmod(0)
    try:
        result = cli("predict", tmp_path / "videos", "-m", tiny_model, "--json")
    finally:
        locked.chmod(0o755)
    assert result.exit_code == 0 and len(_json_lines(result.stdout)) == 2  # what it could read, as asked
    assert result.stderr == f"warning: {locked}: cannot read this folder (Permission denied); the videos in it are left out\n"
    (tmp_path / "only-locked").mkdir()
    (tmp_path / "only-locked" / "sub").mkdir(mode=0)
    (tmp_path / "closed").mkdir(mode=0)
    try:
        result = cli("predict", tmp_path / "closed", tmp_path / "only-locked", "-m", tiny_model)
    finally:
        (tmp_path / "only-locked" / "sub").chmod(0o755)
        (tmp_path / "closed").chmod(0o755)
    assert result.exit_code == 1 and result.stderr.splitlines() == [
        f"warning: {tmp_path / 'only-locked' / 'sub'}: cannot read this folder (Permission denied); the videos in it are left out",
        f"error: {tmp_path / 'closed'}: cannot read this folder (Permission denied)",
        f"error: {tmp_path / 'only-locked'}: no video files in this directory, as far as it could be read (1 folder in it could not)",
    ]


def test_one_bad_video_does_not_stop_the_others(cli, tiny_model, tmp_path):
    good = write_motion_video(tmp_path / "good.avi", "left")
    bad = tmp_path / "bad.avi"
    bad.write_text("plain text, not a video")
    result = cli("predict", bad, good, "-m", tiny_model, "--json")
    assert result.exit_code == 1
    assert [r["video"] for r in _json_lines(result.stdout)] == [str(good)]
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and "bad.avi" in result.stderr


def test_a_folder_without_videos_does_not_stop_the_others(cli, tiny_model, tmp_path):
    good = write_motion_video(tmp_path / "good.avi", "left")
    (tmp_path / "empty").mkdir()
    result = cli("predict", tmp_path / "empty", good, "-m", tiny_model, "--json")
    assert result.exit_code == 1
    assert [r["video"] for r in _json_lines(result.stdout)] == [str(good)]
    assert result.stderr == f"error: {tmp_path / 'empty'}: no video files in this directory\n"
    (tmp_path / "empty2").mkdir()
    alone = cli("predict", tmp_path / "empty", tmp_path / "empty2", "-m", tiny_model)
    assert alone.exit_code == 1 and alone.stderr.splitlines() == [
        f"error: {tmp_path / name}: no video files in this directory" for name in ("empty", "empty2")
    ]


def test_info_describes_the_model(cli, tiny_model):
    result = cli("info", tiny_model)
    assert result.exit_code == 0, result.output
    for text in ("moving_left", "scratch", "gru", "32 x 32", "parameters"):
        assert text in result.stdout
    data = json.loads(cli("info", tiny_model, "--json").stdout)
    assert data["frames"] == 6 and data["frame_size"] == [32, 32] and data["backbone"] == "scratch"
    assert data["rnn"] == "gru" and data["classes"] == 3 and data["parameters"] > 1000


def test_tables_read_off_a_terminal_have_no_trailing_blanks(cli, tiny_model, tmp_path):
    """Piped into grep or diff, a table row ends at its last character (rich pads rows to the table's width)."""
    video = write_motion_video(tmp_path / "clip.avi", "left")
    for args in (("info", tiny_model), ("predict", video, "-m", tiny_model)):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert len(lines) > 3 and not [line for line in lines if line.endswith(" ")], (args, lines)


def test_info_shortens_a_long_label_list_and_labels_shows_it_all(cli, tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)  # piped: the table as wide as its content, no row folded
    from varec_cli.models.architecture import build_model
    from varec_cli.models.modelfile import ModelMetadata, save_model

    labels = [f"action_{i:02d}" for i in range(1, 16)]
    model = save_model(
        build_model(len(labels), backbone="scratch", rnn="gru", frames=4, size=32, units=4),
        tmp_path / "fifteen.keras",
        ModelMetadata(labels=labels, frames=4, size=(32, 32), backbone="scratch", preprocessing="unit", rnn="gru",
                      feature_dim=128),
    )

    def labels_row(*flag):
        result = cli("info", model, *flag)
        assert result.exit_code == 0, result.output
        (row,) = [line for line in result.stdout.splitlines() if line.split()[:1] == ["labels"]]
        assert "action_" not in result.stdout.replace(row, "")  # on that row alone
        return row.split(None, 1)[1].strip()

    assert labels_row() == ", ".join(labels[:10]) + ", ... (5 more)"
    assert labels_row("--labels") == ", ".join(labels)
    assert json.loads(cli("info", model, "--json").stdout)["labels"] == labels


def test_unusable_metadata_is_one_line_for_every_command(cli, tiny_model, tmp_path):
    video = write_motion_video(tmp_path / "clip.avi", "left")
    cases = {
        "words.keras": ({"frames": "six"}, "frames must be a whole number above 0, not 'six'"),
        "zero.keras": ({"size": [0, 0]}, "size must be [height, width] in pixels, not [0, 0]"),
        "number.keras": ({"size": 224}, "size must be [height, width] in pixels, not 224"),
        "labels.keras": ({"labels": "moving_left"}, "labels must be a non-empty list of names"),
        "fewer.keras": ({"frames": 3}, "its varec metadata says 3 frames of 32x32 px, but the network takes 6x32x32x3"),
        "forever.keras": ({"clip_seconds": float("inf")}, "clip_seconds must be a number of seconds above 0, not inf"),
        "nan.keras": ({"clip_seconds": float("nan")}, "clip_seconds must be a number of seconds above 0, not nan"),
    }
    for name, (changes, expected) in cases.items():
        model = model_with_metadata(tiny_model, tmp_path / name, **changes)
        for args in (("predict", video), ("annotate", video, "-o", tmp_path / "out.avi"),
                     ("stream", "-s", video, "--no-display")):
            result = cli(*args, "-m", model)
            assert result.exit_code == 1, (name, args, result.output)
            assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
            assert expected in result.stderr, result.stderr
        if name != "fewer.keras":  # info reads the metadata alone, without loading the network
            assert expected in cli("info", model).stderr


def test_metadata_that_is_not_an_object_or_lacks_a_field_is_one_line(cli, tiny_model, tmp_path):
    import zipfile

    def with_metadata(name: str, text: bytes) -> Path:
        with zipfile.ZipFile(tiny_model) as source, zipfile.ZipFile(tmp_path / name, "w") as copy:
            for item in source.infolist():
                copy.writestr(item, text if item.filename == "varec.json" else source.read(item))
        return tmp_path / name

    with zipfile.ZipFile(tiny_model) as source:
        metadata = json.loads(source.read("varec.json"))
    future = {k: v for k, v in metadata.items() if k != "frames"} | {"format_version": 99, "frames_v99": 6}
    cases = {
        with_metadata("list.keras", b"[]"): "its varec metadata is corrupt (not a JSON object)",
        with_metadata("future.keras", json.dumps(future).encode()): "made by a newer varec (model format 99); upgrade varec",
        with_metadata("no-frames.keras", json.dumps({k: v for k, v in metadata.items() if k != "frames"}).encode()):
            "its varec metadata is incomplete (no frames)",
    }
    for model, expected in cases.items():
        result = cli("info", model)
        assert result.exit_code == 1 and result.stderr == f"error: {model}: {expected}\n"


def test_a_model_file_whose_metadata_does_not_decompress_is_one_line(cli, tiny_model, tmp_path):
    """A damaged or encrypted archive member is the file's fault, not a crash."""
    import zipfile

    damaged = tmp_path / "damaged.keras"
    with zipfile.ZipFile(tiny_model) as source, zipfile.ZipFile(damaged, "w", zipfile.ZIP_DEFLATED) as copy:
        for item in source.infolist():
            copy.writestr(item.filename, source.read(item))
    data = bytearray(damaged.read_bytes())
    with zipfile.ZipFile(damaged) as archive:
        member = archive.getinfo("varec.json")
    start = member.header_offset + 30 + len(member.filename.encode()) + len(member.extra)
    data[start : start + 8] = b"\xff" * 8  # deflate data that is not deflate
    damaged.write_bytes(bytes(data))
    flipped = tmp_path / "flipped.keras"  # varec stores varec.json uncompressed: damage shows as a bad CRC
    data = bytearray(tiny_model.read_bytes())
    with zipfile.ZipFile(tiny_model) as archive:
        member = archive.getinfo("varec.json")
    assert member.compress_type == zipfile.ZIP_STORED
    start = member.header_offset + 30 + len(member.filename.encode()) + len(member.extra)
    data[start + 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    video = write_motion_video(tmp_path / "clip.avi", "left")
    for model in (damaged, flipped):
        for command in (("info", model), ("predict", video, "-m", model)):
            result = cli(*command)
            assert result.exit_code == 1 and result.stderr.startswith(f"error: {model}: its varec metadata cannot be read (")
            assert result.stderr.endswith("is the file damaged?\n") and result.stderr.count("\n") == 1


def _strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_model_that_outputs_nan_is_an_error_not_a_nan_score(cli, tiny_model, tmp_path):
    import keras

    from varec_cli.models.modelfile import read_metadata, save_model

    model = keras.models.load_model(tiny_model, safe_mode=False)
    dense = model.get_layer("sequence_head").get_layer("probabilities")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, np.full_like(bias, np.nan)])
    metadata = read_metadata(tiny_model)
    broken = save_model(model, tmp_path / "nan.keras", metadata)
    video = write_motion_video(tmp_path / "clip.avi", "left")
    result = cli("predict", video, "-m", broken, "--json")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ") and "not a number" in result.stderr

    # a diverged training run's NaN in the provenance: `info --json` still prints valid JSON
    diverged = model_with_metadata(tiny_model, tmp_path / "diverged.keras", provenance={"val_loss": float("nan"), "epochs": 3})
    data = _strict_json(cli("info", diverged, "--json").stdout)
    assert data["provenance"] == {"val_loss": None, "epochs": 3}


def test_missing_videos_fail_before_any_model_is_fetched_or_loaded(cli, tmp_path):
    result = cli("predict", tmp_path / "nosuch.mp4", "-m", tmp_path / "no-model.keras")  # the model is never read
    assert result.exit_code == 1 and result.stderr == f"error: {tmp_path / 'nosuch.mp4'}: no such file\n"


def test_info_shows_provenance_as_written(cli, tiny_model, tmp_path):
    provenance = {"training_seconds": 10800.3, "init": None, "feature_cache": False, "lr": 1e-05,
                  "clips": {"test": 32, "train": 40, "val": 8}, "nested": {"a": [1, 2]}}  # as a file keeps them: sorted
    model = model_with_metadata(tiny_model, tmp_path / "p.keras", provenance=provenance)
    rows = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in cli("info", model).stdout.splitlines()
                if line.startswith("trained: "))
    assert rows == {"trained: training seconds": "10800.3", "trained: init": "-", "trained: feature cache": "no",
                    "trained: lr": "1e-05", "trained: clips": "train 40, val 8, test 32",
                    "trained: nested": '{"a": [1, 2]}'}


def test_results_are_not_dropped_when_stderr_is_what_broke(tiny_model, tmp_path):
    """Only a closed stdout means "the reader has what it wanted"; a broken stderr is no reason to send
    the results to /dev/null and exit 0."""
    import os

    (tmp_path / "videos").mkdir()
    write_motion_video(tmp_path / "videos" / "v.avi", "left")
    reader, writer = os.pipe()
    os.close(reader)
    try:
        with open(tmp_path / "out.txt", "w") as out:  # the error about nosuch.avi is the first thing said
            proc = subprocess.run([sys.executable, "-m", "varec_cli", "predict", str(tmp_path / "nosuch.avi"),
                                   str(tmp_path / "videos"), "-m", str(tiny_model), "--json"],
                                  stdout=out, stderr=writer, timeout=300)
    finally:
        os.close(writer)
    assert proc.returncode == 1  # one video failed: the exit code says so, as the error line was lost
    (record,) = _json_lines((tmp_path / "out.txt").read_text())
    assert record["video"].endswith("v.avi") and record["predictions"]


def test_a_model_path_under_an_unknown_users_home_is_no_such_file(cli, tmp_path):
    video = write_motion_video(tmp_path / "clip.avi", "left")
    for command in (("predict", video, "-m", "~no_such_user_varec/m.keras"), ("info", "~no_such_user_varec/m.keras")):
        result = cli(*command)
        assert result.exit_code == 1 and result.stderr == "error: ~no_such_user_varec/m.keras: no such model file\n"


def test_a_url_is_pointed_to_stream(cli, tiny_model):
    result = cli("predict", "http://127.0.0.1:9/clip.avi", "-m", tiny_model)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: http://127.0.0.1:9/clip.avi: predict reads video files; download it first, or label it live "
        "with `varec stream --source http://127.0.0.1:9/clip.avi`\n"
    )


def test_long_labels_stay_whole_on_their_line_in_piped_tables(cli, tiny_model, tmp_path):
    label = "a_label_long_enough_to_overflow_an_eighty_column_table_" * 2
    model = model_with_metadata(tiny_model, tmp_path / "long.keras", labels=[label + "0", label + "1", label + "2"])
    video = write_motion_video(tmp_path / "clip.avi", "left")
    shown = cli("predict", video, "-m", model, "-k", "3").stdout
    assert all(any(label + str(i) in line for line in shown.splitlines()) for i in range(3)), shown


def test_labels_that_look_like_markup_print_as_themselves(cli, tiny_model, tmp_path):
    model = model_with_metadata(tiny_model, tmp_path / "brackets.keras",
                           labels=["[bold]wave", "jump [red]high", "[/]still"])
    video = write_motion_video(tmp_path / "clip.avi", "left")
    shown = cli("predict", video, "-m", model).stdout
    info = cli("info", model).stdout
    for label in ("[bold]wave", "jump [red]high", "[/]still"):
        assert label in shown and label in info, (shown, info)


def test_a_registry_model_is_reported_by_its_registry_name(cli, tiny_model, tmp_path, monkeypatch):
    import hashlib

    registry = tmp_path / "models.toml"
    digest = hashlib.sha256(Path(tiny_model).read_bytes()).hexdigest()
    registry.write_text(f'[models.tiny-local]\nurl = "{Path(tiny_model).as_uri()}"\nsha256 = "{digest}"\n')
    monkeypatch.setenv("VAREC_REGISTRY", str(registry))
    video = write_motion_video(tmp_path / "clip.avi", "left")
    result = cli("predict", video, "-m", "tiny-local", "--json")
    assert result.exit_code == 0, result.output
    assert _json_lines(result.stdout)[0]["model"] == "tiny-local"  # not the cached file's name
    assert _json_lines(cli("predict", video, "-m", tiny_model, "--json").stdout)[0]["model"] == "tiny.keras"
    from varec_cli.weights.resolve import resolve_model_path

    info = json.loads(cli("info", "tiny-local", "--json").stdout)  # info named it by its path in the cache
    assert info["model"] == "tiny-local" and info["file"] == str(resolve_model_path("tiny-local"))
    assert json.loads(cli("info", tiny_model, "--json").stdout)["model"] == "tiny.keras"
    alias = tmp_path / "alias.keras"
    alias.symlink_to(tiny_model)
    monkeypatch.chdir(tmp_path)
    linked = json.loads(cli("info", "alias.keras", "--json").stdout)  # the name given, the path whole
    assert linked["model"] == "alias.keras" and linked["file"] == str(alias)
    table = cli("info", "tiny-local").stdout.splitlines()
    assert table[0].split() == ["model", "tiny-local"] and table[1].split() == ["file", info["file"]]


def test_help_does_not_import_heavy_frameworks():
    code = (
        "import sys; from typer.testing import CliRunner; from varec_cli.cli import app; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
        "assert 'predict' in r.output; "
        "heavy = [m for m in ('tensorflow', 'keras', 'cv2', 'av', 'matplotlib') if m in sys.modules]; "
        "print(heavy); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    version = subprocess.run(
        [sys.executable, "-m", "varec_cli", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("varec ")


def test_every_option_that_takes_a_value_names_it(cli):
    """`--model MODEL`, `--top-k K`, not the Python type (`<str>`, `<int range>`) newer typers show by default."""
    import re

    for command in ("predict", "annotate", "stream", "train", "evaluate", "info", "models", "download", "cache"):
        text = cli(command, "--help").stdout
        options = [line for line in text.splitlines() if re.match(r"\s+(-\w, )?--", line)]
        assert options, text
        typed = [line for line in options if re.search(r"<(str|int|float|path|int range|float range)>", line)]
        assert not typed, (command, typed)


def test_the_command_list_shows_whole_summaries(cli):
    listing = cli("--help").stdout.split("Commands:")[1].split("\n\n")[0].splitlines()  # up to the environment
    commands = [line.split(None, 1) for line in listing if line.strip()]
    assert len(commands) == 9 and all(not summary.endswith("...") for _, summary in commands), listing


def test_a_successful_predict_prints_nothing_on_stderr(tiny_model, tmp_path):
    """No TensorFlow start-up chatter (oneDNN, CUDA stubs) in front of the user's results."""
    import os

    avi = write_motion_video(tmp_path / "clip.avi", "left")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-m", "varec_cli", "predict", str(avi), "--model", str(tiny_model), "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert json.loads(proc.stdout)["video"] == str(avi)


def test_ffmpeg_says_nothing_of_its_own_about_a_broken_file(tiny_model, tmp_path):
    """OpenCV's FFmpeg would print "moov atom not found" from whichever thread opened the file; the
    user gets varec's one line per bad file and nothing else."""
    import os

    good = [write_motion_video(tmp_path / f"g{i}.avi", "left") for i in range(3)]
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    # cut inside its header: FFmpeg gives up, and OpenCV's own AVI parser (tried next) prints
    # "Unexpected element. Expected: LIST. Got: ..." with fprintf
    whole = write_motion_video(tmp_path / "whole.avi", "left", count=30).read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole[: len(whole) // 10])
    env = {k: v for k, v in os.environ.items() if k not in ("OPENCV_FFMPEG_LOGLEVEL", "VAREC_DEBUG")}
    proc = subprocess.run(
        [sys.executable, "-m", "varec_cli", "predict", *map(str, good), str(broken), str(cut), "--model",
         str(tiny_model), "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 1 and len(_json_lines(proc.stdout)) == 3
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"error: {broken}") and lines[1].startswith(f"error: {cut}"), lines


@pytest.mark.parametrize("output", [["--json"], []], ids=["json", "table"])
def test_a_reader_that_stops_reading_ends_predict_quietly(tiny_model, tmp_path, output):
    """`varec predict DIR [--json] | head -1`: once the reader has what it wanted, exit 0 with nothing
    on stderr (not 1 with no word, which a `pipefail` script takes for a failure)."""
    import os

    (tmp_path / "videos").mkdir()
    for i in range(3):
        write_motion_video(tmp_path / "videos" / f"v{i}.avi", "left", seed=i)
    reader, writer = os.pipe()
    os.close(reader)
    try:
        proc = subprocess.run([sys.executable, "-m", "varec_cli", "predict", str(tmp_path / "videos"), "-m",
                               str(tiny_model), *output], stdout=writer, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(writer)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("stop, code", [("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_termination_signal_mid_run_stops_predict_like_ctrl_c(tiny_model, tmp_path, stop, code):
    """`timeout`, `docker stop` (SIGTERM) or a closed terminal (SIGHUP) while predict works through
    several videos: the results printed so far stay, then `terminated (SIG...)` and exit 128 + the
    signal's number, no traceback. The process is held (in the main thread) as it starts the second video."""
    import signal

    videos = [write_motion_video(tmp_path / f"clip{i}.avi", "left", seed=i) for i in range(3)]
    script = (
        "import sys, time\n"
        "import varec_cli.predict as predict\n"
        "classify, calls = predict.classify_video, []\n"
        "def held_at_the_second(*args, **kwargs):\n"
        "    calls.append(args[1])\n"
        "    if len(calls) == 2:\n"
        "        print('ready', file=sys.stderr, flush=True); time.sleep(60)\n"
        "    return classify(*args, **kwargs)\n"
        "predict.classify_video = held_at_the_second\n"
        "from varec_cli.cli import main\n"
        "sys.argv = ['varec'] + sys.argv[1:]\n"
        "main()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "predict", *map(str, videos), "--model", str(tiny_model), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    out, err = stop_when_ready(proc, proc.stderr, lambda: proc.send_signal(getattr(signal, stop)))
    assert proc.returncode == code, (out, err)
    assert [record["video"] for record in _json_lines(out)] == [str(videos[0])]
    assert err.strip() == f"terminated ({stop})"  # nothing else: no traceback


def test_a_file_cut_short_is_classified_with_a_warning(cli, tiny_model, tmp_path):
    frames = moving_square_frames("right", count=100, size=64)
    whole = write_av_video(tmp_path / "whole.mp4", frames, container_options={"movflags": "faststart"})
    cut = tmp_path / "cut.mp4"  # a download that stopped half way: the index, at the front, lists 4 s
    data = whole.read_bytes()
    cut.write_bytes(data[: (data.index(b"mdat") + len(data)) // 2])
    result = cli("predict", whole, cut, "-m", tiny_model, "--json")
    assert result.exit_code == 0, result.output
    records = _json_lines(result.stdout)
    assert "warning" not in records[0]
    assert records[1]["frames"] < 80 and records[1]["predictions"]
    assert "cut short or damaged" in records[1]["warning"] and "of the 4.0 s" in records[1]["warning"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "cut.mp4" in warnings[0] and "whole.mp4" not in warnings[0]


def _colour_codes(text: str) -> list[str]:
    """The ANSI SGR sequences in `text` that set a colour (foreground or background; bold and the
    like are no colour)."""
    import re

    def sets_colour(params: str) -> bool:
        codes = [int(code) for code in params.split(";") if code.isdigit()]
        return any(30 <= c <= 38 or 40 <= c <= 48 or 90 <= c <= 97 or 100 <= c <= 107 for c in codes)

    return [m.group(0) for m in re.finditer(r"\x1b\[([0-9;]*)m", text) if sets_colour(m.group(1))]


def test_no_color_takes_the_colours_out_of_a_terminal_output(cli, tiny_model, tmp_path, monkeypatch):
    """On a terminal (FORCE_COLOR: rich's way to treat the captured streams as one) warnings are
    yellow and progress bars coloured; with NO_COLOR set, neither stream carries a colour."""
    from synthetic import set_avi_frame_count

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    cut = write_motion_video(tmp_path / "cut.avi", "left", count=12)
    set_avi_frame_count(cut, 48)  # its header states 4 s, 1 s decodes: a warning
    root = tmp_path / "data"  # a dataset with a test part, one of whose videos is broken: a warning
    for part in ("train", "test"):
        for direction in ("left", "right"):
            (root / part / f"moving_{direction}").mkdir(parents=True)
            write_motion_video(root / part / f"moving_{direction}" / f"{direction}.avi", direction)
    (root / "test" / "moving_left" / "broken.avi").write_bytes(b"\0" * 64)

    def run(*args):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        assert "warning:" in result.stderr
        return result

    coloured = [run("predict", cut, "-m", tiny_model), run("evaluate", "-d", root, "-m", tiny_model)]
    for result in coloured:  # the control: colours are there to take out
        assert "\x1b[33mwarning:" in result.stderr and _colour_codes(result.stderr), repr(result.stderr)
    monkeypatch.setenv("NO_COLOR", "1")
    plain = [run("predict", cut, "-m", tiny_model), run("evaluate", "-d", root, "-m", tiny_model)]
    for result in plain:
        assert _colour_codes(result.stdout) == [] and _colour_codes(result.stderr) == [], repr(result.output)
    assert "moving_left" in plain[0].stdout and "top-1" in plain[1].stdout  # the same results, uncoloured


def test_a_model_with_python_code_in_it_is_refused_in_one_line(cli, tmp_path):
    import keras

    from varec_cli.models.modelfile import ModelMetadata, save_model

    inputs = keras.Input((4, 8, 8, 3))
    pooled = keras.layers.Lambda(lambda x: keras.ops.mean(x, axis=(1, 2, 3)))(inputs)  # code, not a layer config
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled))
    metadata = ModelMetadata(
        labels=["a", "b"], frames=4, size=(8, 8), backbone="scratch", preprocessing="unit", rnn="gru", feature_dim=3
    )
    path = save_model(model, tmp_path / "code.keras", metadata)
    video = write_motion_video(tmp_path / "clip.avi", "left")
    result = cli("predict", video, "-m", path)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        f"error: {path}: it holds Python code (a Lambda layer), which varec never loads from a model file "
        "(Keras safe mode); rebuild the model without it\n"
    )


def test_help_alone_tells_how_to_configure_varec(cli):
    """An installed package has no docs/ folder: the environment variables and the registry's format
    are in the help itself."""
    root = cli("--help").stdout
    for variable in ("VAREC_CACHE_DIR", "VAREC_DATA_DIR", "VAREC_REGISTRY", "VAREC_OFFLINE=1", "VAREC_DEBUG=1", "NO_COLOR"):
        assert variable in root, root
    registry = cli("models", "--help").stdout
    assert "VAREC_REGISTRY=" in registry and "[models." in registry and 'url = "file:///' in registry and "[defaults]" in registry


def test_labels_with_control_characters_are_refused_not_printed(cli, tiny_model, tmp_path):
    """A model file from elsewhere could recolour the terminal (ESC codes) or break a table's rows with
    its labels: such a file is refused, by every command, in one line."""
    labels = ["\x1b[31mRED\n2nd", "b", "c"]
    hostile = model_with_metadata(tiny_model, tmp_path / "hostile.keras", labels=labels)
    video = write_motion_video(tmp_path / "clip.avi", "left")
    for args in (("info", hostile), ("predict", video, "-m", hostile)):
        result = cli(*args)
        assert result.exit_code == 1 and "\x1b" not in result.output, result.output
        assert "labels must not hold control characters" in result.stderr and result.stderr.count("\n") == 1


def test_a_model_file_naming_one_class_twice_is_refused(cli, tiny_model, tmp_path):
    """Two outputs of one name: predict's top-k would show it twice, and evaluate could not tell which
    output a dataset's class is."""
    twice = model_with_metadata(tiny_model, tmp_path / "twice.keras", labels=["run", "walk", "run"])
    result = cli("info", twice)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "labels must differ from each other, and 'run' is there twice" in result.stderr
    case = cli("info", model_with_metadata(tiny_model, tmp_path / "case.keras", labels=["Run", "walk", "run"]))
    assert case.exit_code == 0, case.output  # `Run` and `run` are two classes
    spelt_twice = model_with_metadata(tiny_model, tmp_path / "nfd.keras", labels=["caf\u00e9", "walk", "cafe\u0301"])
    result = cli("info", spelt_twice)  # one name whichever way its é is written
    assert result.exit_code == 1 and "labels must differ from each other, and 'caf\u00e9' is there twice" in result.stderr


def test_a_model_file_renamed_from_dot_keras_loads_all_the_same(cli, tiny_model, tmp_path):
    """Keras opens an archive only by a name ending in `.keras`; a varec model saved as `m.KERAS`, sent
    as `m.zip` or stripped of its extension is still the same model."""
    import json
    import shutil

    video = write_motion_video(tmp_path / "clip.avi", "left")
    original = cli("predict", video, "-m", tiny_model, "--json")
    assert original.exit_code == 0, original.output
    scores = json.loads(original.stdout)["predictions"]
    for name in ("m.KERAS", "m.zip", "m"):
        renamed = shutil.copyfile(tiny_model, tmp_path / name)
        result = cli("predict", video, "-m", renamed, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["predictions"] == scores
