"""Files written atomically (a temporary file beside the target, then a rename) keep the
permissions a plain open() would give them.

tempfile.mkstemp makes its files private (0600): renamed into place, a model file, a cached
download or a timeline would be unreadable to the other users of a shared machine, or to the
workers of a cluster that run under another account. Here the kernel applies the umask to 0o666
at creation, as for open(): no umask juggling (process-wide, so racy with threads), and no
os.fchmod (missing on Windows before Python 3.13).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from varec_cli.paths import expand_user

_FLAGS = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_BINARY", 0)


NAME_MAX_BYTES = 255  # the longest file name most file systems take (ext4, XFS, Btrfs: bytes)


def temp_file(directory: str | os.PathLike, *, prefix: str, suffix: str = "") -> Path:
    """A new empty file in `directory`, to be filled and renamed onto its target. `prefix` is cut
    where the name would pass the 255 bytes file systems allow (an output named near that limit)."""
    directory = Path(directory)
    room = NAME_MAX_BYTES - 8 - len(os.fsencode(suffix))  # 8: the random part
    if len(os.fsencode(prefix)) > room:
        prefix = os.fsdecode(os.fsencode(prefix)[:room])
    for _ in range(100):
        path = directory / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(path, _FLAGS, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return path
    raise FileExistsError(errno.EEXIST, "no free name for a temporary file", str(directory))


def write_atomically(path: str | os.PathLike, data: bytes) -> Path:
    """`data` into `path` through a temp file beside it and a rename: readers see the old content or
    the new, never half of it, and a failure leaves `path` as it was."""
    path = Path(path)
    tmp = temp_file(path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def check_folder_writable(directory: str | os.PathLike, what: str) -> Path:
    """That `directory` is, or can become, a folder this process may write in; checked before long work
    (decoding a dataset) so that a bad path fails at once. Where the permissions allow it, a file is
    created and removed in the nearest folder that exists: root passes every permission check, and
    only a write finds out that a file system (sysfs, procfs, a read-only mount) refuses it."""
    from varec_cli.errors import VarecError

    out = expand_user(directory)
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise VarecError(f"{what} {out}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise VarecError(f"{what} {out}: no permission to write in {existing}")
    try:
        temp_file(existing, prefix=".varec-write-check-").unlink()
    except OSError as exc:
        raise VarecError(f"{what} {out}: cannot write in {existing} ({exc.strerror or exc})") from None
    return out


def short_of_space(directory: str | os.PathLike, needed_bytes: int) -> str | None:
    """`need about 1.2 GB, 300.0 MB free` when `directory` (which must exist) has less room than
    `needed_bytes`, else None: checked before a write that a full disk would leave half done."""
    import shutil

    from varec_cli.text import human_bytes

    free = shutil.disk_usage(directory).free
    return f"need about {human_bytes(needed_bytes)}, {human_bytes(free)} free" if free < needed_bytes else None


def file_version(path: str | os.PathLike) -> dict:
    """What tells one version of a file from another for a cache keyed on it without reading it:
    size and mtime, and the inode and its change time, of which a file put in its place keeps no
    trace even where it is copied with the old mtime (`cp -p`, `rsync -t`, an archive extracted
    again) and has the same size."""
    stat = os.stat(path)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns, "inode": stat.st_ino}


LINK_LOOP = "symbolic links that loop (one leads back to another)"


def missing_reason(path: str | os.PathLike) -> str | None:
    """None when `path` leads to something; else why it does not, for an error line. Path.exists()
    says False alike for a missing file, a loop of symbolic links and a link whose target is gone,
    and "no such file" about a link the user can see in `ls` sends them looking in the wrong place."""
    try:
        os.stat(path)
        return None
    except ValueError:  # a NUL byte in the name
        return "no such file"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return LINK_LOOP
        if exc.errno == errno.ENAMETOOLONG:
            return "file name too long (longer than the file system allows)"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "no permission to reach it (a folder on its way is closed)"
        if os.path.islink(path):
            return f"a symbolic link to {os.readlink(path)}, which does not exist"
        return "no such file"


def special_file_kind(path: str | os.PathLike) -> str | None:
    """'a pipe', 'a socket' or 'a device' for what `path` leads to when it is one of those (data that
    can be read once, in order, and may block until a writer comes); None for a file, a folder, or a
    path that leads nowhere."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return None


def _open_lock_file(path: Path, cannot_lock: Callable[[str], Exception]) -> int:
    failure: OSError | None = None
    for _ in range(100):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except (FileNotFoundError, FileExistsError) as exc:  # its folder deleted or made meanwhile: again
            failure = exc
        except OSError as exc:
            try:
                return os.open(path, os.O_RDONLY)
            except OSError:
                failure = exc
                break
    if isinstance(failure, (FileNotFoundError, FileExistsError)) and os.path.islink(path.parent):
        raise cannot_lock(f"{path.parent} is {missing_reason(path.parent)}") from None  # not "File exists"
    raise cannot_lock(failure.strerror or str(failure)) from None


@contextlib.contextmanager
def file_lock(
    path: Path, *, cannot_lock: Callable[[str], Exception], on_busy: Callable[[], None] | None = None
) -> Iterator[None]:
    """An exclusive inter-process lock held on `path` (created if missing) for the `with` block.

    The operating system drops the lock when the process dies, so a crash never leaves a stale lock
    behind. A lock file this user may not write (a cache shared by a group, made by another member)
    is locked through a read-only descriptor: the lock does not need writing. `on_busy` is called
    once when another process holds the lock, before waiting for it; raising there refuses to wait.
    `cannot_lock(reason)` makes the error raised when the lock file cannot be opened at all. Its
    holder may delete the lock file before letting go (a folder removed when its work is done): a
    lock taken on a file no longer at `path` is let go and taken again on the new one.
    """
    told = False
    while True:
        fd = _open_lock_file(path, cannot_lock)
        try:
            if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
                import msvcrt

                while True:
                    try:
                        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                        break
                    except OSError:
                        if on_busy is not None and not told:
                            told = True
                            on_busy()
                        time.sleep(0.1)
                try:
                    yield  # Windows deletes no open file: the file is still the one at `path`
                finally:
                    os.lseek(fd, 0, os.SEEK_SET)
                    msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
                return
            import fcntl

            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_busy is not None and not told:
                    told = True
                    on_busy()
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path)
            except OSError:
                current = None
            if current is None or not os.path.samestat(current, os.fstat(fd)):
                continue  # the holder deleted it on the way out: lock the file there now (finally closes fd)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            return
        finally:
            os.close(fd)
