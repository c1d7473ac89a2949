"""`varec annotate`: the predicted action drawn on every frame of a copy of a video."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import typer

from varec_cli.commands._models import MODEL_HELP
from varec_cli.paths import expand_user


def annotate_command(
    video: Path = typer.Argument(..., metavar="VIDEO", help="The video to annotate."),
    output: Path = typer.Option(
        ..., "--output", "-o", metavar="OUT", help="The annotated video to write: .mp4 / .m4v (H.264 or MPEG-4) or .avi (MJPG)."
    ),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", metavar="MODEL",
        help=MODEL_HELP,
    ),
    window: Optional[float] = typer.Option(
        None, "--window", metavar="SECONDS",
        help="Seconds of video per classification (default: the model's clip span); 0 classifies the whole video once.",
    ),
    stride: Optional[float] = typer.Option(
        None, "--stride", metavar="SECONDS", help="Seconds between the starts of two windows (default: half the window)."
    ),
    top_k: int = typer.Option(1, "--top-k", "-k", metavar="K", min=1, help="Labels drawn per frame; more than 1 adds probability bars."),
    font_scale: Optional[float] = typer.Option(
        None, "--font-scale", metavar="SCALE", help="Text size (OpenCV font scale; default follows the frame size, 1.0 at 720p)."
    ),
    timeline: Optional[str] = typer.Option(
        None, "--timeline", metavar="FILE.json",
        help="Also write the labelled segments as JSON [{start, end, label, score}]; '-' prints them on stdout.",
    ),
    show: bool = typer.Option(False, "--show", help="Show the frames in a window as they are written (q or Esc closes it)."),
) -> None:
    """Write OUT: VIDEO with the action predicted for each stretch of it drawn on every frame."""
    from varec_cli import console
    from varec_cli.annotate import annotate_video, check_paths
    from varec_cli.commands._models import open_model
    from varec_cli.text import counted
    from varec_cli.video.writer import same_file, sound_note

    if window is not None and not 0 <= window < math.inf:  # checked here: typer's range check calls nan "less than 0"
        raise typer.BadParameter("must be a number of seconds, 0 or more", param_hint="--window")
    if stride is not None and not 0 < stride < math.inf:
        raise typer.BadParameter("must be a positive number of seconds", param_hint="--stride")
    if stride is not None and window == 0:
        raise typer.BadParameter("has no meaning with --window 0 (the whole video is one window)", param_hint="--stride")
    if stride is not None and window is not None and stride > window + 1e-9:
        raise typer.BadParameter(
            f"{stride:g} s is longer than the window ({window:g} s): some frames would have no window",
            param_hint="--stride",
        )
    if font_scale is not None and not 0 < font_scale < math.inf:
        raise typer.BadParameter("must be a positive number", param_hint="--font-scale")
    if timeline is not None and not timeline.strip():  # a script's unset "$TIMELINE": not "no timeline"
        raise typer.BadParameter("is empty: give a file, or - for stdout", param_hint="--timeline")
    timeline_to_stdout = timeline == "-"
    timeline_file = Path(timeline) if timeline and not timeline_to_stdout else None
    model_file = expand_user(model) if model else None
    if timeline_file is not None and model_file is not None and model_file.exists() and same_file(timeline_file, model_file):
        raise typer.BadParameter(f"{timeline} is the model file; give another file for the timeline", param_hint="--timeline")

    check_paths(video, output, timeline_file)  # one-line errors before the model loads or a frame is read
    classifier = open_model(model, "annotate")
    if stride is not None and window is None:  # the default window is the model's: known only now
        from varec_cli.annotate import default_window_seconds

        if stride > (span := default_window_seconds(classifier)) + 1e-9:
            raise typer.BadParameter(
                f"{stride:g} s is longer than the window ({span:g} s, the model's clip span): some frames would "
                "have no window; give a --window at least as long",
                param_hint="--stride",
            )

    err = console.err()
    with _ProgressView(err) as progress:
        result = annotate_video(
            classifier, video, output,
            window=window, stride=stride, top_k=top_k, font_scale=font_scale, timeline=timeline_file, show=show,
            on_progress=progress.update, on_warning=progress.warn,
        )

    summary = (
        f"wrote {result.output}: {counted(result.frames, 'frame')}, {result.width}x{result.height}, {result.fps:g} fps, "
        f"codec {result.codec}{sound_note(result.output, result.audio, result.audio_left_out)}; {counted(len(result.windows), 'window')}"
    )
    if result.window_frames is not None and result.frames < result.window_frames:
        summary += f" (the whole video: shorter than the {result.window_frames}-frame window)"
    elif result.window_frames is not None:
        summary += f" of {counted(result.window_frames, 'frame')} every {result.stride_frames}"
    if timeline_to_stdout:
        console.result_line(json.dumps([s.to_json() for s in result.segments]))
        err.print(summary, markup=False, highlight=False, soft_wrap=True)
        return
    out = console.out()
    out.print(summary, markup=False, highlight=False, soft_wrap=True)
    if result.timeline is not None:
        out.print(f"timeline: {result.timeline}", markup=False, highlight=False, soft_wrap=True)
    out.print(_segment_table(result.segments))


def _segment_table(segments):
    from rich.table import Table

    table = Table(show_edge=False)
    table.add_column("start", justify="right")
    table.add_column("end", justify="right")
    table.add_column("label", overflow="fold")  # a long label wraps, whole, rather than ending in ...
    table.add_column("score", justify="right")
    for segment in segments:
        table.add_row(f"{segment.start:.2f}", f"{segment.end:.2f}", segment.label, f"{segment.score:.3f}")
    return table


class _ProgressView:
    """A rich progress bar per stage (frames, fps, ETA) on stderr; silent when stderr is not a terminal."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = console
        self.progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            _FpsColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()

    def update(self, stage: str, done: int, total: int | None) -> None:
        task = self.tasks.get(stage)
        if task is None:
            task = self.tasks[stage] = self.progress.add_task(stage, total=total)
        self.progress.update(task, completed=done, total=total)

    def warn(self, message: str) -> None:
        # Printed through the progress console so that it lands above a live bar, not inside it.
        from rich.text import Text

        self.console.print(Text.assemble(("warning:", "yellow"), " ", message), soft_wrap=True)


def _fps_column_class():
    from rich.progress import ProgressColumn
    from rich.text import Text

    class FpsColumn(ProgressColumn):
        """Frames per second of the task."""

        def render(self, task):
            speed = task.finished_speed or task.speed
            return Text("    - fps" if speed is None else f"{speed:5.1f} fps", style="progress.data.speed")

    return FpsColumn


def _FpsColumn():  # noqa: N802 - a factory standing in for the class, so rich is imported lazily
    return _fps_column_class()()
