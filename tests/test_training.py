"""`varec train` end to end on tiny generated UCF101-layout datasets (scratch CNN, CPU-sized).

The classes differ only by the ORDER of their frames (a square moving left or right), so a model
that beats chance must have read the sequence; the same clips with shuffled frames must not.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from synthetic import write_ucf101_motion_dataset, write_video

from varec_cli.models.modelfile import read_metadata
from varec_cli.training import loader

pytestmark = pytest.mark.slow

# Small enough for a loaded 2-core CPU, large enough that the test split says something:
# 2 classes x (6 train + 4 test groups) x 4 clips = 48 train (val taken by group) + 32 test videos.
DATA = dict(train_groups=6, test_groups=4, clips=4, count=10, size=32)
SCRATCH = ["--backbone", "scratch", "--rnn", "gru", "--frames", "8", "--size", "32", "--units", "32",
           "--batch-size", "8", "--val-fraction", "0.2"]


def _train(cli, root: Path, output: Path, *extra):
    result = cli("train", "--dataset", root, "--output", output, *SCRATCH, *extra)
    assert result.exit_code == 0, result.output
    return result


def _top1(cli, root: Path, model: Path) -> dict:
    result = cli("evaluate", "--dataset", root, "--model", model, "--json")
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return record


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A scratch CNN + GRU trained on frame-ordered motion clips (shared by the tests below)."""
    from typer.testing import CliRunner

    from varec_cli.cli import app

    base = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAREC_CACHE_DIR", str(base / "cache"))
        mp.setenv("VAREC_DATA_DIR", str(base / "data"))
        root = write_ucf101_motion_dataset(base / "ordered", **DATA)
        model = base / "ordered.keras"
        result = CliRunner().invoke(
            app, [str(a) for a in ("train", "--dataset", root, "--output", model, *SCRATCH, "--epochs", "6")]
        )
    assert result.exit_code == 0, result.output
    return {"root": root, "model": model, "stderr": result.stderr}


def test_scratch_gru_learns_frame_order_and_shuffled_frames_do_not(cli, trained, tmp_path):
    ordered = _top1(cli, trained["root"], trained["model"])
    assert ordered["videos"] == 32 and ordered["skipped"] == 0
    assert ordered["top1"] >= 0.8, ordered

    shuffled_root = write_ucf101_motion_dataset(tmp_path / "shuffled", shuffle_frames=True, **DATA)
    _train(cli, shuffled_root, tmp_path / "shuffled.keras", "--epochs", "6")
    shuffled = _top1(cli, shuffled_root, tmp_path / "shuffled.keras")
    assert shuffled["videos"] == 32
    assert shuffled["top1"] <= 0.7, shuffled


