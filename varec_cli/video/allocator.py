"""glibc's allocator thresholds, pinned once so that decoding clip after clip reuses freed memory.

Each read opens a decoder whose frame threads allocate their frame buffers afresh, and the samples
held for conversion (see reader._decode_av_run) grow that pool by megabytes. glibc returns a thread
arena's free memory to the kernel as soon as it exceeds its trim threshold, which its own heuristic
keeps at twice the largest mmapped block freed so far (a few MB for 720p frames), so the next read
page-faults and zero-fills the same memory again: measured on 2 cores, 16 samples of bigbuckbunny.mp4
(720p H.264) cost ~6000 page faults and ~10 ms of kernel time per read, 4-8% of its wall time. Pinned
where that heuristic itself ends up after freeing one mmapped block of 32 MiB (mmap threshold 32 MiB,
trim threshold twice that; fixed values also end the heuristic), the same reads fault a few dozen
times. The cost: each arena may keep up to 64 MiB of freed memory instead of returning it.

Process-wide, so it is done at the first read, not on import, and never over a user's own choice:
any MALLOC_* variable (MALLOC_ARENA_MAX=2, say) or glibc.malloc tunable in the environment leaves
the allocator as it is, which is also how a program embedding varec opts out. Elsewhere than glibc
it does nothing.
"""

from __future__ import annotations

import os
import threading

MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's ceiling for its dynamic threshold on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # as glibc sets it whenever it raises the mmap threshold
_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3

_lock = threading.Lock()
_outcome: bool | None = None  # None: not tried yet


def user_chose_allocator(environ=os.environ) -> bool:
    """Whether the environment sets glibc malloc parameters itself (then varec leaves them)."""
    return any(name.startswith("MALLOC_") for name in environ) or (
        "glibc.malloc." in environ.get("GLIBC_TUNABLES", "")
    )


def keep_freed_frame_memory() -> bool:
    """Pin the thresholds (see the module's docstring), once per process; whether they were set."""
    global _outcome
    with _lock:
        if _outcome is None:
            _outcome = _pin_thresholds()
        return _outcome


def _pin_thresholds() -> bool:
    if user_chose_allocator():
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
    except (AttributeError, ValueError, OSError):  # not glibc (musl, macOS, Windows)
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
