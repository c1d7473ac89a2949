"""`varec evaluate`: accuracy of one or more models on a dataset's test split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Literal, Optional

import typer

from varec_cli.commands import DATASET_HELP, MAX_CLIPS
from varec_cli.datasets.base import PARTS

Subset = Literal[PARTS]


def evaluate_command(
    dataset: str = typer.Option(..., "--dataset", "-d", metavar="DATASET", help=DATASET_HELP),
    models: List[str] = typer.Option(
        ..., "--model", "-m", metavar="MODEL", help="A model file or folder, or a registry name; repeat to compare models."
    ),
    split: int = typer.Option(1, "--split", metavar="N", min=1, max=3, help="Official train/test split (1, 2 or 3) for UCF101 and HMDB51."),
    clips: int = typer.Option(1, "--clips", metavar="K", min=1, max=MAX_CLIPS, help="Average over this many temporal views per video."),
    subset: Subset = typer.Option("test", "--subset", help="Which part of the dataset to score."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per model per line on stdout."),
    report: Optional[Path] = typer.Option(
        None, "--report", metavar="DIR", help="Write CSVs and PNGs (confusion matrices, comparison chart) to this folder."
    ),
    per_class: bool = typer.Option(False, "--per-class", help="Show every class's accuracy in the table."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", metavar="FRACTION", help="As given to train (for --subset val/train)."),
    seed: int = typer.Option(0, "--seed", metavar="N", min=0, max=2**32 - 1, help="As given to train (for --subset val/train)."),
    workers: Optional[int] = typer.Option(None, "--workers", metavar="N", min=1, help="Video decoding threads [default: cores, 2-8]."),
) -> None:
    """Score each MODEL on the dataset: top-1, top-5, mean class accuracy, per class and per action type."""
    from varec_cli import console
    from varec_cli.commands._models import open_model
    from varec_cli.commands._reporting import RichReporter
    from varec_cli.evaluate_run import evaluate_models

    if not 0 <= val_fraction < 1:
        raise typer.BadParameter("must be from 0 to below 1", param_hint="--val-fraction")
    from varec_cli.weights.resolve import repeated_model

    if (twice := repeated_model(list(models))) is not None:
        raise typer.BadParameter(f"{twice} is given twice", param_hint="--model")

    if report is not None:  # before any video is decoded, and without creating anything yet
        from varec_cli.files import check_folder_writable

        check_folder_writable(report, "cannot write the report into")
    with RichReporter() as reporter:
        run = evaluate_models(
            dataset, list(models), split=split, subset=subset, clips=clips, val_fraction=val_fraction, seed=seed,
            workers=workers, reporter=reporter, open_model=lambda name: open_model(name, "evaluate"),
        )
        written = []
        if report is not None:
            from varec_cli.evaluation import write_report

            written = write_report(
                report,
                {_unique_name(e.model, run, lambda path: path.stem): e.metrics for e in run.evaluations},
                {_unique_name(e.model, run, lambda path: path.stem): e.skipped for e in run.evaluations},
            )
    if as_json:
        for evaluation in run.evaluations:
            console.result_line(json.dumps(evaluation.to_json()))
    else:
        out = console.out()
        out.print(_summary_table(run))
        tables = [  # per type: None when no class is in the UCF101 type table
            _accuracy_table(
                run, "accuracy per action type", "action type", lambda m: dict(sorted((m.per_type or {}).items()))
            )
        ]
        if per_class or len(run.dataset.labels) <= 20:  # the classes scored, whatever the models know
            tables.append(_accuracy_table(run, "accuracy per class", "class", lambda m: m.per_class))
        for table in tables:
            if table is not None:
                out.print(table)
    if report is not None:
        reporter.info(f"report: {len(written)} files in {report}")


def _unique_name(model: str, run, part=lambda path: path.name) -> str:
    """The model's file name (`part` of its path: report files take the stem, `gru.keras` →
    `gru_confusion.csv`), or the model as given where two models of the run share that name."""
    names = [part(Path(e.model)) for e in run.evaluations]
    return part(Path(model)) if names.count(part(Path(model))) == 1 else model


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _summary_table(run):
    from rich.table import Table

    dataset = run.dataset
    title = f"{dataset.name} {run.subset}" + (f" split {dataset.split}" if dataset.split else "")
    table = Table(title=title, title_justify="left", show_edge=False)
    from varec_cli.evaluation import top_k_cell, top_k_name

    top_name = top_k_name([e.metrics for e in run.evaluations])
    for column in ("model", "top-1", top_name, "mean class acc", "videos", "skipped"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for e in run.evaluations:
        m = e.metrics
        table.add_row(
            _unique_name(e.model, run), _pct(m.top1), top_k_cell(m, top_name, _pct(m.top5)), _pct(m.mean_class_accuracy),
            str(m.videos),
            str(e.skipped),
        )
    return table


def _accuracy_table(run, title: str, row_name: str, accuracies):
    """One row per key of `accuracies(metrics)` (a dict), one column per model; None when empty."""
    from rich.table import Table

    keys: list[str] = []
    for e in run.evaluations:
        keys += [key for key in (accuracies(e.metrics) or {}) if key not in keys]
    if not keys:
        return None
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column(row_name)
    for e in run.evaluations:
        table.add_column(_unique_name(e.model, run), justify="right")
    for key in keys:
        table.add_row(key, *[_pct((accuracies(e.metrics) or {}).get(key)) for e in run.evaluations])
    return table