def test_training_says_where_and_how_much_and_writes_history(trained):
    stderr = trained["stderr"]
    assert "training on CPU" in stderr
    assert "clips: train 40, val 8 (by group: whole _gNN_ groups per class), test 32" in stderr
    assert "epoch 6/6" in stderr
    model = trained["model"]
    rows = list(csv.DictReader(open(model.with_name("ordered.history.csv"))))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= set(rows[0])
    png = model.with_name("ordered.history.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not model.with_name("ordered.checkpoints").exists()  # removed once the model is saved


def test_provenance_in_model_file_and_varec_info(cli, trained):
    meta = read_metadata(trained["model"])
    assert meta.labels == ["MoveLeft", "MoveRight"] and meta.frames == 8 and meta.size == (32, 32)
    assert meta.backbone == "scratch" and meta.rnn == "gru"
    assert abs(meta.clip_seconds - 10 / 12.0) < 0.01  # mean duration of the training videos
    p = meta.provenance
    assert p["dataset"] == "ordered" and p["layout"] == "ucf101" and p["split"] == 1
    assert p["clips"] == {"train": 40, "val": 8, "test": 32}
    assert p["skipped_videos"] == {"train": 0, "val": 0}
    assert p["epochs"] == 6 and 1 <= p["best_epoch"] <= 6 and p["val_split"].startswith("by group")
    assert 0 <= p["val_accuracy"] <= 1 and "train_accuracy" in p and p["device"].startswith("CPU")
    assert p["varec_version"] and p["date"] and p["feature_cache"] is False
    assert p["val_fraction"] == 0.2 and p["seed"] == 0 and p["dataset_root"] == str(Path(trained["root"]).resolve())

    shown = cli("info", trained["model"])
    assert shown.exit_code == 0, shown.output
    for text in ("trained: dataset", "ordered", "trained: val split", "by group", "trained: epochs",
                 "trained: val accuracy", "trained: device"):
        assert text in shown.stdout, shown.stdout
    rows = {line.split("  ")[0].strip(): line for line in shown.stdout.splitlines() if line.startswith("trained: ")}
    assert rows["trained: init"].split()[-1] == "-" and rows["trained: feature cache"].split()[-1] == "no"
    assert rows["trained: lr"].split()[-1] == "0.001"  # as given, not None / False / 0.0010


def test_evaluating_the_val_subset_with_other_split_options_warns(cli, trained, tmp_path):
    from synthetic import model_with_metadata

    def val_warnings(model, *extra):
        result = cli("evaluate", "--dataset", trained["root"], "--model", model, "--subset", "val", *extra)
        assert result.exit_code == 0, result.output
        return [line for line in result.stderr.splitlines() if line.startswith("warning:")]

    assert "was trained on this dataset with --val-fraction 0.2: give the same" in val_warnings(trained["model"])[0]
    assert val_warnings(trained["model"], "--val-fraction", "0.2") == []
    provenance = read_metadata(trained["model"]).provenance
    assert provenance["val_split_scheme"] == "per class, keyed by class name"
    older = model_with_metadata(trained["model"], tmp_path / "older.keras",
                                provenance={k: v for k, v in provenance.items() if k != "val_split_scheme"})
    assert "trained by an earlier varec, which drew validation splits another way" in val_warnings(
        older, "--val-fraction", "0.2")[0]
    all_of_it = model_with_metadata(trained["model"], tmp_path / "all.keras", provenance={**provenance, "val_fraction": 0})
    assert "trained on all of this dataset's training part (--val-fraction 0)" in val_warnings(all_of_it)[0]


def test_evaluating_the_val_subset_with_another_seed_warns(cli, trained):
    """The model was trained with --val-fraction 0.2 --seed 0: another --seed draws another validation
    split, one that holds clips it trained on. The warning names what to give; the same seed, none."""
    def warnings(*options):
        result = cli("evaluate", "--dataset", trained["root"], "--model", trained["model"], "--subset", "val", *options)
        assert result.exit_code == 0, result.output
        assert "top-1" in result.stdout  # scored all the same
        return [line for line in result.stderr.splitlines() if line.startswith("warning:")]

    (warning,) = warnings("--val-fraction", "0.2", "--seed", "1")
    assert f"{trained['model'].name} was trained on this dataset with --seed 0: give the same" in warning, warning
    assert "--val-fraction" not in warning
    (both,) = warnings("--seed", "7")
    assert "with --val-fraction 0.2 --seed 0: give the same" in both, both
    assert warnings("--val-fraction", "0.2", "--seed", "0") == []


def test_a_large_seed_is_named_as_it_can_be_given_back(cli, trained, tmp_path):
    from synthetic import model_with_metadata

    provenance = read_metadata(trained["model"]).provenance
    model = model_with_metadata(trained["model"], tmp_path / "seeded.keras", provenance={**provenance, "seed": 123456789})
    result = cli("evaluate", "--dataset", trained["root"], "--model", model, "--subset", "val", "--val-fraction", "0.2")
    assert result.exit_code == 0, result.output
    assert "was trained on this dataset with --seed 123456789: give the same" in result.stderr, result.stderr


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_keras_cannot_take_is_a_usage_error(cli, trained, tmp_path, seed):
    for command in ("train", "evaluate"):
        args = ["--output", tmp_path / "x.keras"] if command == "train" else ["--model", trained["model"]]
        result = cli(command, "--dataset", trained["root"], *args, "--seed", seed)
        assert result.exit_code == 2 and "--seed" in result.stderr and "Traceback" not in result.output, command


def test_a_val_part_none_of_whose_videos_decodes_is_no_validation(cli, tmp_path):
    """Every val video fails: each is skipped and said, and the training loss drives early stopping
    (Keras warned that val_loss was missing, and its callbacks did nothing)."""
    from synthetic import moving_square_frames, write_video

    root = tmp_path / "badval"
    for name, direction in (("left", "left"), ("right", "right")):
        (root / "train" / name).mkdir(parents=True)
        for i in range(4):
            write_video(root / "train" / name / f"c{i}.avi", moving_square_frames(direction, 10, 32, seed=i), fps=12)
        (root / "val" / name).mkdir(parents=True)
        (root / "val" / name / "bad.avi").write_bytes(b"not a video" * 50)
    output = tmp_path / "badval.keras"
    import warnings

    with warnings.catch_warnings(record=True) as caught:  # what a terminal shows under Keras' own lines
        warnings.simplefilter("always")
        result = cli("train", "--dataset", root, "--output", output, *SCRATCH, "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert not [w for w in caught if "val_loss" in str(w.message)], [str(w.message) for w in caught]
    assert "val_loss" not in result.stderr, result.stderr
    assert result.stderr.count("skipped") >= 2 and "bad.avi" in result.stderr
    assert read_metadata(output).provenance["skipped_videos"]["val"] == 2


def test_init_on_the_same_classes_spelt_in_lower_case_continues_training(cli, trained, tmp_path):
    """Folders named like the model's classes but in lower case are those classes, as evaluate takes
    them: training continues with the model's own output layer (a new one was trained before)."""
    import shutil

    labels = read_metadata(trained["model"]).labels
    root = tmp_path / "lower"
    for label in labels:
        shutil.copytree(trained["root"] / "UCF-101" / label, root / label.lower())
    output = tmp_path / "lower.keras"
    result = cli("train", "--dataset", root, "--init", trained["model"], "--epochs", "1", "--batch-size", "8",
                 "--output", output)
    assert result.exit_code == 0, result.output
    assert "output layer" not in result.stderr, result.stderr
    assert read_metadata(output).labels == labels


def test_init_new_classes_uses_the_feature_cache_and_a_second_run_decodes_nothing(cli, trained, tmp_path):
    """--init a trained model on a dataset with other class names: a new output layer over the kept
    GRU; the frozen encoder's features are cached, so the second run decodes no video."""
    root = write_ucf101_motion_dataset(
        tmp_path / "renamed", {"GoLeft": "left", "GoRight": "right"}, seed=5, train_groups=4, test_groups=1,
        clips=3, count=10, size=32,
    )
    bad = root / "UCF-101" / "GoLeft" / "v_GoLeft_g05_c03.avi"
    bad.write_bytes(b"not a video at all")  # a train video that fails: skipped, counted, never fatal
    common = ["--dataset", root, "--init", trained["model"], "--epochs", "3", "--batch-size", "8"]

    before = loader.DECODED.count
    first = cli("train", *common, "--output", tmp_path / "first.keras")
    assert first.exit_code == 0, first.output
    assert loader.DECODED.count - before == 24  # every train + val video once
    assert "new 2-class output layer" in first.stderr
    # a scratch CNN from --init stays frozen by default, unlike a new one: said, with the way to train it
    assert "its scratch CNN is kept frozen (--fine-tune-layers 0); give --fine-tune-layers K" in first.stderr
    assert "v_GoLeft_g05_c03.avi" in first.stderr and "warning" in first.stderr
    assert "0 clips from cache, 23 decoded and encoded, 1 could not be decoded" in first.stderr

    units = cli("train", *common, "--units", "5", "--output", tmp_path / "units.keras")
    assert units.exit_code == 1 and "--units 5 differs from the --init model's GRU" in units.stderr

    before = loader.DECODED.count
    second = cli("train", *common, "--output", tmp_path / "second.keras")
    assert second.exit_code == 0, second.output
    assert loader.DECODED.count == before  # features (and the known-bad video) came from the cache
    assert "23 clips from cache, 0 decoded and encoded, 1 could not be decoded" in second.stderr

    meta = read_metadata(tmp_path / "second.keras")
    assert meta.labels == ["GoLeft", "GoRight"] and meta.backbone == "scratch" and meta.frames == 8
    p = meta.provenance
    assert p["feature_cache"] is True and p["init"] == str(trained["model"])
    assert p["skipped_videos"]["train"] + p["skipped_videos"]["val"] == 1
    assert p["clips"]["train"] + p["clips"]["val"] == 23
    record = _top1(cli, root, tmp_path / "second.keras")
    assert record["videos"] == 6 and record["top1"] >= 0.5
    # The head trained alone was compiled; its optimizer state is not the model's business.
    assert _stored_values(tmp_path / "second.keras") == _stored_values(trained["model"])


def test_a_long_cpu_run_tunes_the_head_and_its_model_file_stays_plain(cli, trained, tmp_path, monkeypatch):
    """A run planned long enough (tf_fit.TUNED_HEAD_MIN_STEPS) trains the head alone with its GRU unrolled
    and compiled with XLA, and says so; its model file keeps the plain GRU (cuDNN on a GPU)."""
    import zipfile

    from varec_cli.training import tf_fit

    root = write_ucf101_motion_dataset(
        tmp_path / "data", {"GoLeft": "left", "GoRight": "right"}, seed=7, train_groups=4, test_groups=1, clips=3,
        count=10, size=32,
    )
    trained_as = []
    real_fit = tf_fit.fit

    def fit_watched(model, *args, **kwargs):  # the real fit, noting how the model it trains is set up
        trained_as.append((model.jit_compile, model.get_layer("gru").unroll))
        return real_fit(model, *args, **kwargs)

    monkeypatch.setattr(tf_fit, "fit", fit_watched)
    common = ["--dataset", root, "--init", trained["model"], "--epochs", "3", "--batch-size", "8"]
    plain = cli("train", *common, "--output", tmp_path / "plain.keras")
    assert plain.exit_code == 0, plain.output
    assert "for the CPU" not in plain.stderr  # 3 epochs of 3 steps: not worth a longer first epoch
    monkeypatch.setattr(tf_fit, "TUNED_HEAD_MIN_STEPS", 9)
    tuned = cli("train", *common, "--output", tmp_path / "tuned.keras")
    assert tuned.exit_code == 0, tuned.output
    assert "GRU head unrolled and compiled with XLA for the CPU (9 steps planned" in tuned.stderr
    assert trained_as == [(False, False), (True, True)]
    assert _top1(cli, root, tmp_path / "tuned.keras")["videos"] == 6
    for name in ("plain.keras", "tuned.keras"):
        with zipfile.ZipFile(tmp_path / name) as archive:
            config = archive.read("config.json").decode()
        assert '"unroll": false' in config and '"unroll": true' not in config


@pytest.mark.parametrize("rnn", ["gru", "lstm", "bilstm"])
def test_a_head_tuned_for_the_cpu_learns_what_the_plain_head_learns(rnn, monkeypatch):
    """Unrolling and XLA change how the head's steps run, not what they compute: from the same start,
    the same batches give the same losses (no dropout here: XLA draws other random numbers)."""
    from varec_cli.models.architecture import build_sequence_head
    from varec_cli.runtime import import_keras
    from varec_cli.training import tf_fit

    keras = import_keras()
    monkeypatch.setattr(tf_fit, "TUNED_HEAD_MIN_STEPS", 0)
    features = np.random.default_rng(0).random((24, 6, 16), np.float32).astype(np.float16)
    labels = np.arange(24) % 3
    placement = tf_fit.make_strategy("none")

    def losses(tuned: bool) -> np.ndarray:
        keras.utils.set_random_seed(0)
        head = build_sequence_head(6, 16, 3, rnn=rnn, units=8, dropout=0.0)
        jit_compile, unrolled = tf_fit.tune_head_for_cpu(head, 6, placement, 9) if tuned else ("auto", False)
        head.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                     jit_compile=jit_compile)
        layer = head.layers[1]
        assert (layer.forward_layer if rnn == "bilstm" else layer).unroll is unrolled is tuned
        assert head.jit_compile is (tuned and rnn == "gru")  # XLA slows an LSTM
        data = tf_fit.features_dataset(features, labels, 8, shuffle=True, seed=0)
        return np.array(head.fit(data, epochs=4, steps_per_epoch=3, shuffle=False, verbose=0).history["loss"])

    plain, tuned = losses(False), losses(True)
    assert plain[-1] < plain[0]
    np.testing.assert_allclose(tuned, plain, rtol=1e-4)


def test_imagenet_weights_offline_or_unloadable_fail_in_one_line_with_the_ways_out(cli, tmp_path, monkeypatch):
    root = write_ucf101_motion_dataset(tmp_path / "data", train_groups=1, test_groups=1, clips=2, count=6, size=32)
    common = ["train", "--dataset", root, "--frames", "4", "--size", "32", "--epochs", "1"]
    monkeypatch.setenv("VAREC_OFFLINE", "1")
    offline = cli(*common, "--output", tmp_path / "offline.keras")
    assert offline.exit_code == 1
    (line,) = offline.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: the ImageNet weights for backbone mobilenet_v2 are not cached"), offline.stderr
    for way_out in ("varec download backbone-mobilenet_v2", "VAREC_REGISTRY", "--backbone-weights PATH",
                    "--backbone scratch"):
        assert way_out in line

    not_weights = tmp_path / "history.csv"
    not_weights.write_text("epoch,loss\n1,0.5\n")
    unloadable = cli(*common, "--backbone-weights", not_weights, "--output", tmp_path / "w.keras")
    assert unloadable.exit_code == 1
    line = unloadable.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {not_weights}: not mobilenet_v2 no-top weights Keras can load"), line
    assert line.endswith(" ...)")  # Keras' long message shortened at a word, and said so


def _stored_values(model_file: Path) -> int:
    """How many numbers a .keras file stores (weights, and optimizer state if any was saved)."""
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(model_file) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as h5:
        sizes = []
        h5.visititems(lambda name, item: sizes.append(item.size) if isinstance(item, h5py.Dataset) else None)
    return sum(sizes)


def test_pretrained_backbone_gets_imagenet_weights_from_the_weights_cache(cli, trained, tmp_path, monkeypatch):
    """The default --backbone-weights imagenet goes through the verified weights cache (here a local
    registry entry standing in for the Keras Applications file). The backbone is frozen, features are
    cached, the RNN head alone is trained; TensorBoard scalars are written."""
    import hashlib

    from varec_cli.models.backbones import build_backbone

    weights = tmp_path / "mnv2.weights.h5"
    build_backbone("mobilenet_v2", 32).save_weights(weights)
    registry = tmp_path / "registry.toml"
    registry.write_text(
        "[models.backbone-mobilenet_v2]\n"
        f'url = "{weights.as_uri()}"\n'
        f'sha256 = "{hashlib.sha256(weights.read_bytes()).hexdigest()}"\n'
        f"bytes = {weights.stat().st_size}\n"
    )
    monkeypatch.setenv("VAREC_REGISTRY", str(registry))
    output = tmp_path / "mnv2.keras"
    result = cli("train", "--dataset", trained["root"], "--output", output, "--backbone", "mobilenet_v2",
                 "--size", "32", "--frames", "4", "--rnn", "lstm", "--units", "8", "--epochs", "2",
                 "--tensorboard", tmp_path / "tb")
    assert result.exit_code == 0, result.output
    assert "0 clips from cache, 48 decoded" in result.stderr
    meta = read_metadata(output)
    assert meta.backbone == "mobilenet_v2" and meta.preprocessing == "symmetric" and meta.feature_dim == 1280
    p = meta.provenance
    assert p["backbone_weights"].startswith("imagenet (") and p["feature_cache"] is True
    assert p["precision"] == "float32" and p["epochs"] == 2
    assert _scalar_tags(tmp_path / "tb" / "train") >= {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"}
    assert _scalar_tags(tmp_path / "tb" / "validation") >= {"epoch_loss", "epoch_accuracy"}

    # The same weights from a file give the same encoder, hence the same cached features.
    again = cli("train", "--dataset", trained["root"], "--output", tmp_path / "file.keras", "--backbone",
                "mobilenet_v2", "--backbone-weights", weights, "--size", "32", "--frames", "4", "--rnn", "gru",
                "--units", "8", "--epochs", "1")
    assert again.exit_code == 0, again.output
    assert "48 clips from cache, 0 decoded" in again.stderr
    assert read_metadata(tmp_path / "file.keras").provenance["backbone_weights"] == "file mnv2.weights.h5"

    # Files that are not these weights: one line, no traceback.
    import h5py

    not_hdf5 = tmp_path / "clip.h5"
    not_hdf5.write_bytes(b"RIFF....AVI LIST")
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    for wrong in (not_hdf5, tmp_path / "empty.h5"):
        bad = cli("train", "--dataset", trained["root"], "--output", tmp_path / "bad.keras", "--backbone",
                  "mobilenet_v2", "--backbone-weights", wrong, "--size", "32", "--frames", "4", "--epochs", "1")
        assert bad.exit_code == 1, bad.output
        last = bad.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: {wrong}: not mobilenet_v2 no-top weights"), bad.stderr
        assert "Traceback" not in bad.stderr and not (tmp_path / "bad.keras").exists()


@pytest.mark.parametrize("backbone", ["scratch", "mobilenet_v2"])
def test_cached_features_are_the_encoder_s_own_for_any_batch(backbone):
    """varec train encodes frames for its feature cache through a compiled call with the encoder's
    weights folded in (batch normalisations into convolutions): its features must be the ones the
    encoder itself gives, whatever the batch size (the last batch of a run is smaller)."""
    from varec_cli.models.architecture import build_model, split_model

    encoder, _ = split_model(build_model(3, backbone=backbone, frames=4, size=32, units=8))
    encode = loader.frame_encoder_function(encoder)
    rng = np.random.default_rng(3)
    for batch in (8, 3, 1):
        frames = rng.integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8)
        got = encode(frames)
        assert got.shape == (batch, int(encoder.output_shape[-1])) and got.dtype == np.float32
        np.testing.assert_allclose(got, encoder.predict_on_batch(frames), rtol=1e-4, atol=1e-5)


def test_fine_tune_layers_trains_the_backbones_last_layers_end_to_end(cli, tmp_path):
    """--fine-tune-layers K: the whole network is trained on decoded clips (no feature cache), and of
    the backbone only its last K weighted layers change. The control, the same run with K = 0: the
    backbone stays as initialised (same --seed, same start) and the head learns on cached features.
    MobileNetV2 with random weights (--backbone-weights none: nothing to fetch) at 32 px, 4 frames."""
    import keras

    from varec_cli.models.architecture import split_model
    from varec_cli.models.modelfile import load_model

    root = write_ucf101_motion_dataset(tmp_path / "data", train_groups=2, test_groups=1, clips=2, count=8, size=32)
    common = ["train", "--dataset", root, "--backbone", "mobilenet_v2", "--backbone-weights", "none", "--frames",
              "4", "--size", "32", "--units", "8", "--epochs", "1", "--batch-size", "4", "--val-fraction", "0.5"]
    tuned = cli(*common, "--fine-tune-layers", "3", "--output", tmp_path / "tuned.keras")
    assert tuned.exit_code == 0, tuned.output
    assert "feature cache" not in tuned.stderr and "saved " in tuned.stderr
    frozen = cli(*common, "--output", tmp_path / "frozen.keras")
    assert frozen.exit_code == 0, frozen.output
    assert "feature cache: 0 clips from cache, 8 decoded and encoded" in frozen.stderr

    shown = cli("info", tmp_path / "tuned.keras")
    assert shown.exit_code == 0, shown.output
    rows = {line.split("  ")[0]: line.split()[-1] for line in shown.stdout.splitlines() if line.startswith("trained: ")}
    assert rows["trained: fine tune layers"] == "3" and rows["trained: feature cache"] == "no"
    assert read_metadata(tmp_path / "frozen.keras").provenance["feature_cache"] is True  # the control's

    def weighted_backbone_layers(path):
        encoder, _ = split_model(load_model(path)[0])
        (cnn,) = [layer for layer in encoder.layers if isinstance(layer, keras.Model)]
        return [layer for layer in cnn.layers if layer.weights]

    pairs = list(zip(weighted_backbone_layers(tmp_path / "tuned.keras"),
                     weighted_backbone_layers(tmp_path / "frozen.keras")))
    changed = [index for index, (a, b) in enumerate(pairs)
               if any(not np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))]
    assert changed == [len(pairs) - 3, len(pairs) - 2, len(pairs) - 1], [pairs[i][0].name for i in changed]


