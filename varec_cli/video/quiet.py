"""Silencing C-level messages (OpenCV, FFmpeg, TensorFlow start-up) where varec says what matters itself."""

from __future__ import annotations

import contextlib
import os
import sys
import threading

from varec_cli import paths

_silenced_lock = threading.Lock()
_silenced_depth = 0  # blocks (in any thread) inside stderr_fd_silenced now
_saved_stderr: int | None = None  # the real file descriptor 2 while they run
_quiet_cv2_depth = 0  # the same for native_messages_silenced and OpenCV's log level
_cv2_level: int | None = None


@contextlib.contextmanager
def stderr_fd_silenced():
    """File descriptor 2 to /dev/null for the block (C and C++ libraries write there directly).
    Kept audible with VAREC_DEBUG=1.

    Descriptor 2 belongs to the whole process: blocks in several threads (decoding workers) share one
    redirection, made by the first to enter and undone by the last to leave, so that no thread saves
    /dev/null as "the real stderr" and leaves it in place.
    """
    global _silenced_depth, _saved_stderr
    if paths.debug():
        yield
        return
    with _silenced_lock:
        if _silenced_depth == 0:
            sys.stderr.flush()
            _saved_stderr = os.dup(2)
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 2)
        _silenced_depth += 1
    try:
        yield
    finally:
        with _silenced_lock:
            _silenced_depth -= 1
            if _silenced_depth == 0 and _saved_stderr is not None:
                sys.stderr.flush()
                os.dup2(_saved_stderr, 2)
                os.close(_saved_stderr)
                _saved_stderr = None


@contextlib.contextmanager
def native_messages_silenced(enabled: bool = True):
    """stderr_fd_silenced, and OpenCV's own log silent too: a missing camera or encoder makes several
    backends print failures that a one-line VarecError says better."""
    global _quiet_cv2_depth, _cv2_level
    if not enabled or paths.debug():
        yield
        return
    import cv2

    with _silenced_lock:  # shared like descriptor 2 (see stderr_fd_silenced): the level is process-wide
        if _quiet_cv2_depth == 0:
            _cv2_level = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        _quiet_cv2_depth += 1
    try:
        with stderr_fd_silenced():
            yield
    finally:
        with _silenced_lock:
            _quiet_cv2_depth -= 1
            if _quiet_cv2_depth == 0 and _cv2_level is not None:
                cv2.utils.logging.setLogLevel(_cv2_level)
