"""The weights cache on disk.

Layout under the cache root (`paths.cache_dir()`)::

    models/<name>/<file>            a downloaded file (.keras, .h5 weights, labels .txt)
    models/<name>/.varec-entry      marks the folder as varec's (made before anything is fetched into it)
    models/<name>/savedmodel/       an unpacked SavedModel archive (+ varec-model.json)
    models/<name>.lock              held while one process fetches or checks <name>
    models/index.json               what was verified, and how, for each cached name
    models/index.lock               guards index.json
    compiled/<stem>-<key>.tfgraph   a model file's frozen inference graph (models/tf_frozen.py), rebuilt
    compiled/<stem>-<key>.json      from the model file whenever missing: safe to delete any time
    features/<backbone>-.../        `varec train`'s backbone features per clip (training/loader.py),
                                    computed again whenever missing: safe to delete any time

Each index record says where the artefact is, the sha256 and md5 of the download, how the download
was verified ("published sha256", "published md5" or "recorded" = trust on first use) and the
sha256 of what is on disk now (a file, or a tree digest for a directory), which is checked on every
use so that a modified cache is detected.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from varec_cli import paths
from varec_cli.errors import WeightsError
from varec_cli.files import file_lock as _lock_file
from varec_cli.files import write_atomically
from varec_cli.text import counted, shown_names

INDEX_VERSION = 1
_CHUNK = 1 << 20


def root() -> Path:
    return paths.cache_dir()


def models_dir() -> Path:
    return root() / "models"


COMPILED_NAME = "(compiled)"  # how `varec cache list` names the compiled graphs, and `clear` takes them
COMPILED_SUFFIX = ".tfgraph"  # a compiled graph; beside it, a .json description (models/tf_frozen.py)


def compiled_dir() -> Path:
    return root() / "compiled"


FEATURES_NAME = "(features)"  # how `varec cache list` names `varec train`'s feature cache, and `clear` takes it
FEATURES_FOLDER = "features"


def features_dir() -> Path:
    """`varec train`'s per-clip backbone features (training/loader.FeatureCache): no download, but the
    biggest thing in the cache after a UCF101 run (0.5-0.9 GB), so listed and cleared with it."""
    return root() / FEATURES_FOLDER


INDEX_FILE = "index.json"
_ENTRY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
MAX_ENTRY_NAME = 200  # its lock file (NAME.lock) must fit the 255 bytes most file systems allow a name


def is_entry_name(name: str) -> bool:
    """Whether `name` can be a model's folder directly under models/: no path separators, no `..`,
    and none of the cache's own files (the index, the lock files)."""
    return (
        bool(_ENTRY_NAME.fullmatch(name)) and len(name) <= MAX_ENTRY_NAME and name != INDEX_FILE and not name.endswith(".lock")
    )


def check_entry_name(name: str) -> str:
    if not is_entry_name(name):
        raise WeightsError(
            f"{name!r} is not a model name (letters, digits, '.', '_', '-', at most {MAX_ENTRY_NAME} of them; "
            f"not ending in .lock, not {INDEX_FILE})"
        )
    return name


def entry_dir(name: str) -> Path:
    """The folder of model `name`; a name that is not one folder under models/ is refused, so no
    name can reach outside the cache (`varec cache clear ../x`)."""
    return models_dir() / check_entry_name(name)


def index_path() -> Path:
    return models_dir() / INDEX_FILE


# --- digests --------------------------------------------------------------------------------------


def file_digests(path: Path) -> dict[str, str]:
    """{'sha256': ..., 'md5': ...} of a file, read once."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
    return {"sha256": sha.hexdigest(), "md5": md5.hexdigest()}


def tree_digest(path: Path) -> str:
    """sha256 over every file below `path` (relative name, size and content, in sorted order)."""
    outer = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file() or p.is_symlink())
    for p in files:
        rel = p.relative_to(path).as_posix()
        outer.update(rel.encode("utf-8") + b"\0")
        if p.is_symlink():
            outer.update(b"link\0" + os.readlink(p).encode("utf-8") + b"\0")
            continue
        outer.update(file_digests(p)["sha256"].encode("ascii") + b"\0")
    return outer.hexdigest()


def content_digest(path: Path) -> str:
    return tree_digest(path) if path.is_dir() else file_digests(path)["sha256"]


def disk_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_size
    return total


# --- locking --------------------------------------------------------------------------------------


def file_lock(path: Path, *, on_busy: Callable[[], None] | None = None):
    """The cache's locks (files.file_lock): a cache this user may not write is a weights error."""

    def cannot_lock(reason: str) -> WeightsError:
        return WeightsError(
            f"cannot take the lock {path} ({reason}): fetching into the weights cache needs it writable; "
            "VAREC_CACHE_DIR sets where the cache is"
        )

    return _lock_file(path, cannot_lock=cannot_lock, on_busy=on_busy)