def _scalar_tags(directory: Path) -> set[str]:
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    tags = set()
    for events in directory.glob("*tfevents*"):
        for record in tf.data.TFRecordDataset(str(events)):
            tags |= {value.tag for value in event_pb2.Event.FromString(record.numpy()).summary.value}
    return tags


def test_init_refuses_a_different_shape(cli, trained, tmp_path):
    result = cli("train", "--dataset", trained["root"], "--init", trained["model"], "--frames", "12",
                 "--output", tmp_path / "x.keras")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --frames 12 differs from the --init model's frames (8)")


def test_unfinished_run_is_not_overwritten_without_resume(cli, trained, tmp_path):
    from varec_cli.training.tf_fit import ResumeState

    output = tmp_path / "m.keras"
    checkpoints = tmp_path / "m.checkpoints"
    checkpoints.mkdir()
    ResumeState(fingerprint={}, epoch=3).save(checkpoints)
    result = cli("train", "--dataset", trained["root"], "--output", output, *SCRATCH)
    assert result.exit_code == 1 and "add --resume" in result.stderr
    result = cli("train", "--dataset", trained["root"], "--output", output, *SCRATCH, "--resume")
    assert result.exit_code == 1 and "different settings" in result.stderr


def test_resume_of_a_finished_model_refuses_instead_of_replacing_it(cli, trained, tmp_path):
    finished = tmp_path / "finished.keras"
    finished.write_bytes(Path(trained["model"]).read_bytes())
    result = cli("train", "--dataset", trained["root"], "--output", finished, *SCRATCH, "--resume")
    assert result.exit_code == 1 and result.stderr.startswith("error: --resume: no checkpoint")
    assert f"--init {finished}" in result.stderr
    assert finished.read_bytes() == Path(trained["model"]).read_bytes()


