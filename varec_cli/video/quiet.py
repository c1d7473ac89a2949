"""Silencing OpenCV's and FFmpeg's C-level messages where varec says what went wrong itself."""

from __future__ import annotations

import contextlib
import os
import sys

from varec_cli import paths


@contextlib.contextmanager
def native_messages_silenced(enabled: bool = True):
    """Send file descriptor 2 to /dev/null and OpenCV's log to silent for the block: a missing camera
    or encoder makes several backends print failures that a one-line VarecError says better.
    Kept audible with VAREC_DEBUG=1."""
    if not enabled or paths.debug():
        yield
        return
    import cv2

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        cv2.utils.logging.setLogLevel(level)