def entry_lock(name: str, on_busy: Callable[[], None] | None = None):
    """Held while `name` is fetched or checked, so two processes never fetch it at the same time.
    `on_busy` is called once when another process holds it (before waiting for it)."""
    return file_lock(models_dir() / f"{check_entry_name(name)}.lock", on_busy=on_busy)


# --- the index ------------------------------------------------------------------------------------


# What else a record may hold, as text (read by listings, verification and `varec models`).
_RECORD_TEXT = ("url", "verified", "fetched_at", "download_sha256", "download_md5", "content_sha256")
_RECORD_SIZES = ("bytes", "content_bytes")  # whole numbers (or null), shown as sizes and compared


def _is_size(value) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


class ForeignIndexError(WeightsError):
    """index.json is JSON but no varec index (an object without "entries"): someone's own file in a
    folder they share with the cache, which clearing must not delete; a damaged index is varec's."""


def _read_index_unlocked() -> dict[str, Any]:
    path = index_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except NotADirectoryError:  # clearing the cache would not help: the way to it is blocked
        raise WeightsError(
            f"the weights cache {root()} is not a folder, or holds a file where a folder belongs ({path}); "
            "point VAREC_CACHE_DIR at a folder"
        ) from None
    except (OSError, ValueError) as exc:
        raise WeightsError(f"cache index {path} is unreadable ({exc}); remove it or run `varec cache clear`") from None
    if isinstance(data, dict) and "entries" not in data:
        raise ForeignIndexError(
            f"{path} is not a varec cache index but someone's file where varec keeps its index: move it out of "
            f"{root()}, or point VAREC_CACHE_DIR at a folder of varec's own"
        )
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        raise WeightsError(f"cache index {path} is not a varec cache index; remove it or run `varec cache clear`")
    for name, record in data["entries"].items():
        if not (
            isinstance(record, dict)
            and isinstance(record.get("path"), str)
            and isinstance(record.get("kind"), str)
            and all(isinstance(record[key], str) for key in _RECORD_TEXT if key in record)
            and all(_is_size(record[key]) for key in _RECORD_SIZES if key in record)
        ):
            raise WeightsError(
                f"cache index {path} has a malformed record for {name!r}; remove the index or run `varec cache clear`"
            )
    return data["entries"]


ENTRY_MARK = ".varec-entry"  # in every folder varec makes under models/: whose it is, when the index cannot say
_FETCH_LEFTOVERS = (".download-", ".unpack-", ".old-")  # a fetch's temporary names, in its entry's folder


def mark_entry(name: str) -> Path:
    """The folder of `name`, made and marked as varec's before anything is fetched into it."""
    folder = entry_dir(name)
    with contextlib.suppress(OSError):  # a cache that cannot take it: the fetch says so, in its words
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ENTRY_MARK).touch()
    return folder


def unmark_entry(name: str) -> None:
    """A first fetch that failed leaves no folder (nor a marked empty one for `cache list` to show)."""
    folder = entry_dir(name)
    with contextlib.suppress(OSError):
        (folder / ENTRY_MARK).unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


def _is_varec_entry(folder: Path, recorded: set[str]) -> bool:
    """A folder under models/ is varec's when the index records it, it is marked, or it holds nothing
    but a fetch's temporary files (a fetch killed before it was recorded, by a varec before the mark)."""
    if folder.name in recorded:
        return True
    try:
        names = [child.name for child in folder.iterdir()]
    except OSError:
        return False
    return ENTRY_MARK in names or all(name.startswith(_FETCH_LEFTOVERS) for name in names)


