"""Silencing C-level messages (OpenCV, FFmpeg, TensorFlow start-up) where varec says what matters itself."""

from __future__ import annotations

import contextlib
import os
import sys

from varec_cli import paths


@contextlib.contextmanager
def stderr_fd_silenced(enabled: bool = True):
    """File descriptor 2 to /dev/null for the block (C and C++ libraries write there directly).
    Kept audible with VAREC_DEBUG=1."""
    if not enabled or paths.debug():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def native_messages_silenced(enabled: bool = True):
    """stderr_fd_silenced, and OpenCV's own log silent too: a missing camera or encoder makes several
    backends print failures that a one-line VarecError says better."""
    if not enabled or paths.debug():
        yield
        return
    import cv2

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        with stderr_fd_silenced():
            yield
    finally:
        cv2.utils.logging.setLogLevel(level)
