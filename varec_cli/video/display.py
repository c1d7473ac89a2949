"""Whether a window can be shown, asked without risking the process.

`annotate --show` and `stream` both open OpenCV windows. With a DISPLAY that names no reachable
server (a stale one in tmux or over ssh), OpenCV's Qt backend aborts the whole process, past any
exception handler, so the first window is opened in a throwaway process.
"""

from __future__ import annotations

import os
import sys


def display_configured() -> bool:
    """Whether this session names a display at all (always, outside Linux and the BSDs)."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def display_unavailable() -> str | None:
    """Why no window can be shown here, or None when one can."""
    if not display_configured():
        return "no display (DISPLAY and WAYLAND_DISPLAY are not set)"
    import subprocess

    probe = "import cv2; cv2.namedWindow('varec'); cv2.waitKey(1); cv2.destroyAllWindows()"
    try:
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "cannot open a window (the display did not answer)"
    if proc.returncode == 0:
        return None
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    detail = next((line for line in lines if "display" in line.lower()), lines[-1] if lines else "")
    return f"cannot open a window ({detail[:120]})" if detail else "cannot open a window"