def _write_index_unlocked(entries: dict[str, Any]) -> None:
    path = index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"version": INDEX_VERSION, "entries": entries}, indent=2, sort_keys=True) + "\n"
    write_atomically(path, text.encode("utf-8"))


def read_index() -> dict[str, dict[str, Any]]:
    """All index records by name."""
    return _read_index_unlocked()


def get_record(name: str) -> dict[str, Any] | None:
    return read_index().get(name)


def put_record(name: str, record: dict[str, Any]) -> None:
    with file_lock(models_dir() / "index.lock"):
        entries = _read_index_unlocked()
        entries[name] = record
        _write_index_unlocked(entries)


def drop_record(name: str) -> bool:
    with file_lock(models_dir() / "index.lock"):
        entries = _read_index_unlocked()
        found = entries.pop(name, None) is not None
        if found:
            _write_index_unlocked(entries)
        return found


def record_path(record: dict[str, Any]) -> Path:
    """The cached file or directory an index record points at."""
    rel = Path(record["path"])
    if rel.is_absolute() or ".." in rel.parts:
        raise WeightsError(f"cache index {index_path()} holds an unsafe path {record['path']!r}; run `varec cache clear`")
    return models_dir() / rel


def remove_leftovers(name: str) -> None:
    """Delete temp files and unpack folders that a killed process left in `name`'s folder.

    Call with the entry lock held: then no live process is writing there.
    """
    folder = entry_dir(name)
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        if p.name.startswith(_FETCH_LEFTOVERS):
            with contextlib.suppress(OSError):
                _rmtree(p)


# --- listing and clearing -------------------------------------------------------------------------


@dataclass(frozen=True)
class CachedItem:
    name: str
    kind: str
    path: Path
    size_bytes: int
    verified: str  # "published sha256", "published md5", "sha256 recorded at first download", "no record"
    fetched_at: str = ""


def changed_since_verified(record: dict[str, Any], path: Path) -> bool:
    """A cheap sign (sizes only, no hashing) that the cached copy was edited after it was verified,
    which the full check before use (the sha256 of its content) would refuse. Records written before
    varec kept the content's size say nothing."""
    expected = record.get("content_bytes")
    return isinstance(expected, int) and not isinstance(expected, bool) and disk_size(path) != expected


def describe_verification(record: dict[str, Any] | None) -> str:
    if not record:
        return "no record"
    how = record.get("verified", "")
    if how == "recorded":
        return "sha256 recorded at first download"
    if how.startswith("published"):
        return how
    return how or "unknown"


def list_cached() -> list[CachedItem]:
    """Everything in the cache: indexed entries, plus leftover folders that have no record."""
    items: list[CachedItem] = []
    index = read_index()
    for name, record in sorted(index.items()):
        try:
            path = record_path(record)
        except WeightsError:  # an unsafe path in the record
            continue
        size = disk_size(path) if path.exists() else 0
        items.append(
            CachedItem(
                name=name,
                kind=record.get("kind", "?"),
                path=path,
                size_bytes=size,
                verified=(
                    "missing on disk" if not path.exists()
                    else "changed since it was verified" if changed_since_verified(record, path)
                    else describe_verification(record)
                ),
                fetched_at=record.get("fetched_at", ""),
            )
        )
    base = models_dir()
    if base.is_dir():
        for child in sorted(base.iterdir()):
            if child.is_dir() and child.name not in index and not child.name.startswith("."):
                items.append(CachedItem(child.name, "?", child, disk_size(child), "no record"))
    graphs = compiled_entries()
    if graphs:
        size = sum(disk_size(p) for p in compiled_dir().iterdir())
        kind = counted(len(graphs), "compiled graph")
        items.append(CachedItem(COMPILED_NAME, kind, compiled_dir(), size, "rebuilt from the model file"))
    sets = _feature_sets()
    if sets:
        kind = counted(len(sets), "training feature set")
        items.append(CachedItem(FEATURES_NAME, kind, features_dir(), disk_size(features_dir()), "recomputed by varec train"))
    return items


def _feature_sets() -> list[Path]:
    try:
        return [p for p in features_dir().iterdir() if p.is_dir()]
    except OSError:
        return []


