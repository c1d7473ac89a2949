"""Unpacking downloaded archives without trusting them.

Every member of a tar archive is checked before anything is written: no absolute paths, no `..`,
no devices or FIFOs, symlinks only to relative targets below their own folder, hard links only to
files already unpacked from the same archive (they are copied, not linked). Files are written by
this module (not `tarfile.extractall`) with plain permissions, into a temporary folder beside the
target, and the result is renamed into place in one step.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

from varec_cli.errors import WeightsError

SAVEDMODEL_METADATA = "varec-model.json"
_CHUNK = 1 << 20


class UnsafeArchiveError(WeightsError):
    """An archive member would land outside the folder it is unpacked into."""


def _member_parts(name: str, shown: str) -> tuple[str, ...]:
    """The path components of a member name, or UnsafeArchiveError."""
    if not name or "\0" in name:
        raise UnsafeArchiveError(f"{shown}: a member has an invalid name; refusing to unpack")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafeArchiveError(f"{shown}: member {name!r} has an absolute path; refusing to unpack")
    parts = tuple(p for p in PurePosixPath(posix).parts if p not in ("", "."))
    if ".." in parts:
        raise UnsafeArchiveError(f"{shown}: member {name!r} points outside the archive (..); refusing to unpack")
    return parts


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def safe_extract(archive: Path, dest: Path, *, shown: str | None = None) -> None:
    """Unpack tar (optionally gz/bz2/xz) `archive` into the existing empty folder `dest`.

    Raises UnsafeArchiveError before writing anything if any member is unsafe, WeightsError if the
    file is not a readable tar archive; both start with `shown` (default: the archive's file name).
    """
    shown = shown or archive.name
    dest_real = Path(os.path.realpath(dest))
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            plan: list[tuple[tarfile.TarInfo, tuple[str, ...]]] = []
            files_seen: set[tuple[str, ...]] = set()
            for m in members:
                parts = _member_parts(m.name, shown)
                if m.isdev() or m.isfifo() or not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                    raise UnsafeArchiveError(
                        f"{shown}: member {m.name!r} is a device or special file; refusing to unpack"
                    )
                if m.issym():
                    target = m.linkname.replace("\\", "/")
                    if not target or target.startswith("/") or ".." in PurePosixPath(target).parts or (
                        len(target) > 1 and target[1] == ":"
                    ):
                        raise UnsafeArchiveError(
                            f"{shown}: symlink {m.name!r} -> {m.linkname!r} points outside its folder; "
                            "refusing to unpack"
                        )
                if m.islnk():
                    target_parts = _member_parts(m.linkname, shown)
                    if target_parts not in files_seen:
                        raise UnsafeArchiveError(
                            f"{shown}: hard link {m.name!r} -> {m.linkname!r} does not point at an earlier "
                            "file of the archive; refusing to unpack"
                        )
                if m.isfile():
                    files_seen.add(parts)
                if parts:
                    plan.append((m, parts))

            for m, parts in plan:
                out = dest.joinpath(*parts)
                # Re-check against the real file system (symlinks unpacked earlier included).
                parent_real = Path(os.path.realpath(out.parent)) if out.parent.exists() else None
                if parent_real is not None and not _inside(parent_real, dest_real):
                    raise UnsafeArchiveError(f"{shown}: member {m.name!r} would land outside; refusing to unpack")
                if m.isdir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                if out.is_symlink() or out.exists():
                    if out.is_dir() and not out.is_symlink():
                        shutil.rmtree(out)
                    else:
                        out.unlink()
                if m.issym():
                    os.symlink(m.linkname, out)
                    continue
                if m.islnk():
                    shutil.copyfile(dest.joinpath(*_member_parts(m.linkname, shown)), out)
                    continue
                src = tar.extractfile(m)
                if src is None:  # pragma: no cover - isfile() members always have data
                    continue
                with src, open(out, "xb") as fh:
                    while chunk := src.read(_CHUNK):
                        fh.write(chunk)
                os.chmod(out, 0o644)
    except tarfile.ReadError:  # tarfile's message lists each decompressor it tried
        raise WeightsError(f"{shown}: not a tar archive (plain, gz, bz2 or xz)") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is None:
            raise WeightsError(f"{shown}: not a readable tar archive ({exc})") from None
        if isinstance(exc, OSError):
            raise WeightsError(f"{shown}: cannot unpack into {dest}: {exc.strerror or exc}") from None
        raise WeightsError(f"{shown}: not a readable tar archive ({exc})") from None


def find_savedmodel_dir(root: Path) -> Path | None:
    """`root` if it holds saved_model.pb, else its one subfolder that does (a single wrapper folder)."""
    if (root / "saved_model.pb").is_file():
        return root
    candidates = [p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and (p / "saved_model.pb").is_file()]
    return candidates[0] if len(candidates) == 1 else None


def install_savedmodel(archive: Path, target: Path, metadata: dict[str, Any], *, shown: str | None = None) -> Path:
    """Unpack a SavedModel tar.gz into `target` (atomically), with `metadata` written beside
    saved_model.pb as varec-model.json. An existing `target` is replaced. Returns `target`. Errors
    start with `shown` (default: the archive's file name; a download names its model and URL).
    """
    shown = shown or archive.name
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".unpack-"))
    try:
        unpacked = work / "tree"
        unpacked.mkdir()
        safe_extract(archive, unpacked, shown=shown)
        model_dir = find_savedmodel_dir(unpacked)
        if model_dir is None:
            raise WeightsError(
                f"{shown}: no saved_model.pb at the top of the archive or one folder down; "
                "not a TF SavedModel archive"
            )
        (model_dir / SAVEDMODEL_METADATA).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n", "utf-8")
        if target.exists() or target.is_symlink():
            old = target.with_name(f".old-{target.name}-{os.getpid()}-{time.time_ns()}")
            os.replace(target, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(model_dir, target)
        return target
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(work)
