"""A SavedModel with MoViNet's signature, built here, served from 127.0.0.1 as a TF-Hub-style
tar.gz, fetched lazily and used through `varec predict` — the code path of the real MoViNet entries."""

from __future__ import annotations

import io
import json
import tarfile
import textwrap

import numpy as np
import pytest
from http_server import sha256
from synthetic import write_video


COLOURS = ["red", "green", "blue"]


def _build_movinet_standins(root):
    """Base: logits = 10 x the mean RGB of the clip (so a red clip is 'red' only if frames reach the
    model as RGB in [0, 1]). Stream: the same over all frames seen so far, carried in states."""
    import tensorflow as tf

    class Base(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, None, 3], tf.float32, name="image")])
        def serve(self, image):
            return {"classifier_head": 10.0 * tf.reduce_mean(image, axis=[1, 2, 3])}

    class Stream(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([5], tf.int32)])
        def init_states(self, input_shape):
            return {"state_sum": tf.zeros([1, 3]), "state_count": tf.zeros([1, 1])}

        @tf.function(
            input_signature=[
                {
                    "image": tf.TensorSpec([None, None, None, None, 3], tf.float32),
                    "state_sum": tf.TensorSpec([None, 3], tf.float32),
                    "state_count": tf.TensorSpec([None, 1], tf.float32),
                }
            ]
        )
        def __call__(self, inputs):
            frames = tf.cast(tf.shape(inputs["image"])[1], tf.float32)
            total = inputs["state_sum"] + tf.reduce_sum(tf.reduce_mean(inputs["image"], axis=[2, 3]), axis=1)
            count = inputs["state_count"] + frames
            return 10.0 * total / count, {"state_sum": total, "state_count": count}

    base, stream = Base(), Stream()
    tf.saved_model.save(base, str(root / "base"), signatures={"serving_default": base.serve})
    tf.saved_model.save(stream, str(root / "stream"), signatures={"init_states": stream.init_states})
    return root / "base", root / "stream"


def _tar_gz(directory) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(directory, arcname=".")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def standin_archives(tmp_path_factory):
    base, stream = _build_movinet_standins(tmp_path_factory.mktemp("savedmodels"))
    return _tar_gz(base), _tar_gz(stream)


@pytest.fixture
def registry(standin_archives, server, tmp_path, monkeypatch):
    base, stream = standin_archives
    server.files["/movinet/a0/base"] = base
    server.files["/movinet/a0/stream"] = stream
    server.files["/labels.txt"] = "\n".join(COLOURS).encode() + b"\n"
    path = tmp_path / "models.toml"
    path.write_text(
        textwrap.dedent(
            f"""
            [defaults]
            predict = "toy-movinet"
            stream = "toy-movinet-stream"

            [models.toy-labels]
            kind = "labels"
            url = "{server.url('/labels.txt')}"
            classes = 3

            [models.toy-movinet]
            kind = "savedmodel"
            url = "{server.url('/movinet/a0/base')}?tf-hub-format=compressed"
            sha256 = "{sha256(base)}"
            labels = "toy-labels"
            classes = 3
            frames = 12
            size = 32
            fps = 5.0

            [models.toy-movinet-stream]
            kind = "savedmodel"
            url = "{server.url('/movinet/a0/stream')}?tf-hub-format=compressed"
            labels = "toy-labels"
            classes = 3
            frames = 12
            size = 32
            fps = 5.0
            stream = true
            """
        )
    )
    monkeypatch.setenv("VAREC_REGISTRY", str(path))
    yield server


def _solid_video(path, bgr):
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:] = bgr
    return write_video(path, [frame] * 20, fps=10)


