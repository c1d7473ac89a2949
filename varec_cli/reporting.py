"""How library code (training, evaluation) reports progress, without printing: the Reporter the CLI
draws with rich (commands/_reporting.py) and tests and library users may replace."""

from __future__ import annotations


class Reporter:
    """Progress sink for library code (training, evaluation). The default ignores everything; the CLI
    subclasses it to draw rich progress on stderr. Library code never prints."""

    def info(self, message: str) -> None:
        """A fact worth a line: where training runs, clip counts, a cache hit rate."""

    def warning(self, message: str) -> None:
        """Something went wrong but the run goes on (a video skipped)."""

    def stage(self, name: str, total: int | None) -> None:
        """A counted stage begins (decoding, feature extraction, evaluation)."""

    def advance(self, n: int = 1) -> None:
        """`n` more items of the current stage are done."""

    def stage_end(self) -> None:
        """The current stage is over."""

    def epoch_begin(self, epoch: int, epochs: int, steps: int | None) -> None:
        """Epoch `epoch` (1-based) of `epochs` starts; `steps` batches when known."""

    def batch_end(self, step: int, logs: dict[str, float]) -> None:
        """Batch `step` (1-based) is done; running loss/accuracy in `logs`."""

    def epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        """Epoch `epoch` is done; its train and validation metrics, and `seconds`."""
