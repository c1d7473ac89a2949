"""Video input and output with OpenCV; knows nothing of models."""

import os as _os
import sys as _sys
from pathlib import Path as _Path

from varec_cli import paths as _paths

# Not .ts/.mts (MPEG transport streams, AVCHD): TypeScript sources share them, and a folder scan must
# not try to decode a code base. Such videos can still be given one by one.
VIDEO_EXTENSIONS = frozenset({
    ".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv", ".3gp", ".3g2", ".ogv",
    ".m2ts",
})


def is_video(path: _Path) -> bool:
    """A visible file whose extension (any case) is a known video container."""
    return path.suffix.lower() in VIDEO_EXTENSIONS and not path.name.startswith(".")


def find_videos(folder: _Path, unreadable: list[tuple[_Path, str]] | None = None) -> list[_Path]:
    """Video files anywhere under `folder`, sorted, skipping hidden files and folders (`.git`, `._x.mp4`
    that macOS leaves on shared drives): what `varec predict DIR` and the dataset loaders both see.

    Folders reached through symbolic links are searched too (a dataset put together from several
    disks), each folder once; a link to `folder` or a folder above it is not followed. A folder that
    cannot be read goes to `unreadable` as (folder, why), for the caller to tell: its videos are
    missing from the list.
    """
    found: list[_Path] = []
    seen: set[tuple[int, int]] = set()  # each folder once; the ones above `folder` count as seen: a link
    start = _Path(folder)  # up to one of them would be an endless search (above it as named, or as it is)
    for above in {*start.absolute().parents, *start.resolve().parents}:
        try:
            status = above.stat()
        except OSError:
            continue
        seen.add((status.st_dev, status.st_ino))
    pending = [start]
    while pending:
        directory = pending.pop()
        try:
            status = directory.stat()
            if (status.st_dev, status.st_ino) in seen:
                continue
            seen.add((status.st_dev, status.st_ino))
            with _os.scandir(directory) as listing:
                entries = sorted(listing, key=lambda entry: entry.name, reverse=True)
        except OSError as exc:
            if unreadable is not None:
                unreadable.append((directory, exc.strerror or str(exc)))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir():  # follows a link
                    pending.append(_Path(entry.path))
                elif is_video(_Path(entry.name)) and entry.is_file():
                    found.append(_Path(entry.path))
            except OSError:  # gone meanwhile, or not ours to look at: as if absent
                continue
    return sorted(found)


# OpenCV's FFmpeg prints its own errors ("moov atom not found") on stderr from whichever thread
# opens a file, unless this is set before its first capture; varec says what went wrong in one
# line itself. VAREC_DEBUG=1 keeps FFmpeg's messages.
if not _paths.debug():
    _os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    # and OpenCV's own warnings ("backend ... can't be used to capture by name"): read when cv2 is
    # imported, so set directly too where something imported it already
    _os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    if "cv2" in _sys.modules:
        _sys.modules["cv2"].utils.logging.setLogLevel(_sys.modules["cv2"].utils.logging.LOG_LEVEL_ERROR)
