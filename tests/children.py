"""Child processes that a test stops mid-run, as a user's Ctrl-C, `timeout` or closed terminal would."""

from __future__ import annotations

from collections.abc import Callable


def stop_when_ready(proc, ready_from, stop: Callable[[], None], timeout: float = 60) -> tuple[str, str]:
    """Wait for the child's `ready` line on `ready_from` (its stdout or stderr pipe), call `stop()`
    (send the signals, check what the child has left so far), then collect (stdout, stderr). The
    child is killed if anything on the way fails, so that no test leaves one running."""
    try:
        assert ready_from.readline().strip() == "ready"
        stop()
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