def test_an_output_that_cannot_be_written_fails_before_any_work(cli, trained, tmp_path):
    folder = tmp_path / "folder.keras"
    folder.mkdir()
    result = cli("train", "--dataset", trained["root"], "--output", folder, *SCRATCH)
    assert result.exit_code == 1 and result.stderr == f"error: {folder}: is a folder; -o names the model file to write, e.g. {folder / 'model.keras'}\n"
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = cli("train", "--dataset", trained["root"], "--output", blocker / "m.keras", *SCRATCH)
    assert result.exit_code == 1 and f"{blocker} is not a folder" in result.stderr
    assert "decod" not in result.stderr and "epoch" not in result.stderr  # nothing was done first


def test_a_class_whose_videos_all_fail_to_decode_is_named(cli, trained, tmp_path):
    """Its output stays in the model, never learned: both training paths say which class it is."""
    from synthetic import write_motion_video

    root = tmp_path / "broken-class"
    (root / "left").mkdir(parents=True)
    (root / "right").mkdir()
    for i in range(8):
        write_motion_video(root / "left" / f"left_{i}.avi", "left", seed=i)
        (root / "right" / f"right_{i}.avi").write_text("not a video")
    warning = "class 'right': none of its training videos could be decoded"
    decoded_each_epoch = cli("train", "--dataset", root, "--output", tmp_path / "a.keras", *SCRATCH, "--epochs", "1")
    assert decoded_each_epoch.exit_code == 0, decoded_each_epoch.output
    assert warning in decoded_each_epoch.stderr and "'left'" not in decoded_each_epoch.stderr
    assert "warning: skipped 8 videos that could not be decoded" in decoded_each_epoch.stderr
    cached = cli("train", "--dataset", root, "--output", tmp_path / "b.keras", "--init", trained["model"],
                 "--epochs", "1", "--batch-size", "8")
    assert cached.exit_code == 0, cached.output
    assert "feature cache" in cached.stderr and warning in cached.stderr


def test_a_class_without_training_videos_is_named_as_such(cli, tmp_path):
    root = write_ucf101_motion_dataset(tmp_path / "extra", **{**DATA, "train_groups": 3, "test_groups": 1, "clips": 2})
    with open(root / "ucfTrainTestlist" / "classInd.txt", "a") as fh:
        fh.write("3 NeverFilmed\n")
    (root / "UCF-101" / "NeverFilmed").mkdir()
    result = cli("train", "--dataset", root, "--output", tmp_path / "x.keras", *SCRATCH, "--epochs", "1")
    assert result.exit_code == 0, result.output
    assert "class 'NeverFilmed': it has no training videos, so the model never learns it" in result.stderr
    assert "'MoveLeft'" not in result.stderr


def test_no_decodable_training_video_is_an_error_and_saves_nothing(cli, tmp_path):
    root = tmp_path / "undecodable"
    for name in ("left", "right"):
        (root / name).mkdir(parents=True)
        for i in range(3):
            (root / name / f"{name}_{i}.avi").write_bytes(os.urandom(3000))
    output = tmp_path / "none.keras"
    result = cli("train", "--dataset", root, "--output", output, *SCRATCH, "--epochs", "2")
    assert result.exit_code == 1 and not output.exists()
    assert result.stderr.rstrip().splitlines()[-1] == "error: no training video could be decoded"
    assert "Warning" not in result.stderr  # Keras' own complaints about the empty epoch never reach the user


def test_a_run_whose_loss_is_never_a_number_saves_nothing_and_says_why(cli, trained, tmp_path):
    # fine-tuning a model whose weights already overflowed: every epoch's loss is NaN
    broken = _with_nan_weights(trained["model"], tmp_path / "broken.keras")
    output = tmp_path / "nan.keras"
    result = cli("train", "--dataset", trained["root"], "--output", output, "--init", broken, "--epochs", "3",
                 "--batch-size", "8")
    assert result.exit_code == 1 and not output.exists()
    assert "epoch 2/" not in result.stderr  # it stopped at the first epoch that diverged
    last = result.stderr.rstrip().splitlines()[-1]
    assert last.startswith("error: training diverged: the loss was not a number from epoch 1 on") and "--lr" in last
    from varec_cli.training.run import checkpoint_dir

    assert "checkpoints" not in last and not checkpoint_dir(output).exists()  # NaN weights are nothing to resume
    # so the retry (with sound weights, or a lower --lr) is not sent to --resume them
    retry = cli("train", "--dataset", trained["root"], "--output", output, "--init", trained["model"], "--epochs", "1",
                "--batch-size", "8")
    assert retry.exit_code == 0 and output.exists(), retry.output


def _with_nan_weights(model: Path, path: Path) -> Path:
    """A copy of a model file whose first weight array is NaN (what a diverged run would have saved)."""
    import zipfile

    import h5py

    with zipfile.ZipFile(model) as source:
        members = {item.filename: source.read(item) for item in source.infolist()}
    weights = path.with_suffix(".weights.h5")
    weights.write_bytes(members["model.weights.h5"])
    with h5py.File(weights, "r+") as h5:
        arrays = []
        h5.visititems(lambda name, item: arrays.append(item) if isinstance(item, h5py.Dataset) else None)
        arrays[0][...] = np.nan
    members["model.weights.h5"] = weights.read_bytes()
    with zipfile.ZipFile(path, "w") as copy:
        for name, data in members.items():
            copy.writestr(name, data)
    return path


def test_evaluating_a_model_with_broken_weights_is_one_line(cli, trained, tmp_path):
    broken = _with_nan_weights(trained["model"], tmp_path / "broken.keras")
    result = cli("evaluate", "--dataset", trained["root"], "--model", broken)
    assert result.exit_code == 1
    assert result.stderr.rstrip().splitlines()[-1] == (
        "error: broken.keras: the model's output is not a number (NaN or infinity); its weights are broken"
    )


