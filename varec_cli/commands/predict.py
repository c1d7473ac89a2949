"""`varec predict`: classify video files."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

from varec_cli.commands import MAX_CLIPS
from varec_cli.commands._models import MODEL_HELP
from varec_cli.errors import ExitCode


def predict_command(
    videos: List[str] = typer.Argument(  # str, not Path: Path would fold a URL's // into /
        ..., metavar="VIDEO", help="Video files, or directories searched recursively for videos."
    ),
    model: Optional[str] = typer.Option(None, "--model", "-m", metavar="MODEL", help=MODEL_HELP),
    top_k: int = typer.Option(5, "--top-k", "-k", metavar="K", min=1, help="How many labels to show per video."),
    clips: int = typer.Option(1, "--clips", metavar="K", min=1, max=MAX_CLIPS, help="Average over this many temporal views per video."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per video per line on stdout."),
) -> None:
    """Classify each VIDEO and show its top-k actions."""
    from rich.markup import escape

    from varec_cli import console, runtime
    from varec_cli.commands._models import open_model
    from varec_cli.predict import classify_videos, collect_videos, prefetch_clips
    from varec_cli.text import counted, seconds

    if any(not video.strip() for video in videos):  # a script's unset "$CLIP": not the working folder, searched whole
        raise typer.BadParameter("an empty name is no video", param_hint="VIDEO")
    runtime.request_fast_exit()  # nothing to flush but stdout/stderr: skip TensorFlow's teardown
    videos_found, problems, warnings = collect_videos(videos)
    for warning in warnings:
        console.warn(warning)
    for problem in problems[:-1] if not videos_found else problems:
        console.error_line(str(problem))
    if not videos_found:
        raise problems[-1]
    failures = len(problems)
    prefetched = prefetch_clips(model, videos_found, clips)  # decodes while TensorFlow loads
    classifier = open_model(model, "predict")
    out = console.out()
    results = classify_videos(classifier, videos_found, top_k=top_k, clips=clips, prefetched=prefetched)
    try:
        for video, result in results:
            if isinstance(result, Exception):
                failures += 1
                console.error_line(str(result))
                continue
            if result.warning:
                console.warn(result.warning)
            if as_json:
                console.result_line(json.dumps(result.to_json()))
            else:
                # The video's name on a line of its own: a table title would wrap to the table's width.
                out.print(
                    f"[bold]{escape(str(result.video))}[/bold]  ({counted(result.frames, 'frame')}, "
                    f"{'no frame rate' if result.seconds is None else seconds(result.seconds)})",
                    markup=True, soft_wrap=True,
                )
                out.print(_prediction_table(result))
                console.flush_results()
    except console.StdoutClosed:  # `varec predict DIR --json | head -1`: the reader has what it wanted
        pass
    if failures:
        raise typer.Exit(ExitCode.FAILURE)


def _prediction_table(result):
    from rich.table import Table

    table = Table(show_edge=False)
    table.add_column("#", justify="right")
    table.add_column("label", overflow="fold")  # a long label wraps, whole, rather than ending in ...
    table.add_column("probability", justify="right")
    for rank, (label, score) in enumerate(result.predictions, 1):
        table.add_row(str(rank), label, f"{score:.3f}")
    return table
