"""Everything a user can cause is a VarecError; the CLI turns it into one line and an exit code."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FAILURE = 1  # a VarecError, or some inputs failed
    USAGE = 2  # bad options or arguments
    INTERRUPTED = 130  # Ctrl-C


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP (timeout, docker stop, systemd, a closed terminal), raised in the main thread
    so that it stops varec the way Ctrl-C does: outputs finalised or removed. Exits 128 + its number."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        import signal

        return signal.Signals(self.signum).name


def stop_code(interrupt: KeyboardInterrupt) -> int:
    """The exit code for a stop: 130 for Ctrl-C, 128 + the signal's number for a Terminated."""
    return interrupt.exit_code if isinstance(interrupt, Terminated) else ExitCode.INTERRUPTED


class VarecError(Exception):
    """A problem the user can fix; its message is shown as `error: <message>`."""


class VideoError(VarecError):
    """A video cannot be opened, decoded or written."""


class ModelError(VarecError):
    """A model file is missing, unreadable or not a varec model."""


class DatasetError(VarecError):
    """A dataset folder is missing or does not have the expected layout."""


class WeightsError(VarecError):
    """A registry entry, a download or the cache failed."""


class OfflineError(WeightsError):
    """The network was needed but VAREC_OFFLINE=1 forbids it."""


def brief(detail: object, limit: int = 200, *, first_line: bool = False) -> str:
    """A library's error text cut to fit in a one-line error: whitespace folded, at most `limit`
    characters, cut at a word and marked with `...` (Keras' and TensorFlow's messages run on).
    `first_line`: only the first line that says something. An exception with no text: its type."""
    text = str(detail)
    if first_line:
        text = next((line for line in text.splitlines() if line.strip()), "")
    text = " ".join(text.split())
    if not text:
        return type(detail).__name__ if isinstance(detail, BaseException) else "no details"
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " ..."
