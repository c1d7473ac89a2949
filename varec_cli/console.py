"""Rich consoles for the CLI layer: results on stdout, progress/warnings/errors on stderr.

Rich already honours NO_COLOR and drops styling when the stream is not a terminal.
"""

from __future__ import annotations

import sys


def out():
    """Console for results (tables, JSON lines)."""
    # Re-resolved each call so CliRunner's swapped sys.stdout is honoured.
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False)


def err():
    """Console for progress bars, warnings and error lines."""
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False)


def warn(message: str) -> None:
    err().print(f"[yellow]warning:[/yellow] {message}", markup=True, highlight=False)


def error_line(message: str) -> None:
    """One `error: ...` line on stderr for a failure that does not stop the command."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
