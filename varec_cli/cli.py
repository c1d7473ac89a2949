"""The `varec` command: options in, a library call, rich output out.

This is the one place where errors become exit codes (see errors.ExitCode). Command modules
under varec_cli/commands import only light modules at import time, so `varec --help` stays instant.
"""

from __future__ import annotations

import errno
import sys

import typer
from typer.core import TyperGroup

from varec_cli import __version__, paths
from varec_cli.console import StdoutClosed
from varec_cli.errors import ExitCode, Terminated, VarecError, stop_code

# What a user's paths or disk cause; any other OSError reaching the CLI is a bug, shown as a traceback.
_USER_OS_ERRORS = {
    errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
    errno.ENAMETOOLONG, errno.ELOOP,  # a name over the file system's limit, a loop of symbolic links
}


def _failure(message: str) -> typer.Exit:
    """`error: <message>` on stderr; the exit (status 1) for the caller to raise."""
    from varec_cli.console import error_line

    error_line(message)
    return typer.Exit(ExitCode.FAILURE)


class VarecGroup(TyperGroup):
    """Turns VarecError into `error: <one line>` + exit 1 and Ctrl-C into exit 130."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except VarecError as exc:
            if paths.debug():
                raise
            raise _failure(str(exc) or type(exc).__name__) from None
        except StdoutClosed:  # `varec ... | head -1`: whatever read stdout has what it wanted
            raise typer.Exit(ExitCode.OK) from None
        except OSError as exc:
            # A path the user gave (VAREC_CACHE_DIR naming a file, an unwritable folder) or a full
            # disk, met where no library code wrapped it: still one line. Others are bugs: traceback.
            if paths.debug() or exc.errno not in _USER_OS_ERRORS:
                raise
            reason = exc.strerror or type(exc).__name__
            where = " -> ".join(str(name) for name in (exc.filename, exc.filename2) if name)
            raise _failure(f"{where}: {reason}" if where else reason) from None
        except RuntimeError as exc:
            # pathlib's resolve() on a loop of symbolic links the user named: one line. Others are bugs.
            if paths.debug() or not str(exc).startswith("Symlink loop"):
                raise
            raise _failure(str(exc)) from None
        except KeyboardInterrupt as stop:
            if paths.debug():
                raise
            print(f"terminated ({stop.name})" if isinstance(stop, Terminated) else "interrupted", file=sys.stderr)
            raise typer.Exit(stop_code(stop)) from None


app = typer.Typer(
    cls=VarecGroup,
    name="varec",
    help="Recognise human actions in videos (CNN per frame + LSTM/GRU over time).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=(
        "\b\nEnvironment:\n"
        "  VAREC_CACHE_DIR  downloaded models and weights, compiled graphs, training's feature cache\n"
        "                   (`varec cache dir` shows it)\n"
        "  VAREC_DATA_DIR   the folder where dataset names (ucf101, hmdb51) are looked up\n"
        "  VAREC_REGISTRY   a TOML file of models of your own or mirrors (`varec models --help`)\n"
        "  VAREC_OFFLINE=1  never touch the network\n"
        "  VAREC_DEBUG=1    tracebacks instead of one-line errors\n"
        "  KERAS_BACKEND    the Keras backend for varec's own models (default tensorflow; jax where installed)\n"
        "  NO_COLOR         no colours"
    ),
)


def _version_callback(value: bool) -> None:
    if value:
        print(f"varec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Recognise human actions in videos (CNN per frame + LSTM/GRU over time)."""
    from varec_cli.console import write_undecodable_names_as_they_are
    from varec_cli.runtime import default_to_tensorflow_backend

    default_to_tensorflow_backend()
    write_undecodable_names_as_they_are()


