"""The one place where a model name becomes a file: registry -> cache -> verified path.

`resolve_model_path()` is what predict/annotate/stream/evaluate call for `--model`;
`backbone_weights_path()` is what training calls for ImageNet weights;
`ensure_cached()` is what `varec download` calls.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from varec_cli import paths
from varec_cli.errors import ModelError, OfflineError, VarecError, WeightsError
from varec_cli.weights import archive, cache, download
from varec_cli.weights.registry import Entry, Registry, load_registry, unknown_name_message

ProgressCallback = download.ProgressCallback
_PATH_SUFFIXES = (".keras", ".h5", ".hdf5", ".gz", ".tgz", ".tar", ".pb", ".zip", ".json")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _way_out(entry: Entry) -> str:
    """What else a user can do when `entry` cannot be fetched, in words that fit every command that
    fetches it (`varec download` as well as the command that needed it), and that need no file
    outside the installed package (`varec models --help` shows the registry's format)."""
    copy = 'point VAREC_REGISTRY at a mirror or a local copy (url = "file:///..."; see `varec models --help`)'
    if entry.kind == "keras":
        return "download it elsewhere and give its path to --model, or " + copy
    if entry.kind == "labels":  # fetched for a classifier a user asked for
        return copy + ", or use a model of your own (--model PATH)"
    if entry.kind == "backbone":  # fetched by `varec train`
        return copy + ", or train with --backbone-weights PATH (a .h5 weights file) or none, or --backbone scratch"
    return copy  # a SavedModel archive: only the registry knows its labels and input spec


def _looks_like_path(arg: str) -> bool:
    return (
        "/" in arg
        or os.sep in arg
        or (os.altsep is not None and os.altsep in arg)
        or arg.startswith(("~", "."))
        or arg.lower().endswith(_PATH_SUFFIXES)
    )


# --- checking what is cached ------------------------------------------------------------------------


class ChangedInCacheError(WeightsError):
    """A cached copy's bytes are not the ones verified when it was fetched."""


def cached_path(entry: Entry) -> Path | None:
    """The verified cached artefact of `entry`, or None when it must be (re)fetched.

    Raises WeightsError when the cached copy changed on disk since it was verified.
    """
    record = cache.get_record(entry.name)  # the index vouches that it has a path and a kind
    if not record:
        return None
    path = cache.record_path(record)
    if not path.exists() or not _record_serves(entry, record):
        return None
    seen = cache.content_digest(path)
    expected = record.get("content_sha256")
    if seen != expected:
        raise ChangedInCacheError(
            f"the cached {entry.name} at {path} changed after it was verified "
            f"(expected sha256 {expected}, found {seen}); fetch it again with `varec download --force {entry.name}`"
        )
    return path


def _record_serves(entry: Entry, record: dict[str, Any]) -> bool:
    """Whether a cached copy's record fits the registry entry as it is now: the same kind and, where
    the registry publishes a digest, the bytes it vouches for (a changed digest means fetch again)."""
    if record.get("kind") != entry.kind:
        return False
    if entry.sha256 and record.get("download_sha256") != entry.sha256:
        return False
    return not (entry.md5 and record.get("download_md5") != entry.md5)


def _cached_copy(entry: Entry, record: dict[str, Any] | None) -> tuple[str, Path | None]:
    """For listings, without hashing, from `entry`'s index record: ("yes", path) when cached_path would
    serve it (short of the hash), ("changed", path) when the copy's size differs from the verified
    one's (cached_path would refuse it), else ("no", None): it would be fetched."""
    if not record or not _record_serves(entry, record):
        return "no", None
    try:
        path = cache.record_path(record)
    except WeightsError:  # an unsafe path in the record
        return "no", None
    if not path.exists():
        return "no", None
    return ("changed" if cache.changed_since_verified(record, path) else "yes"), path


# --- fetching ----------------------------------------------------------------------------------------


def _read_labels(path: Path, what: str) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise WeightsError(f"{what}: the label list is not UTF-8 text") from None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise WeightsError(f"{what}: the label list is empty")
    return labels


def _check_format(entry: Entry, path: Path, url: str) -> None:
    """Catch an HTML error page or a wrong file before it is cached (and, without a digest, trusted)."""
    import tarfile

    what = f"{entry.name} (from {url})"
    if entry.kind == "savedmodel" and not tarfile.is_tarfile(path):
        raise WeightsError(f"{what}: not a tar archive (plain, gz, bz2 or xz); nothing was kept")
    if entry.kind == "keras" and not zipfile.is_zipfile(path):
        raise WeightsError(f"{what} is not a .keras model file (not a zip archive); nothing was kept")
    if entry.kind == "backbone":
        with open(path, "rb") as fh:
            head = fh.read(8)
        if head != _HDF5_MAGIC:
            raise WeightsError(f"{what} is not an HDF5 .h5 weights file; nothing was kept")
    if entry.kind == "labels":
        labels = _read_labels(path, what)
        if labels[0].lower().startswith(("<!doctype html", "<html")):
            raise WeightsError(f"{what} is an HTML page, not a label list; nothing was kept")
        if entry.classes and len(labels) != entry.classes:
            raise WeightsError(f"{what}: expected {entry.classes} labels, found {len(labels)}; nothing was kept")


def labels_of(entry: Entry, registry: Registry) -> list[str] | None:
    """A classifier entry's class names: inline, or read from its (fetched, verified) labels entry."""
    if entry.labels is None:
        return None
    if isinstance(entry.labels, tuple):
        return list(entry.labels)
    labels_entry = registry.labels_for(entry)
    path = ensure_cached(labels_entry.name, registry=registry)
    return _read_labels(path, labels_entry.name)


def savedmodel_metadata(entry: Entry, labels: list[str] | None, url: str) -> dict[str, Any]:
    """What the SavedModel adapter needs, written as varec-model.json beside saved_model.pb."""
    size = entry.size
    return {
        "format": "varec-savedmodel",
        "format_version": 1,
        "name": entry.name,
        "labels": labels,
        "classes": len(labels) if labels else entry.classes,
        "frames": entry.frames,
        "size": [size, size] if size else None,
        "fps": entry.fps,
        "stream": entry.stream,
        "signature": entry.effective_signature(),
        "description": entry.description,
        "license": entry.license,
        "source": entry.source,
        "url": url,
    }


def _labels_to_install(entry: Entry, registry: Registry) -> list[str] | None:
    """A SavedModel's class names (fetched into the cache when they come from a labels entry), checked
    against its class count; None for other kinds."""
    if entry.kind != "savedmodel":
        return None
    try:
        labels = labels_of(entry, registry)  # small, and fetched quietly: progress is the model's
    except OfflineError:  # the model is not cached either (else its labels were not asked for)
        raise _offline_error(entry) from None
    except WeightsError as exc:  # it names the labels entry: say which model needed it
        exc.args = (f"{entry.name}: {exc}",)
        raise
    if labels and entry.classes and len(labels) != entry.classes:
        raise WeightsError(f"{entry.name}: {len(labels)} labels for {entry.classes} classes")
    return labels


def _fetch_entry(entry: Entry, progress: ProgressCallback | None, labels: list[str] | None) -> Path:
    """Download, verify and install `entry` (its entry lock is held by the caller)."""
    old = cache.get_record(entry.name)
    sha256, md5 = entry.sha256, entry.md5
    if entry.published_digest:
        verified, source = f"published {entry.published_digest[0]}", "published"
    elif old and old.get("verified") == "recorded" and old.get("download_sha256"):
        # Trust on first use: later downloads (--force, a lost file) must match the first one.
        sha256, verified, source = old["download_sha256"], "recorded", "recorded"
    else:
        verified, source = "recorded", "published"

    directory = cache.mark_entry(entry.name)
    cache.remove_leftovers(entry.name)
    try:
        fetched = download.fetch_to_temp(
            entry.urls,
            directory,
            what=entry.name,
            sha256=sha256,
            md5=md5,
            digest_source=source,
            expected_bytes=entry.bytes,
            space_factor=3.0 if entry.kind == "savedmodel" else 1.0,
            way_out=_way_out(entry),
            progress=progress,
            check=lambda path, url: _check_format(entry, path, url),  # per mirror: a bad one is skipped
        )
        try:
            if entry.kind == "savedmodel":
                meta = savedmodel_metadata(entry, labels, fetched.url)
                path = archive.install_savedmodel(
                    fetched.path, directory / "savedmodel", meta, shown=f"{entry.name} (from {fetched.url})"
                )
            else:
                path = directory / entry.cache_filename(fetched.url)
                os.replace(fetched.path, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                fetched.path.unlink()
    except BaseException:
        with contextlib.suppress(OSError):  # a first download that failed leaves no empty entry for `cache list`
            if all(child.name == cache.ENTRY_MARK for child in directory.iterdir()):
                cache.unmark_entry(entry.name)
        raise

    cache.put_record(
        entry.name,
        {
            "kind": entry.kind,
            "path": path.relative_to(cache.models_dir()).as_posix(),
            "url": fetched.url,
            "bytes": fetched.bytes,
            "download_sha256": fetched.sha256,
            "download_md5": fetched.md5,
            "verified": verified,
            "content_sha256": cache.content_digest(path),
            "content_bytes": cache.disk_size(path),
            "fetched_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
    )
    if old is not None:  # the copy it replaces, when it came from another mirror under another name
        with contextlib.suppress(OSError, WeightsError):
            previous = cache.record_path(old)
            if previous != path and previous.parent == directory and previous.is_file():
                previous.unlink()
    return path


def ensure_cached(
    name: str,
    *,
    registry: Registry | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
    on_wait: Callable[[], None] | None = None,
) -> Path:
    """The verified cached artefact for registry `name`, fetching it when missing (or when `force`).

    Concurrent callers (threads or processes) of one name wait for each other (`on_wait` is called
    when one starts to); the second finds the first one's verified copy. Raises OfflineError under
    VAREC_OFFLINE=1 when it is not cached.
    """
    registry = registry or load_registry()
    entry = registry.get(name)
    if not force:  # a verified copy is read without the lock: a read-only or shared cache serves it
        changed: WeightsError | None = None
        unusable: WeightsError | None = None
        try:
            path = cached_path(entry)
        except ChangedInCacheError as exc:  # or being replaced: checked again below
            changed, path = exc, None
        except WeightsError as exc:  # a damaged index, a file that cannot be read: said again below
            unusable, path = exc, None
        if path is not None:
            return path
        if paths.offline() and not any(download.is_local_url(u) for u in entry.urls):
            # before any lock: offline there is nothing to fetch, and no lock file to leave
            if changed is not None:  # it is in the cache, damaged: not "not in the cache"
                raise OfflineError(f"{changed} (which needs the network: unset VAREC_OFFLINE first)") from None
            if unusable is not None and paths.cache_dir().is_dir():  # what is wrong with the cache, and its repair
                raise unusable from None
            raise _offline_error(entry)
    # A SavedModel's labels before its own lock, never inside it: a process holding two entry locks
    # could deadlock with `cache clear`, which takes them all in name order.
    labels = _labels_to_install(entry, registry)
    with cache.entry_lock(name, on_busy=on_wait):
        if not force:
            path = cached_path(entry)
            if path is not None:
                return path
        if paths.offline() and not any(download.is_local_url(u) for u in entry.urls):
            if force and cached_path(entry) is not None:
                raise OfflineError(
                    f"{name} is cached, but fetching it again (--force) needs the network and VAREC_OFFLINE=1 "
                    "(offline mode) forbids it; drop --force to use the cached copy, or unset VAREC_OFFLINE"
                )
            raise _offline_error(entry)
        return _fetch_entry(entry, progress, labels)


def _offline_error(entry: Entry) -> OfflineError:
    return OfflineError(
        f"{entry.name} is not in the cache and VAREC_OFFLINE=1 (offline mode) forbids downloading it; "
        "unset VAREC_OFFLINE to download it"
        + (" with its label list" if entry.kind == "savedmodel" and isinstance(entry.labels, str) else "")
        + f", or {_way_out(entry)}"
    )


# --- public entry points ------------------------------------------------------------------------------


def _names_an_entry(arg: str) -> bool:
    """Whether a path-looking argument is a registry name after all (an entry may be called
    "kitchen.keras"); a registry that cannot be read leaves it a missing file."""
    if not cache.is_entry_name(arg):
        return False
    try:
        return arg in load_registry()
    except WeightsError:
        return False


def resolve_model_path(name_or_path: str, *, progress: ProgressCallback | None = None) -> Path:
    """A `--model` argument -> a local file or SavedModel folder.

    An existing path is returned as it is; a path-looking argument that does not exist is a
    ModelError; anything else is a registry name, fetched into the cache if needed.
    """
    arg = str(name_or_path)
    if not arg.strip():  # not the working folder (a script's unset "$MODEL")
        raise ModelError("the model is empty: give a model file or folder, or a registry name")
    candidate = paths.expand_user(arg)
    if candidate.exists():
        return candidate
    if os.path.islink(candidate):  # there, but leads nowhere: not a registry name that happens to be missing
        from varec_cli.files import missing_reason

        raise ModelError(f"{arg}: {missing_reason(candidate)}")
    if _looks_like_path(arg) and not _names_an_entry(arg):
        raise ModelError(f"{arg}: no such model file")
    registry = load_registry()
    if arg not in registry:
        raise WeightsError(unknown_name_message(arg, registry.names()) + " (and no such file)")
    entry = registry.get(arg)
    if not entry.is_classifier:
        raise WeightsError(f"{arg} is a {entry.kind} entry, not a model that classifies videos")
    return ensure_cached(arg, registry=registry, progress=progress)


def local_model_path(name_or_path: str | os.PathLike) -> Path | None:
    """Where resolve_model_path would find `name_or_path` when it is on this machine already: the path
    itself, or the registry entry's cached copy as the listings judge it (_cached_copy: not hashed,
    nothing fetched); None otherwise. For work worth starting before the model is opened, which must
    not download or hash anything."""
    arg = str(name_or_path)
    candidate = paths.expand_user(arg)
    if candidate.exists():
        return candidate
    try:
        registry = load_registry()
        if arg not in registry:
            return None
        state, path = _cached_copy(registry.get(arg), cache.get_record(arg))
    except VarecError:  # a broken registry or cache index: opening the model will say so
        return None
    return path if state == "yes" else None


def repeated_model(models: list[str]) -> str | None:
    """The first of `models` that names the same model as one before it, by what it resolves to on
    this machine (local_model_path: `m.keras` and `./m.keras` are one file, and a registry name is its
    cached copy); None when all differ. For commands that compare models: a model given twice would
    be opened, run and reported twice."""
    seen: set[tuple[str, object]] = set()
    for model in models:
        if not str(model).strip():
            continue  # no model at all: refused as such when it is opened (resolve_model_path)
        try:
            path = local_model_path(model)
        except OSError:  # a name too long for a file name: opening it will say so
            path = None
        key = ("file", path.resolve()) if path is not None else ("name", str(model))
        if key in seen:
            return model
        seen.add(key)
    return None


def backbone_entry(backbone: str, registry: Registry | None = None) -> Entry:
    registry = registry or load_registry()
    preferred = f"backbone-{backbone}"
    if preferred in registry and registry.get(preferred).kind == "backbone":
        return registry.get(preferred)
    for name in registry.names("backbone"):
        if registry.get(name).backbone == backbone:
            return registry.get(name)
    known = sorted({registry.get(n).backbone or n for n in registry.names("backbone")})
    raise WeightsError(f"no ImageNet weights are registered for backbone {backbone!r}; registered: {', '.join(known)}")


def backbone_weights_path(backbone: str, *, progress: ProgressCallback | None = None) -> Path:
    """The cached, verified ImageNet no-top .h5 weights for `backbone` (fetched when missing)."""
    registry = load_registry()
    entry = backbone_entry(backbone, registry)
    try:
        return ensure_cached(entry.name, registry=registry, progress=progress)
    except OfflineError:
        raise OfflineError(
            f"the ImageNet weights for backbone {backbone} are not cached and VAREC_OFFLINE=1 (offline mode) "
            f"forbids downloading them; run `varec download {entry.name}` while online, {_way_out(entry)}"
        ) from None


def default_model_name(purpose: str = "predict") -> str:
    """The registry's default model for a command: "stream" (live video) has its own, every other
    (predict, annotate, evaluate, info) the "predict" one."""
    return load_registry().default("stream" if purpose == "stream" else "predict")


def models_table(registry: Registry | None = None) -> list[dict[str, Any]]:
    """One row per registry entry for `varec models` (no hashing, no network)."""
    registry = registry or load_registry()
    rows = []
    index = cache.read_index()
    for name in registry.names():
        entry = registry.get(name)
        record = index.get(name)
        state, path = _cached_copy(entry, record)
        cached = state == "yes"
        if entry.published_digest:
            digest = f"published {entry.published_digest[0]}"
        elif record and record.get("verified") == "recorded":
            digest = "recorded"
        else:
            digest = "on first use"  # none published: the first download's sha256 will be recorded
        rows.append(
            {
                "name": name,
                "kind": entry.kind,
                "classes": None if entry.kind == "backbone" else (
                    entry.classes or (len(entry.labels) if isinstance(entry.labels, tuple) else None)
                ),
                "input": entry.input_description,
                "fps": entry.fps,
                "stream": entry.stream if entry.is_classifier else None,
                "bytes": (record or {}).get("bytes") or entry.bytes,
                "cached": cached,
                "changed_on_disk": state == "changed",  # edited since verified: use refuses it
                "path": str(path) if path is not None else None,
                "digest": digest,
                "sha256": entry.sha256 or ((record or {}).get("download_sha256") if digest == "recorded" else None),
                "md5": entry.md5,
                "url": entry.url,
                "origin": entry.origin,
                "default_for": [p for p, n in sorted(registry.defaults.items()) if n == name],
                "description": entry.description,
                "license": entry.license,
            }
        )
    return rows
