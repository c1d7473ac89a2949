"""Evaluation metrics on hand-made probability matrices, and the report files they produce.

Expected values are worked out by hand in the comments, never by calling the code under test.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from varec_cli.errors import VarecError
from varec_cli.evaluation import Metrics, compute_metrics, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LABELS = ["a", "b", "c", "d", "e", "f"]

# 5 videos, 6 classes (so top-5 can miss). Row by row:
#   0: true a, best a                          -> top1 hit, top5 hit
#   1: true b, best a, b second                -> top1 miss, top5 hit
#   2: true b, best b                          -> top1 hit, top5 hit
#   3: true c, c ranked last (0.01)            -> top1 miss (predicted a), top5 miss
#   4: true d, best d                          -> top1 hit, top5 hit
PROBS = np.array(
    [
        [0.70, 0.10, 0.05, 0.05, 0.05, 0.05],
        [0.50, 0.30, 0.10, 0.05, 0.03, 0.02],
        [0.00, 0.90, 0.10, 0.00, 0.00, 0.00],
        [0.30, 0.25, 0.01, 0.20, 0.15, 0.09],
        [0.10, 0.10, 0.10, 0.60, 0.05, 0.05],
    ]
)
TARGETS = np.array([0, 1, 1, 2, 3])
TYPES = {"a": "X", "b": "X", "c": "Y", "d": "Y", "e": "Y", "f": "X"}


@pytest.fixture
def metrics() -> Metrics:
    return compute_metrics(PROBS, TARGETS, LABELS, action_types=TYPES)


def test_top1_top5_and_mean_class_accuracy(metrics):
    assert metrics.videos == 5
    assert metrics.top_k == 5
    assert metrics.top1 == pytest.approx(3 / 5)
    assert metrics.top5 == pytest.approx(4 / 5)
    # Per class over classes with videos: a 1/1, b 1/2, c 0/1, d 1/1; e and f have none.
    assert metrics.per_class == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.0, "d": 1.0})
    assert list(metrics.per_class) == ["a", "b", "c", "d"]
    assert metrics.mean_class_accuracy == pytest.approx((1 + 0.5 + 0 + 1) / 4)


def test_confusion_rows_are_true_classes(metrics):
    expected = np.zeros((6, 6), dtype=int)
    expected[0, 0] = 1  # a -> a
    expected[1, 0] = 1  # b -> a
    expected[1, 1] = 1  # b -> b
    expected[2, 0] = 1  # c -> a
    expected[3, 3] = 1  # d -> d
    np.testing.assert_array_equal(metrics.confusion, expected)
    assert metrics.confusion.dtype.kind == "i"
    np.testing.assert_array_equal(metrics.support, [1, 2, 1, 1, 0, 0])


def test_per_type_accuracy_is_over_the_videos_of_each_type(metrics):
    # X = a, b (f has no videos): 2 correct of 3 videos. Y = c, d (e has none): 1 of 2.
    assert metrics.per_type == pytest.approx({"X": 2 / 3, "Y": 1 / 2})
    assert compute_metrics(PROBS, TARGETS, LABELS).per_type is None


def test_per_type_matches_labels_ignoring_case():
    m = compute_metrics(np.eye(2), np.array([0, 1]), ["HandStandPushups", "Archery"],
                        action_types={"HandstandPushups": "Body-Motion Only", "Archery": "Sports"})
    assert m.per_type == {"Body-Motion Only": 1.0, "Sports": 1.0}


def test_to_json_has_exactly_the_documented_keys(metrics):
    data = metrics.to_json(model="gru.keras", skipped=2)
    assert set(data) == {"model", "top1", "top5", "mean_class_accuracy", "videos", "skipped", "per_class", "per_type"}
    assert data["model"] == "gru.keras" and data["skipped"] == 2 and data["videos"] == 5
    assert data["top1"] == pytest.approx(0.6) and data["per_class"]["b"] == pytest.approx(0.5)
    assert json.loads(json.dumps(data)) == data  # plain JSON types only
    plain = compute_metrics(PROBS, TARGETS, LABELS).to_json("m", 0)
    assert set(plain) == {"model", "top1", "top5", "mean_class_accuracy", "videos", "skipped", "per_class"}


def test_top_k_is_capped_by_the_class_count_and_ties_go_to_the_lower_index():
    # Two classes: k = 2, so top-5 is always 1. A tie [0.5, 0.5] predicts class 0 (like argmax).
    probs = np.array([[0.5, 0.5], [0.5, 0.5], [0.2, 0.8]])
    m = compute_metrics(probs, np.array([0, 1, 0]), ["x", "y"])
    assert m.top_k == 2 and m.top5 == 1.0
    assert m.top1 == pytest.approx(1 / 3)  # only row 0 is right
    np.testing.assert_array_equal(m.confusion, [[1, 1], [1, 0]])
    assert m.per_class == pytest.approx({"x": 0.5, "y": 0.0})
    assert m.mean_class_accuracy == pytest.approx(0.25)


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        compute_metrics(PROBS[:, :5], TARGETS, LABELS)
    with pytest.raises(ValueError, match="targets must have shape"):
        compute_metrics(PROBS, TARGETS[:4], LABELS)
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 6\)"):
        compute_metrics(PROBS, np.array([0, 1, 1, 2, 6]), LABELS)
    with pytest.raises(VarecError, match="nothing to evaluate"):
        compute_metrics(np.zeros((0, 6)), np.zeros((0,), dtype=int), LABELS)


def read_csv(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_report_for_one_model(tmp_path, metrics):
    written = write_report(tmp_path / "report", {"runs/gru model.keras": metrics})
    out = tmp_path / "report"
    stem = "runs_gru_model.keras"
    assert sorted(p.name for p in written) == sorted(
        [f"{stem}_confusion.csv", f"{stem}_confusion.png", f"{stem}_per_class.csv", f"{stem}_per_type.csv",
         "summary.csv"]
    )
    assert all(p.parent == out and p.stat().st_size > 0 for p in written)
    assert not (out / "comparison.png").exists()

    rows = read_csv(out / f"{stem}_confusion.csv")
    assert rows[0] == ["true\\predicted", *LABELS]
    assert [r[0] for r in rows[1:]] == LABELS
    assert [[int(v) for v in r[1:]] for r in rows[1:]] == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0],
        [0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ]
    per_class = read_csv(out / f"{stem}_per_class.csv")
    assert per_class[0] == ["label", "videos", "correct", "accuracy", "action_type"]
    assert [(r[0], int(r[1]), int(r[2]), float(r[3]), r[4]) for r in per_class[1:]] == [
        ("a", 1, 1, 1.0, "X"),
        ("b", 2, 1, 0.5, "X"),
        ("c", 1, 0, 0.0, "Y"),
        ("d", 1, 1, 1.0, "Y"),
    ]
    per_type = read_csv(out / f"{stem}_per_type.csv")
    assert per_type[0] == ["action_type", "videos", "accuracy"]
    assert [(r[0], int(r[1]), round(float(r[2]), 4)) for r in per_type[1:]] == [("X", 3, 0.6667), ("Y", 2, 0.5)]
    summary = read_csv(out / "summary.csv")
    assert summary[0] == ["model", "top1", "top5", "mean_class_accuracy", "videos", "skipped"]
    assert summary[1][0] == "runs/gru model.keras"
    assert [float(v) for v in summary[1][1:4]] == pytest.approx([0.6, 0.8, 0.625]) and summary[1][4:] == ["5", "0"]
    assert (out / f"{stem}_confusion.png").read_bytes()[:8] == PNG_SIGNATURE


def test_report_compares_several_models(tmp_path, metrics):
    # A second model that gets every video right.
    perfect = compute_metrics(np.eye(6)[TARGETS], TARGETS, LABELS)
    written = write_report(tmp_path, {"lstm": metrics, "gru": perfect})
    names = {p.name for p in written}
    assert {"lstm_confusion.png", "gru_confusion.png", "summary.csv", "comparison.png"} <= names
    assert "gru_per_type.csv" not in names  # no type table for that one
    summary = read_csv(tmp_path / "summary.csv")
    assert [r[0] for r in summary[1:]] == ["lstm", "gru"]
    assert [float(v) for v in summary[2][1:4]] == [1.0, 1.0, 1.0]
    assert (tmp_path / "comparison.png").read_bytes()[:8] == PNG_SIGNATURE


def test_report_keeps_models_with_clashing_names_apart(tmp_path, metrics):
    written = write_report(tmp_path, {"a/m.keras": metrics, "a_m.keras": metrics})
    csvs = sorted(p.name for p in written if p.name.endswith("_confusion.csv"))
    assert csvs == ["a_m.keras-2_confusion.csv", "a_m.keras_confusion.csv"]


def test_confusion_png_for_101_classes(tmp_path):
    rng = np.random.default_rng(0)
    labels = [f"Class{i:03d}" for i in range(101)]
    targets = np.repeat(np.arange(101), 2)
    probs = rng.random((202, 101))
    probs[np.arange(202), targets] += 0.5  # mostly right
    m = compute_metrics(probs, targets, labels)
    written = write_report(tmp_path, {"big": m})
    png = tmp_path / "big_confusion.png"
    assert png in written and png.read_bytes()[:8] == PNG_SIGNATURE
    rows = read_csv(tmp_path / "big_confusion.csv")
    assert len(rows) == 102 and len(rows[0]) == 102
    assert sum(int(v) for r in rows[1:] for v in r[1:]) == 202


def test_no_per_type_when_no_class_has_a_type():
    import numpy as np

    from varec_cli.evaluation import compute_metrics

    probs = np.array([[0.9, 0.1], [0.2, 0.8]])
    metrics = compute_metrics(probs, np.array([0, 1]), ["MoveLeft", "MoveRight"], action_types={"Archery": "Sports"})
    assert metrics.per_type is None
    assert "per_type" not in metrics.to_json("m.keras")