def test_evaluating_another_official_split_than_the_model_trained_on_warns(cli, trained, tmp_path):
    from synthetic import model_with_metadata

    provenance = read_metadata(trained["model"]).provenance
    assert provenance["split"] == 1
    other = model_with_metadata(trained["model"], tmp_path / "split2.keras", provenance={**provenance, "split": 2})
    for model, warned in ((trained["model"], False), (other, True)):
        result = cli("evaluate", "--dataset", trained["root"], "--model", model)
        assert result.exit_code == 0, result.output
        assert ("was trained on split 2 of this dataset: split 1 holds clips it trained on" in result.stderr) == warned


def test_a_run_killed_before_its_state_is_written_keeps_the_best_weights_the_state_names(cli, trained, tmp_path, monkeypatch):
    from varec_cli.training.tf_fit import ResumeState

    save = ResumeState.save

    def save_then_die_at_epoch_3(self, directory):
        if self.epoch == 3:  # epoch 3's weights are written (and, without validation, are the best)
            raise KeyboardInterrupt
        save(self, directory)

    monkeypatch.setattr(ResumeState, "save", save_then_die_at_epoch_3)
    output = tmp_path / "killed.keras"
    options = [*SCRATCH, "--val-fraction", "0"]
    killed = cli("train", "--dataset", trained["root"], "--output", output, *options, "--epochs", "4")
    assert killed.exit_code == 130
    ckpt = tmp_path / "killed.checkpoints"
    state = json.loads((ckpt / "state.json").read_text())
    assert state["epoch"] == 2 and state["best_epoch"] == 2
    assert (ckpt / state["best_weights"]).read_bytes() == (ckpt / state["weights"]).read_bytes()  # epoch 2's
    monkeypatch.setattr(ResumeState, "save", save)
    fewer = cli("train", "--dataset", trained["root"], "--output", output, *options, "--epochs", "1", "--resume")
    assert fewer.exit_code == 1 and "is at epoch 2, past --epochs 1; give --epochs 2 or more" in fewer.stderr
    resumed = cli("train", "--dataset", trained["root"], "--output", output, *options, "--epochs", "4", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert read_metadata(output).provenance["best_epoch"] == 4


def test_a_damaged_checkpoint_is_one_line_that_says_to_delete_it(cli, trained, tmp_path, monkeypatch):
    """state.json with values of the wrong type, or weights files truncated or gone: --resume gave
    tracebacks (TypeError, h5py's OSError, FileNotFoundError)."""
    from varec_cli.training.tf_fit import ResumeState

    save = ResumeState.save

    def save_then_die_at_epoch_2(self, directory):
        if self.epoch == 2:
            raise KeyboardInterrupt
        save(self, directory)

    monkeypatch.setattr(ResumeState, "save", save_then_die_at_epoch_2)
    output = tmp_path / "damaged.keras"
    options = [*SCRATCH, "--val-fraction", "0", "--epochs", "3"]
    assert cli("train", "--dataset", trained["root"], "--output", output, *options).exit_code == 130
    monkeypatch.setattr(ResumeState, "save", save)
    ckpt = tmp_path / "damaged.checkpoints"
    good = json.loads((ckpt / "state.json").read_text())
    weights = (ckpt / good["weights"]).read_bytes()
    for damage, words in (
        ({"epoch": "seventy"}, "epoch and best_epoch must be counts of epochs"),
        ({"history": None}, "history must be a list of objects"),
        ({"fingerprint": [1]}, "fingerprint, best, callbacks and extra must be objects"),
        ({"weights": "../../elsewhere.weights.h5"}, "must name files in the checkpoint folder"),
        ({}, "the checkpoint's weights cannot be loaded"),
    ):
        (ckpt / "state.json").write_text(json.dumps({**good, **damage}))
        if not damage:
            (ckpt / good["weights"]).write_bytes(weights[:5000])  # truncated
        result = cli("train", "--dataset", trained["root"], "--output", output, *options, "--resume")
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        last = result.stderr.rstrip().splitlines()[-1]
        assert last.startswith("error: ") and words in last and f"delete {ckpt}" in last, last
    (ckpt / good["weights"]).unlink()
    gone = cli("train", "--dataset", trained["root"], "--output", output, *options, "--resume")
    assert gone.exit_code == 1 and "the checkpoint's weights cannot be loaded" in gone.stderr.splitlines()[-1]


def test_a_checkpoint_that_cannot_be_written_is_one_line(cli, trained, tmp_path):
    output = tmp_path / "blocked.keras"
    (tmp_path / "blocked.checkpoints").write_text("a file where the checkpoint folder goes")
    result = cli("train", "--dataset", trained["root"], "--output", output, *SCRATCH, "--epochs", "1")
    assert result.exit_code == 1 and not output.exists()
    line = result.stderr.rstrip().splitlines()[-1]
    assert line.startswith("error: ") and "blocked.checkpoints" in line


def test_bad_options_fail_in_one_line(cli, trained, tmp_path):
    result = cli("train", "--dataset", trained["root"], "--output", tmp_path / "m.h5", *SCRATCH)
    assert result.exit_code == 1 and "must end in .keras" in result.stderr
    result = cli("train", "--dataset", tmp_path / "nowhere", "--output", tmp_path / "m.keras", *SCRATCH)
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and "nowhere" in result.stderr
    result = cli("train", "--dataset", trained["root"], "--strategy", "multiworker", "--output", tmp_path / "m.keras")
    assert result.exit_code == 1 and "TF_CONFIG" in result.stderr
    result = cli("train", "--dataset", trained["root"], "--backbone", "vgg16")
    assert result.exit_code == 2
    # TensorBoard logs in the model file's place (found only after training), or in the checkpoint
    # folder (deleted with it when the run finishes)
    for board, said in ((tmp_path / "m.keras", "is -o, the model file"),
                        (tmp_path / "m.checkpoints" / "logs", "is in this run's checkpoint folder"),
                        (tmp_path / "m.history.csv", "is the run's history file"),
                        (tmp_path / "m.history.png", "is the run's history plot")):
        result = cli("train", "--dataset", trained["root"], "--output", tmp_path / "m.keras", *SCRATCH,
                     "--tensorboard", board)
        assert result.exit_code == 1 and result.stderr.startswith(f"error: --tensorboard {board}: {said} ("), result.stderr
        assert result.stderr.rstrip().endswith("give the logs a folder of their own") and "epoch" not in result.stderr


# A child process that splits the CPU into two logical devices before TensorFlow starts, then runs
# the real CLI: MirroredStrategy then has two replicas, as on a two-GPU machine.
TWO_CPU_CLI = (
    "import sys, tensorflow as tf; "
    "cpu = tf.config.list_physical_devices('CPU')[0]; "
    "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2); "
    "from varec_cli.cli import main; sys.argv[0] = 'varec'; main()"
)


def test_mirrored_run_killed_with_sigkill_resumes_from_its_last_checkpoint(trained, tmp_path):
    output = tmp_path / "resumed.keras"
    command = [sys.executable, "-c", TWO_CPU_CLI, "train", "--dataset", str(trained["root"]), "--output",
               str(output), *SCRATCH, "--epochs", "10", "--strategy", "mirrored"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    state_file = tmp_path / "resumed.checkpoints" / "state.json"

    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    killed_after = 0
    while time.monotonic() < deadline and first.poll() is None:
        if state_file.exists():
            killed_after = json.loads(state_file.read_text())["epoch"]
            if killed_after >= 2:
                first.send_signal(signal.SIGKILL)
                break
        time.sleep(0.02)
    first.wait(30)
    assert first.returncode == -signal.SIGKILL, first.communicate()
    assert not output.exists()
    state = json.loads(state_file.read_text())
    done = state["epoch"]  # the kill may land just after another epoch
    assert 2 <= done < 10
    assert 0 < state["extra"]["training_seconds"] < 120
    state["extra"]["training_seconds"] = 1000.0  # as if the first session had run for 1000 s
    state_file.write_text(json.dumps(state))

    resumed_at = time.monotonic()
    second = subprocess.run(command + ["--resume"], env=env, capture_output=True, text=True, timeout=180)
    second_session = time.monotonic() - resumed_at
    assert second.returncode == 0, second.stderr
    assert "mirrored strategy, 2 replicas" in second.stderr
    assert f"resuming after epoch {done}" in second.stderr
    assert f"epoch {done}/10" not in second.stderr and f"epoch {done + 1}/10" in second.stderr
    assert "epoch 10/10" in second.stderr
    rows = list(csv.DictReader(open(tmp_path / "resumed.history.csv")))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 11))
    meta = read_metadata(output)
    assert meta.provenance["epochs"] == 10 and "2 replicas" in meta.provenance["device"]
    assert 1000 < meta.provenance["training_seconds"] < 1000 + second_session  # both sessions counted
    assert not state_file.parent.exists()