def _remove_features() -> bool:
    """Remove the training feature cache; whether there was one. Renamed first, so a training run
    reading it meanwhile finds it whole or gone (its writes then fail, and it says so and goes on)."""
    if not features_dir().is_dir():
        return False
    had = bool(_feature_sets())
    _delete_moved(_move_aside(features_dir()), features_dir())
    return had


_FEATURE_SET = re.compile(r".+-\d+f-\d+x\d+-[0-9a-f]{16}")  # training/loader.FeatureCache's folder names
_COMPILED_FILE = re.compile(r".+-[0-9a-f]{24}(\.json|" + re.escape(COMPILED_SUFFIX) + ")")  # models/tf_frozen.entry_paths
TRASH_MARK = "-trash-"  # in the hidden names of what a clear moved aside to delete
LOST_FOUND = "lost+found"  # the file system's own, at the top of a volume mounted as a part: left alone
_TRASH = re.compile(r"\.(models|features|compiled)" + TRASH_MARK + r"\d+-\d+")
_HIDDEN_OURS = re.compile(r"\..+\.[0-9a-f]{8}\.tmp|\.download-[0-9a-f]{8}.*|\.DS_Store")  # write_atomically's, a
# download's temporary files, and what macOS's Finder leaves in any folder it shows


def _foreign_files(folder: Path) -> list[Path]:
    """What is at the top of models/, features/ or compiled/ that varec does not put there: someone's
    own, in a folder they took for theirs (VAREC_CACHE_DIR=. in a project, `train -o` into the cache, a
    part of the cache linked to a shared folder). Entries are varec's folders (_is_varec_entry), beside
    the index and the (empty) lock files; feature sets are folders named as FeatureCache names them;
    compiled graphs are pairs of files named as tf_frozen names them. Of hidden names, only varec's
    temporary files and trash."""
    try:
        children = list(folder.iterdir())
    except OSError:  # missing, or not a folder: nothing of anyone's to lose there
        return []
    if folder == models_dir():
        index_is_ours = True
        try:
            recorded = set(_read_index_unlocked())
        except ForeignIndexError:
            recorded, index_is_ours = set(), False
        except WeightsError:  # a damaged index records nothing: varec's folders are marked
            recorded = set()

        def ours(child: Path) -> bool:
            if child.is_dir():
                return _is_varec_entry(child, recorded)
            if child.name == INDEX_FILE:
                return index_is_ours
            try:  # varec's lock files are empty (`Pipfile.lock` is not one)
                return child.name.endswith(".lock") and child.is_file() and child.stat().st_size == 0
            except OSError:
                return False
    elif folder == features_dir():
        ours = lambda child: child.is_dir() and _FEATURE_SET.fullmatch(child.name) is not None  # noqa: E731
    else:
        ours = lambda child: child.is_file() and _COMPILED_FILE.fullmatch(child.name) is not None  # noqa: E731
    foreign = []
    for child in children:
        if _TRASH.fullmatch(child.name) or _HIDDEN_OURS.fullmatch(child.name) or child.name == LOST_FOUND or ours(child):
            continue
        if os.path.lexists(child):  # (not one a concurrent clear has just moved away)
            foreign.append(child)
    return foreign


def _refuse_foreign_files(*folders: Path) -> None:
    """Clearing removes what these folders hold; anything varec did not put there is refused, not deleted."""
    foreign = sorted(path for folder in folders for path in _foreign_files(folder))
    if foreign:
        shown = shown_names([str(path) for path in foreign], limit=3)
        raise WeightsError(
            f"the cache holds files varec did not put there ({shown}); move them out of {root()} first "
            "(VAREC_CACHE_DIR sets where the cache is)"
        )


