"""Rich consoles for the CLI layer: results on stdout, progress/warnings/errors on stderr.

Rich already honours NO_COLOR and drops styling when the stream is not a terminal. Markup is off:
labels, file names and model descriptions are the user's text, and `[bold]wave` must print as
itself, in tables too; the few styled strings ask for markup where they are printed.
"""

from __future__ import annotations

import errno
import os
import sys


class StdoutClosed(BrokenPipeError):
    """Whatever read stdout went away (`varec ... | head -1`): it has what it wanted. Only this is
    taken for that: a BrokenPipeError from stderr or another pipe is a failure like any other.
    Raised by `_stdout_closed()` alone, once stdout points at /dev/null."""


def _stdout_closed() -> StdoutClosed:
    """Point stdout at /dev/null, so that later writes and the flush at exit do not fail, and say so."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return StdoutClosed(errno.EPIPE, "the reader of stdout went away")


def write_undecodable_names_as_they_are() -> None:
    """A file name that is not UTF-8 (Latin-1 bytes from an old disk) reaches Python as lone
    surrogates, which a UTF-8 stdout refuses with UnicodeEncodeError at the first line that names the
    file. Written back as the bytes they stand for, as `ls` does, the name shows as the terminal shows
    it elsewhere, and a script reading the output gets the file's real name."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)  # a TextIOWrapper; a test's StringIO has none
        if reconfigure is not None and stream.errors == "strict":
            try:
                reconfigure(errors="surrogateescape")
            except (ValueError, OSError):  # closed, or a wrapper that cannot change now
                pass


def result_line(text: str) -> None:
    """One line of results (JSON, a label) on stdout."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        raise _stdout_closed() from None


def stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it (`| head -1` has its line), found without
    writing to it: a stream whose label holds still writes nothing for as long as it likes. False where
    it cannot be told (not a pipe; no poll(), as on Windows)."""
    import select
    import stat

    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode) or not hasattr(select, "poll"):
            return False
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, ValueError, OSError):  # stdout replaced or closed: nothing to tell
        return False


def stop_writing_results() -> StdoutClosed:
    """stdout's reader went away (stdout_reader_gone): stdout goes to /dev/null from now on."""
    return _stdout_closed()


def flush_results() -> None:
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise _stdout_closed() from None


def out():
    """Console for results (tables, JSON lines)."""
    # Re-resolved each call so CliRunner's swapped sys.stdout is honoured.
    from rich.console import Console

    class ResultsConsole(Console):
        def on_broken_pipe(self) -> None:
            """Rich exits 1 here, without a word; varec's commands and its CLI take a reader that went
            away (`varec predict DIR | head -1`) as the end of what was wanted: exit 0 (see cli.py)."""
            self.quiet = True
            raise _stdout_closed()

        def _render_buffer(self, buffer) -> str:
            """Off a terminal, lines end at their last character: rich pads table rows to the table's
            width, which leaves trailing blanks in what grep, diff and scripts read."""
            text = super()._render_buffer(buffer)
            if self.is_terminal:
                return text
            return "\n".join(line.rstrip(" ") for line in text.split("\n"))

    # Off a terminal (a pipe, a file) tables take the width of their content, not 80 columns: a long
    # label or path stays whole on its line, for grep and scripts. COLUMNS still rules where it is set.
    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return ResultsConsole(file=sys.stdout, highlight=False, markup=False, width=1000 if wide else None)


def fits(console, renderable) -> bool:
    """Whether `renderable` (a table) shows whole within `console`'s width, no column cut or folded."""
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update_width(1 << 16), renderable).maximum <= console.width


def err():
    """Console for progress bars, warnings and error lines. Off a terminal (a log file, a pipe) lines
    are not wrapped: rich would cut them at 80 columns, mid-path."""
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False, markup=False, soft_wrap=not sys.stderr.isatty())


def warn(message: str) -> None:
    from rich.markup import escape

    err().print(f"[yellow]warning:[/yellow] {escape(message)}", markup=True, highlight=False)


def error_line(message: str) -> None:
    """One `error: ...` line on stderr: a failure the command goes on after (one bad video of
    several), or, from cli.py, the one that ended it."""
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