from varec_cli.commands import annotate as _annotate  # noqa: E402
from varec_cli.commands import cache as _cache  # noqa: E402
from varec_cli.commands import download as _download  # noqa: E402
from varec_cli.commands import evaluate as _evaluate  # noqa: E402
from varec_cli.commands import info as _info  # noqa: E402
from varec_cli.commands import models as _models  # noqa: E402
from varec_cli.commands import predict as _predict  # noqa: E402
from varec_cli.commands import stream as _stream  # noqa: E402
from varec_cli.commands import train as _train  # noqa: E402

# Short summaries for `varec --help` (click would cut the docstrings' first lines at 45 characters).
app.command("predict", short_help="Classify videos: their top-k actions.")(_predict.predict_command)
app.command("info", short_help="What a model file is: labels, clip spec, provenance.")(_info.info_command)
app.command("train", short_help="Train or fine-tune a model on a dataset.")(_train.train_command)
app.command("evaluate", short_help="Score models on a dataset's test or val videos.")(_evaluate.evaluate_command)
app.command("download", short_help="Fetch models and weights into the cache, verified.")(_download.download_command)
app.command("models", short_help="What can be downloaded, and what is cached.", epilog=_models.REGISTRY_HELP)(
    _models.models_command
)
app.command("cache", short_help="Show or clear the weights cache.")(_cache.cache_command)
app.command("annotate", short_help="Burn the predicted actions into a copy of a video.")(_annotate.annotate_command)
app.command("stream", short_help="Live labels from a camera, a stream or a file.")(_stream.stream_command)


def main() -> None:
    """Console-script entry point."""
    _stop_like_ctrl_c_on_termination()
    _carry_on_when_stderr_goes_away()
    try:
        app()
    except KeyboardInterrupt as stop:  # raised outside a command, e.g. during option parsing
        sys.exit(stop_code(stop))
    except SystemExit as done:
        _exit_fast_if_requested(done.code)
        raise


def _stop_like_ctrl_c_on_termination() -> None:
    """SIGTERM and SIGHUP end the process at once by default, leaving a half-written output's temp
    file behind and a stream's recording lost; raised as Terminated instead, they go the Ctrl-C way."""
    import signal

    def stop(signum, frame):
        raise Terminated(signum)

    for name in ("SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:  # nohup ignores SIGHUP: keep it so
            signal.signal(number, stop)


def _carry_on_when_stderr_goes_away() -> None:
    """Whatever read stderr may go away (`2> >(head -1)`). Its messages then go to /dev/null and the
    command carries on: the results on stdout and the exit code still tell how it went. Only a closed
    stdout ends a command early (console.StdoutClosed); a broken stderr would otherwise end it at its
    first warning with a traceback nobody sees, its results unwritten."""
    import io
    import os

    class StderrThatMayGoAway(io.BufferedWriter):
        """The bytes layer, so that a text layer of anyone's over `sys.stderr.buffer` (click makes its
        own where stderr's encoding is ASCII) goes through it too. Buffered in C, as Python's own
        stderr is: a signal while writing neither loses nor repeats a line."""

        def write(self, data) -> int:
            try:
                return super().write(data)
            except BrokenPipeError:
                self._gone()
                return len(data)

        def flush(self) -> None:
            try:
                super().flush()
            except BrokenPipeError:
                self._gone()
                super().flush()  # what was waiting goes to /dev/null

        def _gone(self) -> None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, self.fileno())
            finally:
                os.close(devnull)

    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a file (an embedding host's stream): leave it be
    sys.stderr.flush()
    sys.stderr = io.TextIOWrapper(  # line-buffered, as Python's own stderr
        StderrThatMayGoAway(io.FileIO(fd, "w", closefd=False)), encoding=sys.stderr.encoding,
        errors="backslashreplace", line_buffering=True,
    )


def _exit_fast_if_requested(code) -> None:
    """End the process now, skipping the interpreter's teardown, when the command asked for it
    (runtime.request_fast_exit). Only here, in a real process: never under a test runner."""
    from varec_cli import runtime

    if not runtime.fast_exit_requested() or not (code is None or isinstance(code, int)):
        return
    import logging
    import os

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            return  # a closed or broken stream: let Python's own exit report it
    os._exit(int(code or 0))
