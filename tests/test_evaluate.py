"""`varec evaluate`: metrics, JSON, tables, reports and failures, on a generated UCF101-layout dataset.

Models here are untrained (built, not fitted): these tests are about how evaluation reads the split,
samples clips and reports, not about learning (test_training.py covers that).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic import write_ucf101_motion_dataset

from varec_cli.evaluate_run import evaluate_models
from varec_cli.models.classifier import load_classifier
from varec_cli.predict import classify_video

# Real UCF101 class names, so the per-action-type table applies.
CLASSES = {"ApplyEyeMakeup": "left", "Archery": "right", "Basketball": "left"}
TYPES = {"ApplyEyeMakeup": "Human-Object Interaction", "Archery": "Sports", "Basketball": "Sports"}


def _save_untrained(path: Path, labels: list[str], rnn: str, frames: int = 6) -> Path:
    from varec_cli.models.architecture import build_model
    from varec_cli.models.modelfile import ModelMetadata, save_model

    model = build_model(len(labels), backbone="scratch", rnn=rnn, frames=frames, size=32, units=8)
    meta = ModelMetadata(labels=labels, frames=frames, size=(32, 32), backbone="scratch", preprocessing="unit",
                         rnn=rnn, feature_dim=128)
    return save_model(model, path, meta)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("evaluate")
    root = write_ucf101_motion_dataset(base / "ucf", CLASSES, train_groups=1, test_groups=1, clips=3, count=10,
                                       size=32)
    bad = root / "UCF-101" / "Archery" / "v_Archery_g01_c02.avi"
    bad.write_bytes(b"\x00" * 64)  # a test video that cannot be decoded
    labels = list(CLASSES)
    return {
        "root": root,
        "gru": _save_untrained(base / "gru.keras", labels, "gru"),
        "lstm": _save_untrained(base / "lstm.keras", labels[::-1], "lstm", frames=4),  # other order, other spec
    }


def _records(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_json_has_one_object_per_model_with_the_agreed_keys(cli, setup):
    records = _records(cli("evaluate", "--dataset", setup["root"], "--model", setup["gru"], "--model", setup["lstm"],
                           "--json"))
    assert [r["model"] for r in records] == [str(setup["gru"]), str(setup["lstm"])]
    for record in records:
        assert set(record) >= {"model", "top1", "top5", "mean_class_accuracy", "videos", "skipped", "per_class"}
        assert record["videos"] == 8 and record["skipped"] == 1  # 3 classes x 1 group x 3 clips, 1 broken
        assert 0 <= record["top1"] <= record["top5"] <= 1 and record["top5"] == 1.0  # 3 classes: top-5 is all
        assert set(record["per_class"]) == set(CLASSES)
    assert "v_Archery_g01_c02.avi" in cli("evaluate", "--dataset", setup["root"], "-m", setup["gru"]).stderr


def test_scores_are_what_predict_gives_for_each_video(setup):
    """Same sampler, same clips, same averaging as `varec predict --clips K`."""
    run = evaluate_models(str(setup["root"]), [str(setup["gru"])], clips=2)
    (evaluation,) = run.evaluations
    classifier = load_classifier(setup["gru"])
    predicted, truth = [], []
    for sample in run.dataset.test:
        if sample.path.name == "v_Archery_g01_c02.avi":
            continue
        probabilities = classify_video(classifier, sample.path, clips=2).probabilities
        predicted.append(int(np.argmax(probabilities)))
        truth.append(classifier.labels.index(run.dataset.labels[sample.label]))
    expected = np.zeros((3, 3), int)
    for t, p in zip(truth, predicted):
        expected[t, p] += 1
    assert np.array_equal(evaluation.metrics.confusion, expected)
    assert evaluation.metrics.top1 == pytest.approx(np.mean(np.array(truth) == np.array(predicted)))


def test_tables_side_by_side_with_action_types_and_a_report(cli, setup, tmp_path):
    result = cli("evaluate", "--dataset", setup["root"], "-m", setup["gru"], "-m", setup["lstm"],
                 "--report", tmp_path / "report", "--clips", "2")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "top-5" not in out  # 3 classes: the heading says what is counted
    for text in ("top-1", "top-3", "mean class acc", "gru.keras", "lstm.keras", "accuracy per action type",
                 "Human-Object Interaction", "Sports", "accuracy per class", "Basketball"):
        assert text in out, out
    files = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"summary.csv", "comparison.png", "gru_confusion.csv", "gru_confusion.png", "lstm_confusion.csv"} <= files
    header = (tmp_path / "report" / "gru_confusion.csv").read_text().splitlines()[0]
    assert header.split(",")[1:] == list(CLASSES)
    summary = [line.split(",") for line in (tmp_path / "report" / "summary.csv").read_text().splitlines()]
    assert summary[0][-2:] == ["videos", "skipped"] and [row[-2:] for row in summary[1:]] == [["8", "1"], ["8", "1"]]

    # one model into the same folder: the two-model chart does not stay beside its one-model summary
    again = cli("evaluate", "--dataset", setup["root"], "-m", setup["gru"], "--report", tmp_path / "report")
    assert again.exit_code == 0, again.output
    assert not (tmp_path / "report" / "comparison.png").exists()
    assert [line.split(",")[0] for line in (tmp_path / "report" / "summary.csv").read_text().splitlines()[1:]] == ["gru"]
    for other_spelling in (setup["gru"], f"{setup['gru'].parent}/./{setup['gru'].name}"):  # Path() drops the ./
        twice = cli("evaluate", "--dataset", setup["root"], "-m", setup["gru"], "-m", other_spelling)
        assert twice.exit_code == 2 and "given twice" in twice.stderr


def test_a_report_path_that_cannot_be_written_fails_before_any_video(cli, setup, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("a file, not a folder")
    result = cli("evaluate", "--dataset", setup["root"], "-m", setup["gru"], "--report", taken)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: cannot write the report into {taken}") and result.stderr.count("\n") == 1
    assert taken.read_text() == "a file, not a folder"
    beneath = cli("evaluate", "--dataset", setup["root"], "-m", setup["gru"], "--report", taken / "sub")
    assert beneath.exit_code == 1 and f"{taken} is not a folder" in beneath.stderr

    # Nothing is created until there is a report to write.
    failed = cli("evaluate", "--dataset", tmp_path / "no-such-dataset", "-m", setup["gru"], "--report", tmp_path / "new" / "r")
    assert failed.exit_code == 1 and not (tmp_path / "new").exists()


def test_models_ranking_fewer_and_more_than_5_classes_say_which_score_is_which(cli, setup, tmp_path):
    """A 3-class model's `top5` is its top-3; beside a 6-class model's top-5 the column was headed
    `top-5` for both."""
    wider = _save_untrained(tmp_path / "wider.keras", [*CLASSES, "Drumming", "Fencing", "Rowing"], "gru")
    records = _records(cli("evaluate", "--dataset", setup["root"], "-m", setup["gru"], "-m", wider, "--json"))
    table = cli("evaluate", "--dataset", setup["root"], "-m", setup["gru"], "-m", wider, "--report", tmp_path / "r").stdout
    assert "top-5 / top-C" in table and (tmp_path / "r" / "comparison.png").stat().st_size > 0  # its chart marks them too
    rows = {line.split()[0]: line for line in table.splitlines() if line.strip().startswith(("gru.keras", "wider.keras"))}
    assert f"{records[0]['top5']:.1%} (top-3)" in rows["gru.keras"]
    assert "(top-" not in rows["wider.keras"] and f"{records[1]['top5']:.1%}" in rows["wider.keras"]
    narrow = _save_untrained(tmp_path / "narrow.keras", [*CLASSES, "Drumming"], "gru")  # top-3 beside top-4
    table = cli("evaluate", "--dataset", setup["root"], "-m", setup["gru"], "-m", narrow).stdout
    assert "top-5" not in table and "top-C" in table and "(top-3)" in table and "(top-4)" in table


def test_a_model_that_does_not_know_the_classes_fails_in_one_line(cli, setup, tmp_path):
    other = _save_untrained(tmp_path / "other.keras", ["Drumming", "Fencing"], "gru")
    result = cli("evaluate", "--dataset", setup["root"], "--model", other)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert "does not know 3 of the dataset's classes" in result.stderr


def _two_class_folders(root: Path, left: str, right: str) -> Path:
    """train/ and test/ with two videos of each class: `left` moves left, `right` moves right."""
    from synthetic import moving_square_frames, write_video

    for part in ("train", "test"):
        for name, direction in ((left, "left"), (right, "right")):
            (root / part / name).mkdir(parents=True)
            for i in range(2):
                write_video(root / part / name / f"c{i}.avi", moving_square_frames(direction, 10, 32, seed=i), fps=12)
    return root


def test_classes_whose_names_differ_only_in_case_stay_two_classes(cli, tmp_path):
    """`Run` and `run` are two folders, two classes, two outputs of the model: each video is scored
    against its own class (they were merged into one, and half the videos scored against the other)."""
    root = _two_class_folders(tmp_path / "cased", "Run", "run")
    model = _save_untrained(tmp_path / "cased.keras", ["Run", "run"], "gru")
    classifier = load_classifier(model)
    (record,) = _records(cli("evaluate", "--dataset", root, "--model", model, "--json"))
    assert set(record["per_class"]) == {"Run", "run"} and record["videos"] == 4
    expected = {"Run": [], "run": []}
    for name in expected:
        for video in sorted((root / "test" / name).iterdir()):
            expected[name].append(classifier.labels[int(np.argmax(classify_video(classifier, video).probabilities))] == name)
    assert record["per_class"] == {name: pytest.approx(np.mean(hits)) for name, hits in expected.items()}


def test_a_class_name_spelt_with_its_accent_apart_is_the_same_class(cli, tmp_path):
    """A model trained on `café` (é one character) and a dataset copied from a Mac, its folder `café`
    written e + accent: evaluate said the model does not know the class."""
    root = _two_class_folders(tmp_path / "copied", "cafe\u0301", "run")
    model = _save_untrained(tmp_path / "nfc.keras", ["caf\u00e9", "run"], "gru")
    (record,) = _records(cli("evaluate", "--dataset", root, "--model", model, "--json"))
    assert record["videos"] == 4 and set(record["per_class"]) == {"caf\u00e9", "run"}


def test_a_folder_without_a_test_split_points_to_val(cli, setup, tmp_path):
    from synthetic import write_motion_video

    for cls, direction in (("left", "left"), ("right", "right")):
        (tmp_path / "plain" / cls).mkdir(parents=True)
        for i in range(3):
            write_motion_video(tmp_path / "plain" / cls / f"{cls}{i}.avi", direction, size=32, seed=i)
    model = _save_untrained(tmp_path / "lr.keras", ["left", "right"], "gru")
    result = cli("evaluate", "--dataset", tmp_path / "plain", "--model", model)
    assert result.exit_code == 1 and "no test videos" in result.stderr and "--subset val" in result.stderr
    records = _records(cli("evaluate", "--dataset", tmp_path / "plain", "--model", model, "--subset", "val",
                           "--val-fraction", "0.34", "--json"))
    assert records[0]["videos"] == 2 and records[0]["skipped"] == 0


def test_rate_based_models_are_fed_like_predict_feeds_them(setup):
    """A model that takes frames at a rate (spec.fps, like the MoViNet SavedModels) gets each video's
    own frame count, through predict.classify_video; the broken video is skipped, not fatal."""
    from varec_cli.models.classifier import Classifier, ClipSpec

    class RateModel(Classifier):
        name = "rate-model"
        labels = list(CLASSES)
        spec = ClipSpec(frames=50, height=32, width=32, fps=12.0)
        seen: list[int] = []

        def predict_clips(self, clips):
            self.seen.append(clips.shape[1])
            out = np.zeros((len(clips), 3), np.float32)
            out[:, 1] = 1.0  # always "Archery"
            return out

        def start_stream(self):
            raise NotImplementedError

        def describe(self):
            return {}

    model = RateModel()
    run = evaluate_models(str(setup["root"]), ["rate-model"], open_model=lambda name: model)
    (evaluation,) = run.evaluations
    assert evaluation.skipped == 1 and evaluation.metrics.videos == 8
    assert model.seen == [model.spec.frames_for(10 / 12.0)] * 8  # 10-frame videos at 12 fps
    assert evaluation.metrics.per_class == {"ApplyEyeMakeup": 0.0, "Archery": 1.0, "Basketball": 0.0}


def test_the_per_class_table_is_shown_up_to_20_classes_and_beyond_only_with_per_class(cli, tmp_path):
    """The per-class table is one row per class: shown by itself for at most 20 classes, beyond that
    (the full UCF101 and HMDB51) only with --per-class."""
    def dataset_and_model(count):
        classes = {f"Class{i:02d}": "left" if i % 2 else "right" for i in range(1, count + 1)}
        root = write_ucf101_motion_dataset(tmp_path / f"ucf{count}", classes, train_groups=1, test_groups=1,
                                           clips=1, count=6, size=32)
        return root, _save_untrained(tmp_path / f"m{count}.keras", list(classes), "gru")

    def per_class_rows(root, model, *flag):
        result = cli("evaluate", "--dataset", root, "--model", model, *flag)
        assert result.exit_code == 0, result.output
        assert "top-1" in result.stdout  # the summary table, always
        rows = [line.split()[0] for line in result.stdout.splitlines() if line.split()[:1] and
                line.split()[0].startswith("Class")]
        assert ("accuracy per class" in result.stdout) == bool(rows), result.stdout
        return rows

    root, model = dataset_and_model(21)
    assert per_class_rows(root, model) == []
    assert per_class_rows(root, model, "--per-class") == [f"Class{i:02d}" for i in range(1, 22)]
    root, model = dataset_and_model(20)
    assert per_class_rows(root, model) == [f"Class{i:02d}" for i in range(1, 21)]
    # the dataset's classes count, not the model's: models of 21 and 25 labels on the 20-class dataset
    wider = _save_untrained(tmp_path / "wider.keras", [f"Class{i:02d}" for i in range(1, 26)], "gru")
    for model in (tmp_path / "m21.keras", wider):
        assert per_class_rows(root, model) == [f"Class{i:02d}" for i in range(1, 21)]