def test_a_mirrored_run_with_a_frozen_backbone_encodes_each_clip_once(tmp_path):
    """--strategy mirrored with a frozen backbone fills the feature cache: one feature row per frame.
    (Keras's predict_on_batch under a 2-replica MirroredStrategy returns every row twice, which the
    cache fill once met with a reshape error.)"""
    root = write_ucf101_motion_dataset(tmp_path / "data", train_groups=2, test_groups=1, clips=2, count=8, size=32)
    command = [sys.executable, "-c", TWO_CPU_CLI, "train", "--dataset", str(root), "--backbone", "mobilenet_v2",
               "--backbone-weights", "none", "--frames", "4", "--size", "32", "--units", "8", "--epochs", "1",
               "--batch-size", "4", "--val-fraction", "0.5", "--strategy", "mirrored", "--output", str(tmp_path / "m.keras")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "mirrored strategy, 2 replicas" in done.stderr
    assert "feature cache: 0 clips from cache, 8 decoded and encoded" in done.stderr
    assert read_metadata(tmp_path / "m.keras").provenance["feature_cache"] is True


def test_feature_cache_key_follows_file_identity_and_encoder(tmp_path):
    video = write_video(tmp_path / "a.avi", [np.zeros((32, 32, 3), np.uint8)] * 4)
    cache = loader.FeatureCache(tmp_path / "c", backbone="scratch", weights="w1", frames=4, size=(32, 32),
                                precision="float32")
    assert cache.get(video) is None
    cache.put(video, np.ones((4, 8), np.float32), 0.5)
    hit = cache.get(video)
    assert hit.features.shape == (4, 8) and hit.seconds == 0.5
    other = loader.FeatureCache(tmp_path / "c", backbone="scratch", weights="w2", frames=4, size=(32, 32),
                                precision="float32")
    assert other.get(video) is None  # other encoder weights, other features
    os.utime(video, ns=(1, 1))
    assert cache.get(video) is None  # the file changed (mtime): recompute


def test_a_clip_replaced_by_another_of_the_same_size_and_mtime_is_not_taken_from_the_cache(tmp_path):
    import shutil

    video = write_video(tmp_path / "v.avi", [np.full((16, 16, 3), 40, np.uint8)] * 6)
    other = write_video(tmp_path / "o.avi", [np.full((16, 16, 3), 200, np.uint8)] * 6)
    assert video.stat().st_size == other.stat().st_size and video.read_bytes() != other.read_bytes()
    cache = loader.FeatureCache(tmp_path / "cache", backbone="scratch", weights="w", frames=4, size=(16, 16),
                                precision="float32")
    first = loader.extract_features([(video, 0)], _mean_colour, cache, frames=4, size=(16, 16), feature_dim=3)
    mtime = video.stat().st_mtime_ns
    replacement = tmp_path / "replacement.avi"
    shutil.copyfile(other, replacement)
    os.utime(replacement, ns=(mtime, mtime))  # as `cp -p` of a file with the same mtime would leave it
    os.replace(replacement, video)
    assert video.stat().st_size == other.stat().st_size and video.stat().st_mtime_ns == mtime
    again = loader.extract_features([(video, 0)], _mean_colour, cache, frames=4, size=(16, 16), feature_dim=3)
    assert cache.hits == 0 and cache.misses == 2
    assert not np.allclose(again.features[0], first.features[0])  # the new clip's own features


def test_a_resumed_run_goes_on_with_the_order_its_epochs_would_have_had(tmp_path):
    """Epoch k of a run that started at epoch 0 and the first epoch of a run resumed at k see their
    clips in the same order (and not epoch 0's again), for cached features and for decoded clips."""
    from synthetic import write_motion_video

    from varec_cli.training import tf_fit

    count, batch = 10, 4
    steps = tf_fit.batches_per_epoch(count, batch)
    features = np.arange(count, dtype=np.float16)[:, None, None] * np.ones((1, 2, 3), np.float16)
    labels = np.arange(count)

    def feature_epochs(first_epoch, epochs):
        dataset = tf_fit.features_dataset(features, labels, batch, shuffle=True, seed=5, first_epoch=first_epoch)
        batches = [y.numpy().tolist() for _, y in dataset.take(steps * epochs)]
        return [sum(batches[e * steps:(e + 1) * steps], []) for e in range(epochs)]

    from_start = feature_epochs(0, 4)
    assert all(sorted(epoch) == list(range(count)) for epoch in from_start)
    assert len({tuple(epoch) for epoch in from_start}) == 4  # reshuffled every epoch
    assert feature_epochs(3, 1) == [from_start[3]]

    items = [(write_motion_video(tmp_path / f"c{i}.avi", "left", count=4, size=16, seed=i), i) for i in range(count)]
    source = loader.ClipSource(items, 2, (16, 16))

    def clip_epochs(first_epoch, epochs):
        dataset = tf_fit.clips_dataset(source, batch, shuffle=True, seed=5, first_epoch=first_epoch)
        return [[int(y) for _, ys in dataset for y in ys.numpy()] for _ in range(epochs)]

    clips_from_start = clip_epochs(0, 3)
    assert len({tuple(epoch) for epoch in clips_from_start}) == 3
    assert clip_epochs(2, 1) == [clips_from_start[2]]


def test_training_without_validation_records_so(cli, trained, tmp_path):
    output = tmp_path / "noval.keras"
    args = [a if a != "0.2" else "0" for a in SCRATCH]  # --val-fraction 0
    result = cli("train", "--dataset", trained["root"], "--output", output, *args, "--epochs", "2")
    assert result.exit_code == 0, result.output
    provenance = read_metadata(output).provenance
    assert provenance["val_fraction"] == 0 and provenance["val_split"] == "none" and provenance["clips"]["val"] == 0
    assert provenance["val_split_scheme"] is None


def test_ctrl_c_after_an_epoch_says_how_to_resume(cli, trained, tmp_path, monkeypatch):
    from varec_cli.training import run

    def interrupt(*args):  # Ctrl-C once the epochs are done, before the model is written
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "_warn_unlearnable", interrupt)
    output = tmp_path / "stopped.keras"
    result = cli("train", "--dataset", trained["root"], "--output", output, *SCRATCH, "--epochs", "2")
    assert result.exit_code == 130 and not output.exists()
    assert f"epoch 2 is the last one checkpointed (in {tmp_path / 'stopped.checkpoints'})" in result.stderr
    assert "--resume goes on from there" in result.stderr and result.stderr.rstrip().endswith("interrupted")


def test_the_best_epoch_rule():
    from varec_cli.training.tf_fit import _Monitor

    with_val = _Monitor(has_val=True)
    assert with_val.better({"val_accuracy": 0.8, "val_loss": 0.5}, {"val_accuracy": 0.7, "val_loss": 0.1})
    assert not with_val.better({"val_accuracy": 0.7, "val_loss": 0.5}, {"val_accuracy": 0.8, "val_loss": 0.9})
    assert with_val.better({"val_accuracy": 0.8, "val_loss": 0.4}, {"val_accuracy": 0.8, "val_loss": 0.5})
    # without validation, a later epoch replaces an earlier one even when its (dropout-noisy) training
    # accuracy is lower
    assert _Monitor(has_val=False).better({"accuracy": 0.6, "loss": 0.9}, {"accuracy": 0.7, "loss": 0.8})
    # an epoch whose loss is not a number is never the best, whatever its accuracy says
    assert not with_val.better({"val_accuracy": 0.9, "val_loss": float("nan"), "loss": 0.1}, {"val_accuracy": 0.5})
    assert not _Monitor(has_val=False).better({"accuracy": 0.9, "loss": float("inf")}, {"accuracy": 0.5, "loss": 1})


