"""Rendering library progress (reporting.Reporter) with rich on stderr, for `train` and `evaluate`.

On a terminal: live bars for stages and epochs. Elsewhere (pipes, CI logs): plain lines only, one
per epoch, so logs stay readable.
"""

from __future__ import annotations

from varec_cli import console
from varec_cli.reporting import Reporter


def _fmt_logs(logs: dict[str, float]) -> str:
    parts = []
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if key in logs:
            parts.append(f"{key.replace('accuracy', 'acc')} {logs[key]:.4f}")
    if "seconds" in logs:
        parts.append(f"{logs['seconds']:.1f} s")
    return "  ".join(parts)


class RichReporter(Reporter):
    def __init__(self) -> None:
        self.console = console.err()
        self.live = self.console.is_terminal
        self._progress = None
        self._task = None
        self._epochs = 0

    # context manager: the live display lives as long as the command
    def __enter__(self) -> RichReporter:
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}"),
                console=self.console,
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _print(self, text: str, style: str | None = None) -> None:
        self.console.print(text, style=style, markup=False, highlight=False, soft_wrap=True)

    def info(self, message: str) -> None:
        self._print(message)

    def warning(self, message: str) -> None:
        from rich.markup import escape

        text = escape(" ".join(message.split()))
        self.console.print(f"[yellow]warning:[/yellow] {text}", markup=True, highlight=False, soft_wrap=True)

    def _start(self, description: str, total: int | None) -> None:
        if self._progress is not None:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task(description, total=total, metrics="")

    def stage(self, name: str, total: int | None) -> None:
        self._start(name, total)

    def advance(self, n: int = 1) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task, n)

    def stage_end(self) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None

    def epoch_begin(self, epoch: int, epochs: int, steps: int | None) -> None:
        self._epochs = epochs
        self._start(f"epoch {epoch}/{epochs}", steps)

    def batch_end(self, step: int, logs: dict[str, float]) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=step, metrics=_fmt_logs(logs))

    def epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.stage_end()
        self._print(f"epoch {epoch}/{self._epochs}  {_fmt_logs(logs)}")