def _check_parts() -> None:
    """Clearing deletes what models/, features/ and compiled/ lead to. Each must be a folder of its own:
    one linked to another part, to the cache itself or above it would take the other's content (or
    everything) with it; a dangling link or a file in a part's place is said, not passed over."""
    top = root().resolve()
    real: dict[Path, Path] = {}
    for part, what in ((models_dir(), "downloads"), (features_dir(), "training features"), (compiled_dir(), "compiled graphs")):
        if part.is_symlink() and not part.exists():
            raise WeightsError(
                f"{part}, where the cache keeps its {what}, is a symbolic link to {os.readlink(part)}, which does not "
                "exist: make that folder (a disk not mounted?), or remove the link and varec makes a folder there"
            )
        if part.exists() and not part.is_dir():
            raise WeightsError(f"{part} is in the way: the cache keeps its {what} in a folder of that name; move it out of {root()}")
        if part.is_dir():
            real[part] = part.resolve()
    for part, target in sorted(real.items(), key=lambda item: not item[0].is_symlink()):  # a link is the one to fix
        if target == top or target in top.parents:
            raise WeightsError(
                f"{part} leads to {target}, the cache itself or a folder above it: clearing it would delete all that "
                "is there; make it a folder of its own"
            )
        for other, other_target in real.items():
            if other != part and (target == other_target or other_target in target.parents):
                raise WeightsError(
                    f"{part} and {other} lead to one folder ({other_target}): clearing one would delete the other's "
                    "content; give each a folder of its own"
                )


def _delete_tree(path: Path) -> None:
    """Delete a tree moved aside; what a concurrent clear deleted first is no error, anything else is,
    named by its whole path."""

    def gone_already(function, name, exc) -> None:
        if not isinstance(exc, FileNotFoundError):
            raise type(exc)(exc.errno, exc.strerror, str(name)) if isinstance(exc, OSError) and exc.errno else exc

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=gone_already)
    else:
        shutil.rmtree(path, onerror=lambda function, name, exc_info: gone_already(function, name, exc_info[1]))


def _put_back(trash: Path, folder: Path) -> None:
    """What is left in `trash` (what could not be deleted) goes back to `folder`, in sight: the cache
    lists it and a clear names it, where hidden it would stay on the disk unseen. Best effort: a name
    `folder` holds again meanwhile keeps its trash copy."""
    with contextlib.suppress(OSError):
        if trash.parent != folder and not os.path.lexists(folder):
            os.replace(trash, folder)
            return
        for child in list(trash.iterdir()):
            if not os.path.lexists(folder / child.name):
                os.replace(child, folder / child.name)
        trash.rmdir()


def _delete_moved(trash: Path, folder: Path) -> None:
    """Delete what _move_aside put in `trash`; what cannot be deleted (a file another user put there)
    goes back, and the error names it where it is then."""
    try:
        _delete_tree(trash)
    except OSError as exc:
        _put_back(trash, folder)
        if exc.filename and str(exc.filename).startswith(str(trash)):
            back = str(folder) + str(exc.filename)[len(str(trash)):]
            if os.path.lexists(back):
                exc.filename = back
        raise


def _sweep_trash() -> None:
    """Trees a killed `cache clear` moved aside and did not finish deleting: hidden, but on the disk.
    What cannot be deleted goes back in sight (and stops nothing: this clear then meets it and names it)."""
    for folder in (root(), models_dir(), features_dir(), compiled_dir()):
        try:
            children = list(folder.iterdir())
        except OSError:
            continue
        for child in children:
            match = _TRASH.fullmatch(child.name)
            if match and child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
                if os.path.lexists(child):
                    _put_back(child, root() / match[1] if folder == root() else folder)


def _move_aside(folder: Path) -> Path:
    """Rename `folder` to a hidden trash name beside it, for deleting: a concurrent reader never sees
    a half-deleted tree, only the whole or nothing. A folder that stays where it is, emptied, is a link
    to a folder elsewhere (a part of the cache kept on another disk) or a mount point (a container's
    volume, which cannot be renamed): what it holds moves into a trash folder inside it, all of it or,
    when something will not move, none."""
    name = f"{folder.name}{TRASH_MARK}{os.getpid()}-{time.time_ns()}"
    if not folder.is_symlink():
        trash = folder.with_name("." + name)
        try:
            os.replace(folder, trash)
            return trash
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.EXDEV):
                raise
    trash = folder / ("." + name)
    trash.mkdir()
    try:
        for child in folder.iterdir():
            if child.name not in (trash.name, LOST_FOUND):
                os.replace(child, trash / child.name)
    except OSError:
        _put_back(trash, folder)
        raise
    return trash