def test_early_stopping_is_said(cli, trained, tmp_path):
    # A learning rate too small to move any float32 weight: the validation loss stays exactly the same.
    result = cli("train", "--dataset", trained["root"], "--output", tmp_path / "flat.keras", *SCRATCH,
                 "--epochs", "5", "--patience", "1", "--lr", "1e-12")
    assert result.exit_code == 0, result.output
    assert "stopped early after epoch 2 of 5: the validation loss had not improved for 1 epoch (--patience)" in result.stderr


def _mean_colour(batch):  # a stand-in frame encoder: (N, H, W, 3) -> (N, 3)
    return np.asarray(batch, np.float32).reshape(len(batch), -1, 3).mean(axis=1)


def test_damaged_feature_cache_entries_are_computed_again(tmp_path):
    """A crash or a full disk can leave an entry empty or cut short; it must not stop every later run."""
    from synthetic import write_motion_video

    items = [(write_motion_video(tmp_path / f"v{i}.avi", "left", count=6, size=16, seed=i), i % 2) for i in range(4)]
    spec = dict(frames=4, size=(16, 16), feature_dim=3)
    cache = loader.FeatureCache(tmp_path / "cache", backbone="scratch", weights="w", frames=4, size=(16, 16),
                                precision="float32")
    first = loader.extract_features(items, _mean_colour, cache, **spec)
    entries = sorted(cache.directory.rglob("*.npz"))
    assert first.decoded == 4 and len(entries) == 4
    entries[0].write_bytes(entries[0].read_bytes()[:100])  # cut short
    entries[1].write_bytes(b"")  # empty
    buffer = __import__("io").BytesIO()
    np.savez(buffer, features=np.zeros((3, 7), np.float16), seconds=np.float64(1.0))
    entries[2].write_bytes(buffer.getvalue())  # another shape
    again = loader.extract_features(items, _mean_colour, cache, **spec)
    assert again.decoded == 3 and again.skipped == []
    np.testing.assert_allclose(again.features, first.features)
    assert loader.extract_features(items, _mean_colour, cache, **spec).decoded == 0  # repaired


def test_a_feature_cache_that_cannot_be_written_is_worked_around(cli, trained, tmp_path, monkeypatch):
    from synthetic import write_motion_video

    items = [(write_motion_video(tmp_path / f"v{i}.avi", "left", count=6, size=16, seed=i), i % 2) for i in range(2)]
    blocked = tmp_path / "a-file"
    blocked.write_text("where the cache folder should be")
    cache = loader.FeatureCache(blocked, backbone="scratch", weights="w", frames=4, size=(16, 16), precision="float32")
    done = loader.extract_features(items, _mean_colour, cache, frames=4, size=(16, 16), feature_dim=3)
    assert len(done.labels) == 2 and cache.write_error  # trained on, uncached, and the reason kept

    monkeypatch.setenv("VAREC_CACHE_DIR", str(blocked))
    result = cli("train", "--dataset", trained["root"], "--init", trained["model"], "--epochs", "1",
                 "--output", tmp_path / "m.keras")
    assert result.exit_code == 0, result.output
    assert f"the feature cache {blocked}" in result.stderr and "were not kept" in result.stderr


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may read anything")
def test_a_video_that_could_not_be_read_is_tried_again_once_readable(tmp_path):
    from synthetic import write_motion_video

    video = write_motion_video(tmp_path / "v.avi", "left", count=6, size=16)
    cache = loader.FeatureCache(tmp_path / "cache", backbone="scratch", weights="w", frames=4, size=(16, 16),
                                precision="float32")
    video.chmod(0)
    done = loader.extract_features([(video, 0)], _mean_colour, cache, frames=4, size=(16, 16), feature_dim=3)
    assert "no permission to read it" in done.skipped[0][1]
    video.chmod(0o644)  # the mtime does not change: the failure must not have been remembered
    assert len(loader.extract_features([(video, 0)], _mean_colour, cache, frames=4, size=(16, 16),
                                       feature_dim=3).labels) == 1


