"""The console script's entry point. It imports the CLI (typer, rich and click: about 0.1 s) inside
main(), so that a Ctrl-C that early ends like any other: `interrupted`, exit 130, no traceback."""

from __future__ import annotations

import sys

from varec_cli.errors import ExitCode


def main() -> None:
    try:
        from varec_cli.cli import main as run
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(ExitCode.INTERRUPTED)
    run()