def compiled_entries() -> dict[Path, dict[str, Any]]:
    """{description file: its content (at least "model", the model file it was compiled from)}."""
    entries: dict[Path, dict[str, Any]] = {}
    folder = compiled_dir()
    if folder.is_dir():
        for description in sorted(folder.glob("*.json")):
            try:
                info = json.loads(description.read_text())
                info["model"] = str(info["model"])
            except (OSError, ValueError, KeyError, TypeError):
                info = {"model": ""}
            entries[description] = info
    return entries


def remove_compiled_entry(description: Path) -> None:
    description.unlink(missing_ok=True)
    description.with_suffix(COMPILED_SUFFIX).unlink(missing_ok=True)


def _remove_compiled(under: Path | None) -> None:
    """Drop the compiled graphs of model files inside `under` (all of them with None)."""
    if under is None:
        if compiled_dir().is_dir():  # (a file or a dangling link of that name holds nothing of varec's)
            _delete_moved(_move_aside(compiled_dir()), compiled_dir())
        return
    for description, info in compiled_entries().items():
        if info["model"] and Path(info["model"]).is_relative_to(under.resolve()):
            remove_compiled_entry(description)


def _rmtree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=False)
    elif path.exists() or path.is_symlink():
        path.unlink()


def clear(name: str | None = None) -> list[str]:
    """Remove one cached name (files, index record, compiled graphs) or, with None, everything under
    models/ and compiled/.

    Returns the names removed (COMPILED_NAME and FEATURES_NAME among them when compiled graphs or
    training features went). Recorded first-download digests go with their files. `name`
    COMPILED_NAME removes the compiled graphs only, FEATURES_NAME the training features only.
    """
    try:
        return _clear(name)
    except OSError as exc:  # a cache made by another user, a read-only disk: not a rename's inner workings
        where = Path(exc.filename) if exc.filename else root()
        if where.name.startswith("."):  # a temporary file of varec's own: the folder is what the user knows
            where = where.parent
        raise WeightsError(
            f"cannot clear the cache: {where} cannot be removed ({exc.strerror or exc}); clearing needs write "
            f"access to all of {root()}, and what another user put there (with sudo, say) only they can remove "
            "(VAREC_CACHE_DIR sets where the cache is)"
        ) from None


def _clear(name: str | None) -> list[str]:
    base = models_dir()
    if name is None or name in (COMPILED_NAME, FEATURES_NAME):
        _check_parts()
        _sweep_trash()
    if name is None:
        _refuse_foreign_files(models_dir(), features_dir(), compiled_dir())
    had_compiled = bool(compiled_entries())
    if name == COMPILED_NAME:
        _refuse_foreign_files(compiled_dir())
        _remove_compiled(None)
        return [COMPILED_NAME] if had_compiled else []
    if name == FEATURES_NAME:
        _refuse_foreign_files(features_dir())
        return [FEATURES_NAME] if _remove_features() else []
    if name is None:
        _remove_compiled(None)
        extras = ([COMPILED_NAME] if had_compiled else []) + ([FEATURES_NAME] if _remove_features() else [])
        if not base.is_dir():
            return extras
        try:
            indexed = set(read_index())
        except WeightsError:  # an unreadable index is what clearing everything repairs
            indexed = set()
        removed = sorted(indexed | {p.name for p in base.iterdir() if p.is_dir()})
        with contextlib.ExitStack() as held:  # a fetch in progress finishes first (sorted: no deadlock)
            for each in removed:
                if is_entry_name(each):
                    held.enter_context(entry_lock(each))
            trash = _move_aside(base)
        _delete_moved(trash, base)
        return [n for n in removed if not n.startswith(".")] + extras
    target = entry_dir(name)
    recorded = read_index()
    if name not in recorded and not target.is_dir():
        return []  # nothing of it here (or a file someone put there): no lock file left for a mistyped name
    if name not in recorded and not _is_varec_entry(target, set()):
        raise WeightsError(
            f"{target} is not a cached model varec fetched (the index does not record it, and it holds files "
            f"varec did not put there): not removed; move it out of {root()} if it is yours"
        )
    with entry_lock(name):
        found = drop_record(name)
        _remove_compiled(target)
        if target.exists():
            _rmtree(target)
            found = True
    # The lock file stays: unlinking it while another process waits on it would break the lock.
    return [name] if found else []