def test_a_clip_cut_short_is_used_with_a_warning_in_every_run(cli, trained, tmp_path):
    """A download that stopped half way still decodes: training uses what is there and says so, once per
    run, also when its features come from the cache; evaluate says so too."""
    from synthetic import moving_square_frames, write_av_video, write_motion_video

    root = tmp_path / "with-a-cut-clip"
    for direction in ("left", "right"):
        (root / direction).mkdir(parents=True)
        for i in range(4):
            write_motion_video(root / direction / f"{direction}_{i}.avi", direction, count=10, size=32, seed=i)
    whole = write_av_video(tmp_path / "whole.mp4", moving_square_frames("right", count=100, size=64),
                           container_options={"movflags": "faststart"})
    data = whole.read_bytes()
    (root / "right" / "right_cut.mp4").write_bytes(data[: (data.index(b"mdat") + len(data)) // 2])

    def cut_warnings(result) -> list[str]:
        assert result.exit_code == 0, result.output
        return [line for line in result.stderr.splitlines() if "cut short or damaged" in line]

    for run in ("end to end", "features decoded", "features from the cache"):
        options = SCRATCH if run == "end to end" else ("--init", trained["model"], "--batch-size", "8")
        result = cli("train", "--dataset", root, "--output", tmp_path / f"{run}.keras", *options, "--epochs", "2",
                     "--val-fraction", "0")
        (warning,) = cut_warnings(result)
        assert warning.startswith("warning:") and "right_cut.mp4: only" in warning and "of the 4.0 s" in warning, run
        if run != "end to end":
            assert f"{9 if run == 'features from the cache' else 0} clips from cache" in result.stderr, result.stderr
    evaluated = cli("evaluate", "--dataset", root, "--model", tmp_path / "end to end.keras", "--subset", "train",
                    "--val-fraction", "0")
    (warning,) = cut_warnings(evaluated)
    assert "right_cut.mp4: only" in warning


def test_a_cached_cut_short_warning_names_the_clip_as_this_run_does_and_old_entries_learn_it(tmp_path, monkeypatch):
    from synthetic import moving_square_frames, write_av_video

    folder = tmp_path / "clips"
    folder.mkdir()
    whole = write_av_video(tmp_path / "whole.mp4", moving_square_frames("right", count=100, size=64),
                           container_options={"movflags": "faststart"})
    data = whole.read_bytes()
    (folder / "cut.mp4").write_bytes(data[: (data.index(b"mdat") + len(data)) // 2])
    cache = loader.FeatureCache(tmp_path / "cache", backbone="scratch", weights="w", frames=4, size=(16, 16),
                                precision="float32")

    def warnings_of(items) -> list[str]:
        said: list[str] = []
        loader.extract_features(items, _mean_colour, cache, frames=4, size=(16, 16), feature_dim=3,
                                on_warning=said.append)
        return said

    monkeypatch.chdir(tmp_path)
    (first,) = warnings_of([(Path("clips/cut.mp4"), 0)])
    assert first.startswith("clips/cut.mp4: only ") and cache.misses == 1
    monkeypatch.chdir(folder)  # the same file, named otherwise: served from the cache, named as now
    (again,) = warnings_of([(Path("cut.mp4"), 0)])
    assert cache.hits == 1 and again == first.replace("clips/cut.mp4", "cut.mp4", 1)
    (entry,) = cache.directory.rglob("*.npz")
    with np.load(entry) as kept:
        old = {"features": kept["features"], "seconds": kept["seconds"]}
    buffer = __import__("io").BytesIO()
    np.savez(buffer, **old)  # as written before warnings were kept: computed again, once
    entry.write_bytes(buffer.getvalue())
    assert warnings_of([(Path("cut.mp4"), 0)]) == [again] and cache.misses == 2
    assert warnings_of([(Path("cut.mp4"), 0)]) == [again] and cache.misses == 2 and cache.hits == 2


def test_a_checkpoint_the_disk_has_no_room_for_is_refused_before_writing(tmp_path):
    from varec_cli.errors import VarecError
    from varec_cli.models.architecture import build_model
    from varec_cli.training.tf_fit import _save_weights

    model = build_model(2, backbone="scratch", rnn="gru", frames=2, size=32, units=4)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")  # as training saves it: with Adam's state
    target = tmp_path / "epoch.weights.h5"
    with pytest.raises(VarecError, match=r"^not enough free disk space in .* for the training checkpoint: need about "
                                         r"[\d.]+ [KMGT]?B, [\d.]+ [KMGT]?B free$"):
        _save_weights(model, target, copies=10**12)  # as many copies as no disk holds
    assert not target.exists()
    _save_weights(model, target, copies=1)
    assert target.stat().st_size > 0


def test_a_run_that_will_replace_an_existing_model_says_so_first(cli, trained, tmp_path):
    import shutil

    output = shutil.copyfile(trained["model"], tmp_path / "model.keras")  # a finished model, the default -o's name
    result = cli("train", "--dataset", trained["root"], "--init", trained["model"], "--epochs", "1", "--batch-size", "8",
                 "--output", output)
    assert result.exit_code == 0, result.output
    assert f"warning: {output} exists: this run replaces it when it finishes" in result.stderr
    fresh = cli("train", "--dataset", trained["root"], "--init", trained["model"], "--epochs", "1", "--batch-size", "8",
                "--output", tmp_path / "new.keras")
    assert fresh.exit_code == 0 and "exists" not in fresh.stderr


def test_a_class_name_a_model_may_not_hold_fails_before_training(cli, tiny_model, tmp_path):
    """A class folder named with a line break: a model's labels may not hold one (varec refuses such a
    model file), so train says so before the first epoch instead of failing to save after the last;
    save_model itself refuses to write what varec would refuse to open."""
    from synthetic import write_motion_video

    from varec_cli.errors import ModelError
    from varec_cli.models.modelfile import ModelMetadata, save_model

    root = tmp_path / "ds"
    for name, direction in (("left", "left"), ("bad\nname", "right")):
        (root / name).mkdir(parents=True)
        for i in range(3):
            write_motion_video(root / name / f"{direction}{i}.avi", direction, seed=i)
    result = cli("train", "--dataset", root, "--output", tmp_path / "m.keras", *SCRATCH, "--epochs", "1")
    assert result.exit_code == 1 and "epoch 1/" not in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == (
        f"error: dataset {root.name}: the class name 'bad\\nname' holds control characters (a line break, a tab, "
        "an escape code), which a model's labels may not; rename that folder"
    )
    (root / "bad\nname").rename(root / "cafe\u0301")
    (root / "caf\u00e9").mkdir()
    for i in range(3):
        write_motion_video(root / "caf\u00e9" / f"right{i}.avi", "right", seed=i)
    twins = cli("train", "--dataset", root, "--output", tmp_path / "m.keras", *SCRATCH, "--epochs", "1")
    assert twins.exit_code == 1 and "epoch 1/" not in twins.stderr
    assert twins.stderr.rstrip().splitlines()[-1] == (
        f"error: dataset {root.name}: the class names 'cafe\\u0301' and 'caf\\xe9' are one name written two ways "
        "(Unicode normal forms), which a model's labels may not be; rename one folder"
    )
    from varec_cli.models.modelfile import load_model

    model, _ = load_model(tiny_model)
    metadata = ModelMetadata(labels=["a", "b\x1b[31m", "c"], frames=6, size=(32, 32), backbone="scratch",
                             preprocessing="unit", rnn="gru", feature_dim=128)
    with pytest.raises(ModelError, match="not saved: labels must not hold control characters"):
        save_model(model, tmp_path / "bad.keras", metadata)
    assert not (tmp_path / "bad.keras").exists()


def test_options_past_any_machine_and_an_output_that_is_the_init_model_are_refused_at_once(cli, trained, tmp_path):
    """`--frames 1e20` gave a traceback, `--frames 100000` a segfault at 21 GB; `-o` naming the --init
    model replaced the model the run started from."""
    import shutil

    for option in ("--frames", "--size", "--units", "--batch-size"):
        result = cli("train", "--dataset", trained["root"], option, "99999999999999999999", "--output", tmp_path / "m.keras")
        assert result.exit_code == 2 and option in result.stderr and "Traceback" not in result.output, result.output
    start = shutil.copyfile(trained["model"], tmp_path / "start.keras")
    before = start.read_bytes()
    same = cli("train", "--dataset", trained["root"], "--init", start, "--epochs", "1", "--output", start)
    assert same.exit_code == 1 and same.stderr.strip().splitlines()[-1] == (
        f"error: {start}: -o is the --init model; the run would replace the model it starts from, so give another -o"
    )
    assert start.read_bytes() == before


def test_a_second_run_to_the_same_output_is_refused_while_the_first_runs(cli, trained, tmp_path):
    """Two runs to one -o shared one checkpoint folder: the second deleted the first's checkpoints (or
    resumed from its weights). The run in progress is stood in for by its lock, held here; the second
    run leaves the first's checkpoint alone, and once the first is done, runs."""
    from varec_cli.training.run import output_lock
    from varec_cli.training.tf_fit import ResumeState

    output = tmp_path / "m.keras"
    checkpoints = tmp_path / "m.checkpoints"
    args = ("train", "--dataset", trained["root"], "--init", trained["model"], "--epochs", "1", "--batch-size", "8",
            "--output", output)
    with output_lock(output):
        ResumeState(fingerprint={}, epoch=2).save(checkpoints)  # the first run's checkpoint after epoch 2
        for extra in ((), ("--resume",)):
            second = cli(*args, *extra)
            assert second.exit_code == 1 and second.stderr.strip().splitlines()[-1] == (
                f"error: another varec train is writing {output} now (its checkpoints are in {checkpoints}); wait for "
                "it to finish, or give this run another -o"
            )
            assert ResumeState.load(checkpoints).epoch == 2 and not output.exists()
        for child in checkpoints.iterdir():  # the first run finishes: its checkpoints go
            if child.name != ".lock":
                child.unlink()
    after = cli(*args)
    assert after.exit_code == 0, after.output
    assert output.is_file() and not checkpoints.exists()
    failed = cli("train", "--dataset", tmp_path / "nowhere", "--output", tmp_path / "new" / "deeper" / "f.keras", *SCRATCH)
    assert failed.exit_code == 1 and not (tmp_path / "new").exists()  # a run that never started leaves nothing
    in_the_way = tmp_path / "w.checkpoints"
    for blocker in ("a file", "a dangling link"):
        if blocker == "a file":
            in_the_way.write_text("mine")
            what = "not a folder"
        else:
            in_the_way.unlink()
            in_the_way.symlink_to(tmp_path / "gone")
            what = f"a symbolic link to {tmp_path / 'gone'}, which does not exist"
        result = cli(*args[:-1], tmp_path / "w.keras")
        assert result.exit_code == 1 and result.stderr.strip().splitlines()[-1] == (
            f"error: {in_the_way} is in the way ({what}): a run keeps its checkpoints in a folder of that name "
            "beside -o; move it, or give another -o"
        )


def test_the_history_shows_the_rate_each_epoch_trained_with(tmp_path):
    """ReduceLROnPlateau cuts the rate at the end of an epoch: the history gave that epoch the cut rate,
    which only the next epoch trained with."""
    import keras
    import tensorflow as tf

    from varec_cli.reporting import Reporter
    from varec_cli.training import tf_fit

    x = np.zeros((16, 4), np.float32)  # no input, no bias: the loss cannot move, so no epoch improves on the first
    y = np.arange(16) % 2
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, use_bias=False, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    outcome = tf_fit.fit(model, data, data, placement=tf_fit.make_strategy("none"), epochs=6, steps=None,
                         checkpoint_dir=tmp_path / "ck", state=tf_fit.ResumeState(fingerprint={}), reporter=Reporter(),
                         patience=6, tensorboard=tmp_path / "tb")
    # plateau patience max(2, 6 // 3) = 2: cut at the end of epochs 3 and 5
    assert [row["learning_rate"] for row in outcome.history] == pytest.approx([0.01, 0.01, 0.01, 0.005, 0.005, 0.0025])
    from tensorflow.core.util import event_pb2

    logged = {}
    for events in (tmp_path / "tb" / "train").glob("*tfevents*"):
        for record in tf.data.TFRecordDataset(str(events)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.tag == "epoch_learning_rate":
                    logged[event.step] = float(tf.make_ndarray(value.tensor))
    assert [logged[step] for step in sorted(logged)] == pytest.approx([0.01, 0.01, 0.01, 0.005, 0.005, 0.0025])
