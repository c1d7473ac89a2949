"""Silencing C-level stderr from several threads at once (the training loader's decoding workers)."""

from __future__ import annotations

import os
import threading

from varec_cli.video.quiet import native_messages_silenced, stderr_fd_silenced


def _stderr_identity():
    status = os.fstat(2)
    return status.st_dev, status.st_ino


def test_overlapping_silenced_blocks_in_threads_give_stderr_back(tmp_path):
    """With each block saving and restoring descriptor 2 on its own, a block that began inside another
    saved /dev/null as "the real stderr" and left it in place for the rest of the process."""
    real = _stderr_identity()
    devnull = os.stat(os.devnull)
    inside = []
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with native_messages_silenced():
            first_in.set()
            second_in.wait(5)
            inside.append(_stderr_identity())
        first_out.set()

    def second():
        first_in.wait(5)
        with stderr_fd_silenced():
            second_in.set()
            first_out.wait(5)  # the first block has left; this one is still inside
            inside.append(_stderr_identity())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert inside == [(devnull.st_dev, devnull.st_ino)] * 2  # silent while any block runs
    assert _stderr_identity() == real  # and stderr back once all have left

    import cv2

    level = cv2.utils.logging.getLogLevel()
    with native_messages_silenced():
        with native_messages_silenced():
            assert cv2.utils.logging.getLogLevel() == cv2.utils.logging.LOG_LEVEL_SILENT
    assert cv2.utils.logging.getLogLevel() == level
