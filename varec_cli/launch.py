"""The console script's entry point. It imports the CLI (typer, rich and click: about 0.1 s) inside
main(), so that a Ctrl-C that early ends like any other: `interrupted`, exit 130, no traceback."""

from __future__ import annotations

import sys

from varec_cli.errors import ExitCode


def _closed_stdio_to_devnull() -> None:
    """`varec ... 2>&-` or `>&-` starts the process without that descriptor (and Python without that
    sys stream). The first file varec opens would take its number, and native code's messages to
    stderr would land inside an output video; the missing stream also made every command fail. Such a
    descriptor is pointed at the null device instead: what went there is lost, as with `2>/dev/null`."""
    import os

    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: `fd` itself, unless a lower one is free too
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, "r" if fd == 0 else "w", encoding="utf-8", errors="surrogateescape", closefd=False))


def _unencodable_text_escaped() -> None:
    """A label the terminal's encoding cannot show (`schöpfen` on an ASCII or cp1252 console) is
    written escaped (`sch\\xf6pfen`), not a UnicodeEncodeError traceback half-way through a table."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):  # replaced by something without it (a test's capture)
            pass


def main() -> None:
    _closed_stdio_to_devnull()
    _unencodable_text_escaped()
    try:
        from varec_cli.cli import main as run
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(ExitCode.INTERRUPTED)
    run()