def test_predict_downloads_and_uses_the_savedmodel(cli, registry, tmp_path):
    red = _solid_video(tmp_path / "red.avi", (0, 0, 230))
    blue = _solid_video(tmp_path / "blue.avi", (230, 0, 0))
    result = cli("predict", red, blue, "--model", "toy-movinet", "--json")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["predictions"][0]["label"] for r in records] == ["red", "blue"]
    assert records[0]["predictions"][0]["score"] > 0.9  # softmax over the logits
    assert abs(sum(p["score"] for p in records[0]["predictions"]) - 1.0) < 1e-4
    assert len(registry.requests_for("/movinet/a0/base")) == 1
    cli("predict", red, "--model", "toy-movinet", "--json")
    assert len(registry.requests_for("/movinet/a0/base")) == 1  # cached, verified, not fetched again


def test_default_model_is_fetched_on_first_use(cli, registry, tmp_path):
    green = _solid_video(tmp_path / "green.avi", (0, 230, 0))
    result = cli("predict", green, "--json", "--top-k", "1")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["predictions"][0]["label"] == "green"
    assert json.loads(result.stdout)["model"] == "toy-movinet"


def test_predict_names_a_savedmodel_folder_as_given_like_a_model_file(cli, registry, tmp_path):
    import shutil

    from varec_cli.weights.resolve import resolve_model_path

    red = _solid_video(tmp_path / "red.avi", (0, 0, 230))
    mine = tmp_path / "my-movinet"
    shutil.copytree(resolve_model_path("toy-movinet"), mine)
    result = cli("predict", red, "--model", mine, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == "my-movinet"  # not the name recorded inside it


def test_a_savedmodel_folder_whose_description_is_wrong_is_one_error_line(cli, registry, tmp_path):
    """varec-model.json is the user's to write for a SavedModel of their own: a wrong type in it is named."""
    import shutil

    from varec_cli.weights.resolve import resolve_model_path

    red = _solid_video(tmp_path / "red.avi", (0, 0, 230))
    mine = tmp_path / "my-movinet"
    shutil.copytree(resolve_model_path("toy-movinet"), mine)
    described = json.loads((mine / "varec-model.json").read_text())
    cases = {
        json.dumps(["r", "g", "b"]): "must be a JSON object",
        json.dumps({**described, "size": 32}): "size must be [height, width] in pixels, got 32",
        json.dumps({**described, "frames": "eight"}): "frames must be a whole number above 0, got 'eight'",
        json.dumps({**described, "fps": -5}): "fps must be a number above 0, got -5",
        json.dumps({**described, "labels": "red green blue"}): "labels must be a list of names",
        json.dumps({**described, "signature": {"input_range": [1, 0]}}): "signature.input_range must be",
        "{not json": "unreadable",
    }
    for text, expected in cases.items():
        (mine / "varec-model.json").write_text(text)
        for command in (("info", mine), ("predict", red, "--model", mine)):
            result = cli(*command)
            assert result.exit_code == 1 and result.stderr.count("\n") == 1, (text, result.output)
            assert result.stderr.startswith(f"error: {mine / 'varec-model.json'}: ") and expected in result.stderr


def test_stream_model_carries_states(registry, tmp_path):
    from varec_cli.models.classifier import open_classifier

    classifier = open_classifier(None, purpose="stream")
    session = classifier.start_stream()
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((32, 32, 3), np.uint8)
    blue[..., 2] = 255
    first = session.push(red)
    assert classifier.labels[int(np.argmax(first))] == "red"
    for _ in range(3):
        latest = session.push(blue)
    assert classifier.labels[int(np.argmax(latest))] == "blue"  # 3 blue vs 1 red seen so far
    assert latest[0] > 0.001  # the red frame is still remembered in the states
    session.reset()
    assert classifier.labels[int(np.argmax(session.push(red)))] == "red"


def test_stream_model_takes_frames_at_its_rate(registry):
    """At 5 fps, frames of a 25 fps source in between are answered without touching the states."""
    from varec_cli.models.classifier import open_classifier

    classifier = open_classifier("toy-movinet-stream", purpose="stream")
    session = classifier.start_stream(fps=25.0)
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((32, 32, 3), np.uint8)
    blue[..., 2] = 255
    session.push(red, timestamp=0.0)
    for i in range(1, 5):  # 0.04 .. 0.16 s: inside the first 0.2 s step, not fed to the model
        assert classifier.labels[int(np.argmax(session.push(blue, timestamp=i / 25)))] == "red"
    even = session.push(blue, timestamp=0.2)  # the model has now seen one red and one blue frame
    assert abs(even[0] - even[2]) < 1e-3
    later = session.push(blue, timestamp=0.4)  # one red, two blue
    assert classifier.labels[int(np.argmax(later))] == "blue" and later[0] > 0.01


def test_offline_uncached_model_fails_at_once(cli, registry, tmp_path, monkeypatch):
    monkeypatch.setenv("VAREC_OFFLINE", "1")
    red = _solid_video(tmp_path / "red.avi", (0, 0, 230))
    result = cli("predict", red, "--model", "toy-movinet")
    assert result.exit_code == 1 and "offline" in result.stderr.lower()
    # the one download that mends it: the model's (which brings its label list), not the labels' alone
    assert result.stderr.startswith("error: toy-movinet is not in the cache and VAREC_OFFLINE=1")
    assert "unset VAREC_OFFLINE to download it with its label list, or point VAREC_REGISTRY at a mirror or a local copy" in result.stderr
    assert "--model" not in result.stderr  # a SavedModel archive downloaded by hand is no model file
    assert registry.requests_for("/movinet/a0/base") == [] and registry.requests_for("/labels.txt") == []
    import os

    from varec_cli import paths

    assert not any(name.endswith(".lock") for _, _, names in os.walk(paths.cache_dir()) for name in names)
    # a cache that cannot even be made (VAREC_CACHE_DIR under a file): still the offline error, not the lock's
    (tmp_path / "a-file").write_bytes(b"")
    monkeypatch.setenv("VAREC_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    unusable = cli("predict", red, "--model", "toy-movinet")
    assert unusable.exit_code == 1 and unusable.stderr.startswith("error: toy-movinet is not in the cache and VAREC_OFFLINE=1")


def test_info_on_a_registry_name(cli, registry):
    result = cli("info", "toy-movinet", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["labels"] == COLOURS and data["frame_size"] == [32, 32] and data["fps"] == 5.0


def test_a_registry_entry_that_misdescribes_its_savedmodel_is_one_error_line(cli, registry, tmp_path, monkeypatch):
    """Wrong label count, a signature or a stream function the SavedModel lacks, no labels at all."""
    base_url = registry.url("/movinet/a0/base") + "?tf-hub-format=compressed"
    red = _solid_video(tmp_path / "red.avi", (0, 0, 230))
    cases = {
        'labels = ["r", "g"]': "the network has 3 outputs but 2 labels",
        'labels = ["r", "g", "b", "x", "y"]': "the network has 3 outputs but 5 labels",
        'labels = "toy-labels"\nsignature = { name = "serve" }': "no signature 'serve' (its signatures: serving_default)",
        'labels = "toy-labels"\nstream = true': "recorded as a stream model, but the SavedModel has no 'init_states'",
        "": "savedmodel entry without labels",
    }
    for number, (lines, expected) in enumerate(cases.items()):
        path = tmp_path / f"wrong-{number}.toml"
        path.write_text(
            f'[models.toy-labels]\nkind = "labels"\nurl = "{registry.url("/labels.txt")}"\n\n'
            f'[models.wrong]\nkind = "savedmodel"\nurl = "{base_url}"\nframes = 12\nsize = 32\n{lines}\n',
            encoding="utf-8",
        )
        monkeypatch.setenv("VAREC_REGISTRY", str(path))
        result = cli("predict", red, "--model", "wrong")
        assert result.exit_code == 1, (lines, result.output)
        *before, last = result.stderr.strip().splitlines()
        assert last.startswith("error: ") and expected in last, (lines, result.stderr)
        assert all(line.startswith("downloading wrong") for line in before), result.stderr  # no traceback
        cli("cache", "clear", "wrong")


def test_an_unreachable_label_list_is_reported_for_the_model_asked_for(cli, registry, tmp_path):
    del registry.files["/labels.txt"]
    red = _solid_video(tmp_path / "red.avi", (0, 0, 230))
    result = cli("predict", red, "--model", "toy-movinet")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: toy-movinet: cannot download toy-labels from "), result.stderr
    assert result.stderr.rstrip().endswith("or use a model of your own (--model PATH)")
    assert registry.requests_for("/movinet/a0/base") == []  # the model itself was not fetched for nothing


# --- stream and annotate through the CLI, with the registry's default SavedModels -----------------

RED, BLUE = (0, 0, 230), (230, 0, 0)  # BGR, as the video files hold them


def _colour_video(path, colours, fps):
    """One solid frame per entry of `colours` (BGR triples)."""
    frames = []
    for bgr in colours:
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:] = bgr
        frames.append(frame)
    return write_video(path, frames, fps=fps)


def _stream_lines(stdout: str) -> list[tuple[str, str, str]]:
    """`mm:ss.d  label  probability` lines as (time, label, probability) strings."""
    lines = [tuple(line.split("  ")) for line in stdout.splitlines()]
    assert all(len(line) == 3 for line in lines), stdout
    return lines


def test_stream_uses_the_default_stream_model_and_carries_its_states(cli, registry, tmp_path):
    """2 s of red, then 4 s of blue at 10 fps. The stand-in stream model answers the mean colour of
    every frame it was fed, at 5 fps: 10 red frames (0.0-1.8 s), then blue outweighs them with the
    11th blue one, at 2.0 + 10 x 0.2 = 4.0 s. A model whose states were lost would turn blue at 2.0 s."""
    video = _colour_video(tmp_path / "red-blue.avi", [RED] * 20 + [BLUE] * 40, fps=10)
    result = cli("stream", "--source", video, "--no-display", "--smooth", "1")
    assert result.exit_code == 0, result.output
    lines = [(time, label) for time, label, _ in _stream_lines(result.stdout)]
    assert lines == [("00:00.0", "red"), ("00:04.0", "blue")]
    assert result.stderr.startswith("downloading toy-movinet-stream")
    assert "60 captured, 60 processed" in result.stderr and "ended (end of the video)" in result.stderr
    assert len(registry.requests_for("/movinet/a0/stream")) == 1 and registry.requests_for("/movinet/a0/base") == []


def test_stream_feeds_the_model_frames_at_its_rate(cli, registry, tmp_path):
    """A 15 fps source of red, blue, blue, red, blue, blue, ...: at its 5 fps the model is fed frames
    0, 3, 6, ..., all red, and is sure of it. Fed every frame, it would see twice as much blue."""
    video = _colour_video(tmp_path / "flicker.avi", [RED, BLUE, BLUE] * 10, fps=15)
    result = cli("stream", "--source", video, "--model", "toy-movinet-stream", "--no-display")
    assert result.exit_code == 0, result.output
    assert _stream_lines(result.stdout) == [("00:00.0", "red", "1.00")]


def test_annotate_labels_each_stretch_with_the_default_model(cli, registry, tmp_path):
    """3 s of red, then 3 s of blue at 10 fps. The default window of a model that takes frames at a
    rate is frames / fps (12 / 5 = 2.4 s: 24 frames here), the stride half of it; the change shows up
    within a stride of where it happens."""
    from varec_cli.video.reader import count_frames

    video = _colour_video(tmp_path / "red-blue.avi", [RED] * 30 + [BLUE] * 30, fps=10)
    output = tmp_path / "labelled.avi"
    result = cli("annotate", video, "-o", output, "--timeline", "-")
    assert result.exit_code == 0, result.output
    segments = json.loads(result.stdout)
    assert [s["label"] for s in segments] == ["red", "blue"]
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == 6.0
    assert abs(segments[1]["start"] - 3.0) <= 1.2
    assert "windows of 24 frames every 12" in result.stderr
    assert "downloading toy-movinet (the default annotate model)" in result.stderr
    assert count_frames(output) == 60


def _build_per_frame_stream_standin(root):
    """A stream model without memory: logits = 10 x the mean RGB of the frame just fed (its one state
    passes through unchanged), so that what `--smooth` averages is all that ties frames together."""
    import tensorflow as tf

    class PerFrame(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([5], tf.int32)])
        def init_states(self, input_shape):
            return {"state_unused": tf.zeros([1, 1])}

        @tf.function(
            input_signature=[
                {
                    "image": tf.TensorSpec([None, None, None, None, 3], tf.float32),
                    "state_unused": tf.TensorSpec([None, 1], tf.float32),
                }
            ]
        )
        def __call__(self, inputs):
            return 10.0 * tf.reduce_mean(inputs["image"], axis=[1, 2, 3]), {"state_unused": inputs["state_unused"]}

    model = PerFrame()
    tf.saved_model.save(model, str(root / "per-frame"), signatures={"init_states": model.init_states})
    return root / "per-frame"


@pytest.fixture(scope="module")
def per_frame_archive(tmp_path_factory):
    return _tar_gz(_build_per_frame_stream_standin(tmp_path_factory.mktemp("per-frame")))


@pytest.fixture
def per_frame_model(registry, per_frame_archive):
    """`toy-per-frame-stream` added to the registry: a stream model that answers each frame alone."""
    import os
    from pathlib import Path

    registry.files["/per-frame/stream"] = per_frame_archive
    path = Path(os.environ["VAREC_REGISTRY"])
    path.write_text(
        path.read_text()
        + textwrap.dedent(
            f"""
            [models.toy-per-frame-stream]
            kind = "savedmodel"
            url = "{registry.url('/per-frame/stream')}?tf-hub-format=compressed"
            labels = "toy-labels"
            classes = 3
            frames = 12
            size = 32
            stream = true
            """
        )
    )
    return "toy-per-frame-stream"


def test_stream_smooth_averages_the_last_n_predictions(cli, per_frame_model, tmp_path):
    """At 5 fps: 2 s of red, a 2-frame blue flash, 2 s of red, then blue. Each frame alone is its
    colour with probability ~1. --smooth 1 follows every frame; --smooth 5 averages the last 5: the
    flash (2 of 5) never wins, and the lasting blue wins at its 3rd frame (4.4 + 0.4 s), with 3/5 = 0.60."""
    colours = [RED] * 10 + [BLUE] * 2 + [RED] * 10 + [BLUE] * 10  # frame i at i / 5 s
    video = _colour_video(tmp_path / "flash.avi", colours, fps=5)

    def lines(*smooth):
        result = cli("stream", "--source", video, "--model", per_frame_model, "--no-display", *smooth)
        assert result.exit_code == 0, result.output
        return _stream_lines(result.stdout)

    assert lines("--smooth", "1") == [
        ("00:00.0", "red", "1.00"), ("00:02.0", "blue", "1.00"), ("00:02.4", "red", "1.00"), ("00:04.4", "blue", "1.00")
    ]
    assert lines("--smooth", "5") == [("00:00.0", "red", "1.00"), ("00:04.8", "blue", "0.60")]
    # The default, 3: a flash of 2 frames shows, a frame late and ending a frame late, at 2/3.
    assert lines() == [
        ("00:00.0", "red", "1.00"), ("00:02.2", "blue", "0.67"), ("00:02.6", "red", "0.67"), ("00:04.6", "blue", "0.67")
    ]
