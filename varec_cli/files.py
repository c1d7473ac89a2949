"""Files written atomically (a temporary file beside the target, then a rename) keep the
permissions a plain open() would give them.

tempfile.mkstemp makes its files private (0600): renamed into place, a model file, a cached
download or a timeline would be unreadable to the other users of a shared machine, or to the
workers of a cluster that run under another account.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def new_file_mode() -> int:
    """The mode open() gives a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def temp_file(directory: str | os.PathLike, *, prefix: str, suffix: str = "") -> Path:
    """A new empty file in `directory` with new_file_mode(), to be filled and renamed onto its target."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    try:
        os.fchmod(fd, new_file_mode())
    finally:
        os.close(fd)
    return Path(name)
