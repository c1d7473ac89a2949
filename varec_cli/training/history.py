"""The training curves beside the model: `<model>.history.csv` and `<model>.history.png`."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from varec_cli.files import write_atomically

COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")


def history_paths(output: Path) -> tuple[Path, Path]:
    stem = Path(output).with_suffix("")
    return stem.with_name(stem.name + ".history.csv"), stem.with_name(stem.name + ".history.png")


def write_csv(path: Path, history: list[dict[str, float]]) -> Path:
    columns = [c for c in COLUMNS if any(c in row for row in history)]
    columns += sorted({k for row in history for k in row} - set(columns))
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(columns)
    for row in history:
        writer.writerow(["" if row.get(c) is None else (int(row[c]) if c == "epoch" else f"{row[c]:.6g}") for c in columns])
    return write_atomically(path, text.getvalue().encode("utf-8"))


def write_plot(path: Path, history: list[dict[str, float]], *, best_epoch: int | None = None, title: str = "") -> Path:
    """Loss (left) and accuracy (right) per epoch, train and validation, the best epoch marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(10, 4), dpi=100)
    for position, (metric, label) in enumerate((("loss", "loss"), ("accuracy", "accuracy")), 1):
        axes = figure.add_subplot(1, 2, position)
        for key, name in ((metric, "train"), (f"val_{metric}", "validation")):
            points = [(e, row[key]) for e, row in zip(epochs, history) if row.get(key) is not None]
            if points:
                axes.plot(*zip(*points), marker="o", markersize=3, label=name)
        if best_epoch:
            axes.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch ({best_epoch})")
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        if metric == "accuracy":
            axes.set_ylim(0, 1.02)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, format="png")
    return write_atomically(path, image.getvalue())
