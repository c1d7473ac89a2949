"""Evaluation metrics and report files, from class probabilities (numpy only; matplotlib for plots).

    metrics = compute_metrics(probabilities, targets, labels, action_types=dataset.action_types())
    metrics.to_json(model="gru.keras", skipped=2)      # the `varec evaluate --json` object
    write_report("report/", {"lstm": m1, "gru": m2})   # CSVs and PNGs, plus the comparison

Top-k ties are broken toward the lower class index, as `argmax` does, so top-1 and the confusion
matrix always agree.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from varec_cli.errors import VarecError
from varec_cli.paths import expand_user

_CELL_TEXT_MAX_CLASSES = 20


@dataclass(frozen=True)
class Metrics:
    """Scores of one model on one set of videos.

    `confusion[i, j]` counts videos of true class i predicted (top-1) as class j. `per_class`
    and `mean_class_accuracy` cover only classes with at least one video. `per_type` is the top-1
    accuracy over the videos of each action type (None when no type table was given).
    """

    labels: list[str]
    top1: float
    top5: float
    top_k: int
    mean_class_accuracy: float
    per_class: dict[str, float]
    confusion: np.ndarray
    videos: int
    per_type: dict[str, float] | None = None
    action_types: dict[str, str] | None = None

    @property
    def support(self) -> np.ndarray:
        """Videos per true class, in label order."""
        return self.confusion.sum(axis=1)

    def to_json(self, model: str, skipped: int = 0) -> dict:
        """The machine-readable summary (`evaluate --json`, one line per model): these keys, plus
        `per_type` when there is one."""
        data = {
            "model": str(model),
            "top1": float(self.top1),
            "top5": float(self.top5),
            "mean_class_accuracy": float(self.mean_class_accuracy),
            "videos": int(self.videos),
            "skipped": int(skipped),
            "per_class": {label: float(acc) for label, acc in self.per_class.items()},
        }
        if self.per_type is not None:
            data["per_type"] = {kind: float(acc) for kind, acc in self.per_type.items()}
        return data


def _type_of(label: str, action_types: dict[str, str]) -> str | None:
    if label in action_types:
        return action_types[label]
    lowered = {name.lower(): kind for name, kind in action_types.items()}
    return lowered.get(label.lower())


def compute_metrics(
    probabilities: np.ndarray,
    targets: np.ndarray,
    labels: list[str],
    *,
    action_types: dict[str, str] | None = None,
) -> Metrics:
    """Top-1, top-k (k = min(5, C)), mean class accuracy, per-class and per-type accuracy, confusion.

    `probabilities` is (N, C) scores (any monotonic score works: only the ranking matters),
    `targets` (N,) true label indices into `labels`. Raises VarecError when N is 0 (nothing was
    scored, e.g. every video was skipped) and ValueError on inconsistent shapes or labels.
    """
    scores = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(targets)
    num_classes = len(labels)
    if scores.ndim != 2 or scores.shape[1] != num_classes:
        raise ValueError(f"probabilities must have shape (N, {num_classes}), got {scores.shape}")
    if truth.shape != (scores.shape[0],):
        raise ValueError(f"targets must have shape ({scores.shape[0]},), got {truth.shape}")
    if scores.shape[0] == 0:
        raise VarecError("nothing to evaluate: no video was scored")
    if not np.issubdtype(truth.dtype, np.integer):
        if not np.all(np.equal(np.mod(truth, 1), 0)):
            raise ValueError("targets must be integer class indices")
        truth = truth.astype(np.int64)
    if truth.min() < 0 or truth.max() >= num_classes:
        raise ValueError(f"targets must lie in [0, {num_classes}), got {truth.min()}..{truth.max()}")
    if not np.all(np.isfinite(scores)):
        raise ValueError("probabilities contain NaN or infinity")

    n = scores.shape[0]
    k = min(5, num_classes)
    # Stable sort of the negated scores: ties keep the lower index first, like argmax.
    ranking = np.argsort(-scores, axis=1, kind="stable")
    top1_hits = ranking[:, 0] == truth
    topk_hits = np.any(ranking[:, :k] == truth[:, None], axis=1)

    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (truth, ranking[:, 0]), 1)
    support = confusion.sum(axis=1)
    present = np.flatnonzero(support)
    class_acc = {int(c): confusion[c, c] / support[c] for c in present}

    per_type = None
    if action_types is not None:
        hits: dict[str, list[int]] = {}
        for c in present:
            kind = _type_of(labels[c], action_types)
            if kind is not None:
                tally = hits.setdefault(kind, [0, 0])
                tally[0] += int(confusion[c, c])
                tally[1] += int(support[c])
        # None, not {}, when no evaluated class is in the type table: there is no per-type accuracy.
        per_type = {kind: correct / total for kind, (correct, total) in sorted(hits.items())} or None

    return Metrics(
        labels=list(labels),
        top1=float(top1_hits.mean()),
        top5=float(topk_hits.mean()),
        top_k=k,
        mean_class_accuracy=float(np.mean(list(class_acc.values()))),
        per_class={labels[c]: float(acc) for c, acc in class_acc.items()},
        confusion=confusion,
        videos=int(n),
        per_type=per_type,
        action_types=dict(action_types) if action_types is not None else None,
    )


# ---------------------------------------------------------------------------------------- reports


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")
    return slug or "model"


def _file_stems(names: list[str]) -> dict[str, str]:
    """A distinct, filesystem-safe file stem per model name."""
    stems: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = _slug(name)
        stem, n = base, 1
        while stem.lower() in used:
            n += 1
            stem = f"{base}-{n}"
        used.add(stem.lower())
        stems[name] = stem
    return stems


def _write_csv(path: Path, header: list, rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _fmt(value: float) -> str:
    return f"{value:.6f}"


def _confusion_png(path: Path, metrics: Metrics, title: str) -> Path:
    from matplotlib.figure import Figure

    c = len(metrics.labels)
    support = metrics.support
    # Colour by row-normalised fraction, so classes with few and many videos read alike.
    fractions = np.divide(
        metrics.confusion, support[:, None], out=np.zeros(metrics.confusion.shape), where=support[:, None] > 0
    )
    side = min(40.0, max(6.0, 0.16 * c + 3.0))  # inches; 101 classes -> about 19
    row_points = side * 72 * 0.8 / c  # the height of one matrix row, in points
    tick_font = float(np.clip(0.6 * row_points, 4.0, 8.0))
    fig = Figure(figsize=(side + 1.5, side), dpi=100 if c <= 30 else 150, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, shrink=0.6, label="fraction of the true class")
    ticks = np.arange(c)
    ax.set_xticks(ticks, labels=metrics.labels, rotation=90, fontsize=tick_font)
    ax.set_yticks(ticks, labels=metrics.labels, fontsize=tick_font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if c <= _CELL_TEXT_MAX_CLASSES:
        for i in range(c):
            for j in range(c):
                count = int(metrics.confusion[i, j])
                if count:
                    colour = "white" if fractions[i, j] > 0.5 else "black"
                    ax.text(j, i, str(count), ha="center", va="center", color=colour, fontsize=8)
    fig.savefig(path, format="png")
    return path


def top_k_name(metrics: list[Metrics]) -> str:
    """The heading of the `top5` score: `top-5`, or `top-3` for models of 3 outputs (where top-5 would
    count every video); for models of several kinds, `top-5 / top-C` or `top-C` (cells then say which,
    see top_k_cell). C is the model's outputs, not the dataset's classes: a 6-class model ranks 6."""
    ks = {m.top_k for m in metrics}
    if len(ks) == 1:
        return f"top-{ks.pop()}"
    return "top-5 / top-C" if 5 in ks else "top-C"


def top_k_cell(metrics: Metrics, heading: str, value: str) -> str:
    """A `top5` value under a mixed heading says which it is: `100.0% (top-2)`."""
    return f"{value} (top-{metrics.top_k})" if heading in ("top-5 / top-C", "top-C") and metrics.top_k != 5 else value


def _comparison_png(path: Path, metrics_by_model: dict[str, Metrics]) -> Path:
    from matplotlib.figure import Figure

    names = list(metrics_by_model)
    heading = top_k_name(list(metrics_by_model.values()))
    groups = ["top-1", heading, "mean class acc."]
    values = np.array(
        [[m.top1, m.top5, m.mean_class_accuracy] for m in metrics_by_model.values()], dtype=np.float64
    )
    width = 0.8 / len(names)
    fig = Figure(figsize=(max(6.0, 2.0 + 1.2 * len(names) * len(groups) * 0.5), 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(groups))
    for index, (name, metrics) in enumerate(metrics_by_model.items()):
        offset = (index - (len(names) - 1) / 2) * width
        bars = ax.bar(x + offset, values[index], width, label=name)
        shown = [f"{v:.1%}" for v in values[index]]
        shown[1] = top_k_cell(metrics, heading, shown[1])  # as the table marks a top-C score
        ax.bar_label(bars, labels=shown, fontsize=7, padding=2)
    ax.set_xticks(x, labels=groups)
    ax.set_ylim(0, 1.25)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("accuracy")
    ax.set_title("model comparison")
    ax.legend(fontsize=8, loc="upper center", ncols=min(len(names), 4), frameon=False)
    fig.savefig(path, format="png")
    return path


def write_report(
    directory: str | Path, metrics_by_model: dict[str, Metrics], skipped_by_model: dict[str, int] | None = None
) -> list[Path]:
    """Write the evaluation report into `directory` (created if needed); returns the files written.

    Per model (file stem = the model name made filesystem-safe):
      `<stem>_confusion.csv`  header `true\\predicted,<labels...>`, one row per true class
      `<stem>_confusion.png`  row-normalised heat map (counts in cells up to 20 classes)
      `<stem>_per_class.csv`  label,videos,correct,accuracy[,action_type]
      `<stem>_per_type.csv`   action_type,videos,accuracy (when per-type accuracy exists)
    Always `summary.csv` (model,top1,top5,mean_class_accuracy,videos,skipped: one row per model; skipped
    = videos that could not be decoded, left out of the scores);
    with several models also `comparison.png`, a grouped bar chart (the LSTM-vs-GRU comparison); with
    one model an earlier report's `comparison.png` is removed. Other models' files of an earlier report
    into the same folder stay (summary.csv lists this report's models).
    """
    if not metrics_by_model:
        raise ValueError("write_report needs at least one model's metrics")
    out = expand_user(directory)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VarecError(f"cannot write the report into {out}: {exc.strerror or exc}") from None

    written: list[Path] = []
    stems = _file_stems(list(metrics_by_model))
    try:
        for name, metrics in metrics_by_model.items():
            stem = stems[name]
            labels = metrics.labels
            written.append(
                _write_csv(
                    out / f"{stem}_confusion.csv",
                    ["true\\predicted", *labels],
                    [[label, *map(int, row)] for label, row in zip(labels, metrics.confusion)],
                )
            )
            types = metrics.action_types if metrics.per_type is not None else None
            header = ["label", "videos", "correct", "accuracy"] + (["action_type"] if types is not None else [])
            rows = []
            for index, label in enumerate(labels):
                if label not in metrics.per_class:
                    continue
                row = [label, int(metrics.support[index]), int(metrics.confusion[index, index]),
                       _fmt(metrics.per_class[label])]
                if types is not None:
                    row.append(_type_of(label, types) or "")
                rows.append(row)
            written.append(_write_csv(out / f"{stem}_per_class.csv", header, rows))
            if metrics.per_type is not None and types is not None:
                counts: dict[str, int] = {}
                for index, label in enumerate(labels):
                    kind = _type_of(label, types)
                    if kind is not None:
                        counts[kind] = counts.get(kind, 0) + int(metrics.support[index])
                written.append(
                    _write_csv(
                        out / f"{stem}_per_type.csv",
                        ["action_type", "videos", "accuracy"],
                        [[kind, counts.get(kind, 0), _fmt(acc)] for kind, acc in metrics.per_type.items()],
                    )
                )
            title = f"{name}: top-1 {metrics.top1:.1%}, {metrics.videos} videos"
            written.append(_confusion_png(out / f"{stem}_confusion.png", metrics, title))

        written.append(
            _write_csv(
                out / "summary.csv",
                ["model", "top1", "top5", "mean_class_accuracy", "videos", "skipped"],
                [
                    [name, _fmt(m.top1), _fmt(m.top5), _fmt(m.mean_class_accuracy), m.videos,
                     (skipped_by_model or {}).get(name, 0)]
                    for name, m in metrics_by_model.items()
                ],
            )
        )
        if len(metrics_by_model) > 1:
            written.append(_comparison_png(out / "comparison.png", metrics_by_model))
        else:  # an earlier report's chart of other models would sit beside this summary as if it were its
            (out / "comparison.png").unlink(missing_ok=True)
    except OSError as exc:
        raise VarecError(f"cannot write the report in {out}: {exc.strerror or exc}") from exc
    return written
