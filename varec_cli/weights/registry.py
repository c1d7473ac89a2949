"""The model registry: which downloadable artefacts exist, where they live and how to verify them.

The shipped registry is `varec_cli/data/models.toml`. `VAREC_REGISTRY=/path/models.toml` names a
second file in the same format whose entries are merged over the shipped ones key by key (a user
entry for a new name needs only `url` and a digest; an entry for a shipped name may change just
`url`, e.g. to point at a mirror). Both files are validated strictly so that a typo in a key or a
digest is reported instead of silently ignored.

Format::

    [defaults]
    predict = "movinet-a0-base"      # model used when predict/annotate get no --model
    stream = "movinet-a0-stream"     # model used by stream

    [models.NAME]
    kind = "keras"          # keras | savedmodel | backbone | labels   (default: keras)
    url = "https://..."     # or: urls = ["https://primary/...", "https://mirror/..."]
    sha256 = "..."          # and/or md5 = "...", where the publisher gives one
    bytes = 123456          # download size, optional (disk-space check, progress)
    filename = "x.keras"    # name in the cache, optional (default: from the URL)
    description = "..."
    license = "..."
    source = "..."          # where the artefact and its digest come from
    # classifiers (keras / savedmodel):
    labels = "labels-entry-name"   # or an inline list of class names
    classes = 600
    frames = 50
    size = 172              # input height = width in pixels
    fps = 5.0               # frame rate the model was trained at
    stream = false          # a frame-by-frame (streaming) model
    signature = { name = "serving_default", input = "image", output = "classifier_head" }
    # backbones:
    backbone = "mobilenet_v2"
"""

from __future__ import annotations

import difflib
import math
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from varec_cli import paths
from varec_cli.errors import WeightsError
from varec_cli.weights import cache

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

KINDS = ("keras", "savedmodel", "backbone", "labels")
CLASSIFIER_KINDS = ("keras", "savedmodel")
URL_SCHEMES = ("https", "http", "file")

# What a MoViNet-style SavedModel exposes, used when an entry gives no `signature` table.
DEFAULT_SIGNATURE: dict[str, Any] = {
    "name": "serving_default",
    "input": "image",
    "output": "classifier_head",
    "input_dtype": "float32",
    "input_range": [0.0, 1.0],
    "output_is_logits": True,
}

_ENTRY_KEYS = {
    "kind",
    "url",
    "urls",
    "sha256",
    "md5",
    "bytes",
    "filename",
    "description",
    "license",
    "source",
    "labels",
    "classes",
    "frames",
    "size",
    "fps",
    "stream",
    "signature",
    "backbone",
}
# Keys of an entry's `signature` table, and what each must be.
_SIGNATURE_KEYS = {
    "name": "the name of a signature (a string)",
    "input": "the name of the signature's input (a string)",
    "output": "the name of the signature's output (a string)",
    "states": "the name of the function that makes the initial states (a string)",
    "input_dtype": '"float32" (the only input type varec feeds)',
    "input_range": "[low, high], two finite numbers with low < high",
    "output_is_logits": "true or false",
}
_DEFAULT_KEYS = {"predict", "stream"}
_HEX = {"sha256": 64, "md5": 32}


@dataclass(frozen=True)
class Entry:
    """One downloadable artefact."""

    name: str
    kind: str = "keras"
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    md5: str | None = None
    bytes: int | None = None
    filename: str | None = None
    description: str = ""
    license: str = ""
    source: str = ""
    labels: str | tuple[str, ...] | None = None
    classes: int | None = None
    frames: int | None = None
    size: int | None = None
    fps: float | None = None
    stream: bool = False
    signature: Mapping[str, Any] | None = None
    backbone: str | None = None
    origin: str = "shipped"  # "shipped" or the path of the user registry that defined/changed it

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def published_digest(self) -> tuple[str, str] | None:
        """(algorithm, hex) of the strongest digest the publisher gives, or None (trust on first use)."""
        if self.sha256:
            return ("sha256", self.sha256)
        if self.md5:
            return ("md5", self.md5)
        return None

    @property
    def is_classifier(self) -> bool:
        return self.kind in CLASSIFIER_KINDS

    def cache_filename(self, url: str | None = None) -> str:
        """The file name the download from `url` (default: the first URL) is stored under in the cache:
        named after the URL it came from, not a mirror tried before it."""
        if self.filename:
            return self.filename
        path = unquote(urlparse(url or self.url).path)
        base = path.rstrip("/").rsplit("/", 1)[-1]
        if self.kind == "savedmodel":
            return "model.tar.gz"
        if not base or base in {".", ".."}:
            base = {"keras": "model.keras", "backbone": "weights.h5", "labels": "labels.txt"}[self.kind]
        if self.kind == "keras" and not base.endswith(".keras"):
            base += ".keras"
        if self.kind == "backbone" and not base.endswith((".h5", ".hdf5")):
            base += ".h5"  # Keras' load_weights() goes by the suffix
        return base

    @property
    def input_description(self) -> str:
        """E.g. '50x172x172' (frames x height x width), or '' when not a classifier."""
        if not self.is_classifier:
            return f"{self.size}x{self.size}" if self.size else ""
        parts = [str(v) for v in (self.frames, self.size, self.size) if v]
        return "x".join(parts)

    def effective_signature(self) -> dict[str, Any]:
        sig = dict(DEFAULT_SIGNATURE)
        if self.stream:
            sig["states"] = "init_states"  # streaming MoViNets: states in, states out
        sig.update(self.signature or {})
        return sig


@dataclass
class Registry:
    entries: dict[str, Entry] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)

    def names(self, kind: str | None = None) -> list[str]:
        return sorted(n for n, e in self.entries.items() if kind is None or e.kind == kind)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def get(self, name: str) -> Entry:
        try:
            return self.entries[name]
        except KeyError:
            raise WeightsError(unknown_name_message(name, self.entries)) from None

    def default(self, purpose: str) -> str:
        if purpose not in _DEFAULT_KEYS:
            raise WeightsError(f"no default model for {purpose!r}; known purposes: {', '.join(sorted(_DEFAULT_KEYS))}")
        try:
            return self.defaults[purpose]
        except KeyError:
            raise WeightsError(f"the registry names no default model for {purpose!r} ([defaults] {purpose} = ...)") from None

    def labels_for(self, entry: Entry) -> Entry | None:
        """The labels entry a classifier refers to by name (None for inline lists or no labels)."""
        if isinstance(entry.labels, str):
            target = self.entries.get(entry.labels)
            if target is None or target.kind != "labels":
                where = f"registry {_origin_path(entry.origin)}: models.{entry.name}: labels = {entry.labels!r}"
                if target is None:
                    raise WeightsError(f"{where} names no labels entry")
                raise WeightsError(
                    f"{where} names a {target.kind} entry, not a labels entry{_defined_in(target, entry.origin)}"
                )
            return target
        return None


def _origin_path(origin: str) -> str:
    """An Entry.origin as the file it means."""
    return str(shipped_registry_path()) if origin == "shipped" else origin


def _defined_in(entry: Entry, other_than) -> str:
    """' (models.X as registry F defines it)' where `entry` comes from another file than the one an
    error names: the user's VAREC_REGISTRY may have changed the entry a shipped one refers to."""
    if _origin_path(entry.origin) == _origin_path(str(other_than)):
        return ""
    return f" (models.{entry.name} as registry {_origin_path(entry.origin)} defines it)"


def unknown_name_message(name: str, known: Iterable[str]) -> str:
    known = list(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `varec models` lists them"
    return f"unknown model {name!r}{hint}"


def shipped_registry_path() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "models.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise WeightsError(f"registry {path}: no such file (check VAREC_REGISTRY)") from None
    except OSError as exc:
        raise WeightsError(f"registry {path}: cannot read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise WeightsError(f"registry {path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:  # TOML is UTF-8 by definition
        raise WeightsError(f"registry {path}: not valid TOML: the file is not UTF-8 text") from None


def _check_entry_fields(where: str, name: str, raw: Mapping[str, Any]) -> None:
    try:
        cache.check_entry_name(name)  # the name is its folder in the cache
    except WeightsError as exc:
        raise WeightsError(f"{where}: {exc}") from None
    if not isinstance(raw, Mapping):
        raise WeightsError(f"{where}: models.{name} must be a table")
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], _ENTRY_KEYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise WeightsError(f"{where}: models.{name}: unknown key {unknown[0]!r}{hint}")

    def bad(key: str, what: str) -> WeightsError:
        return WeightsError(f"{where}: models.{name}.{key} must be {what}, got {raw[key]!r}")

    if "kind" in raw and raw["kind"] not in KINDS:
        raise bad("kind", "one of " + ", ".join(KINDS))
    if "url" in raw and "urls" in raw:
        raise WeightsError(f"{where}: models.{name}: give either url or urls, not both")
    urls = [raw["url"]] if "url" in raw else raw.get("urls")
    if urls is not None:
        key = "url" if "url" in raw else "urls"
        if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
            raise bad(key, "a URL string" if key == "url" else "a non-empty list of URL strings")
        for u in urls:
            not_a_url = WeightsError(f"{where}: models.{name}: {u!r} is not an http(s):// or file:// URL")
            try:
                parsed = urlparse(u)
                _ = parsed.port  # a ValueError for a port that is not a number in range
            except ValueError:  # an unclosed [IPv6 address, a port of letters
                raise not_a_url from None
            if parsed.scheme not in URL_SCHEMES or (parsed.scheme != "file" and not parsed.hostname):
                raise not_a_url
            if parsed.scheme == "file" and parsed.netloc not in ("", "localhost"):
                raise WeightsError(
                    f"{where}: models.{name}: {u!r} names the host {parsed.netloc!r}; a file URL takes an "
                    f"absolute path: file:///{parsed.netloc}{parsed.path} or file:///full/path"
                )
            if parsed.scheme == "file" and not parsed.path.startswith("/"):  # file:x would be read from the cwd
                raise WeightsError(f"{where}: models.{name}: {u!r} is relative; a file URL takes an absolute path: file:///full/path")
    for algo, length in _HEX.items():
        if algo in raw:
            value = raw[algo]
            if not isinstance(value, str) or not re.fullmatch(f"[0-9a-fA-F]{{{length}}}", value):
                raise bad(algo, f"{length} hex digits")
    for key in ("bytes", "classes", "frames", "size"):
        if key in raw and (not isinstance(raw[key], int) or isinstance(raw[key], bool) or raw[key] <= 0):
            raise bad(key, "a positive integer")
    if "fps" in raw and (
        isinstance(raw["fps"], bool) or not isinstance(raw["fps"], (int, float)) or not 0 < raw["fps"] < float("inf")
    ):
        raise bad("fps", "a positive number")
    if "stream" in raw and not isinstance(raw["stream"], bool):
        raise bad("stream", "true or false")
    for key in ("description", "license", "source", "filename", "backbone"):
        if key in raw and not isinstance(raw[key], str):
            raise bad(key, "a string")
    if "filename" in raw and (Path(raw["filename"]).name != raw["filename"] or raw["filename"] in {"", ".", ".."}):
        raise bad("filename", "a plain file name")
    if "labels" in raw:
        labels = raw["labels"]
        if not (isinstance(labels, str) or (isinstance(labels, list) and all(isinstance(x, str) for x in labels))):
            raise bad("labels", "the name of a labels entry or a list of class names")
    if "signature" in raw:
        if not isinstance(raw["signature"], Mapping):
            raise bad("signature", "a table")
        check_signature(f"{where}: models.{name}.signature", raw["signature"])


def check_signature(where: str, signature: Mapping[str, Any]) -> None:
    """A SavedModel signature table, checked as strictly as the entry: a typo here would otherwise be
    ignored (the default used instead) or surface as a traceback at the first clip."""
    unknown = sorted(set(signature) - set(_SIGNATURE_KEYS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], _SIGNATURE_KEYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise WeightsError(f"{where}: unknown key {unknown[0]!r}{hint}")
    for key, value in signature.items():
        what = _SIGNATURE_KEYS[key]
        if key == "input_range":
            ok = (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
                and value[0] < value[1]
            )
        elif key == "input_dtype":
            ok = value == "float32"
        elif key == "output_is_logits":
            ok = isinstance(value, bool)
        else:
            ok = isinstance(value, str) and bool(value)
        if not ok:
            raise WeightsError(f"{where}.{key} must be {what}, got {value!r}")


def _to_entry(name: str, raw: Mapping[str, Any], origin: str) -> Entry:
    urls = [raw["url"]] if "url" in raw else list(raw.get("urls", []))
    labels = raw.get("labels")
    return Entry(
        name=name,
        kind=raw.get("kind", "keras"),
        urls=tuple(urls),
        sha256=raw["sha256"].lower() if "sha256" in raw else None,
        md5=raw["md5"].lower() if "md5" in raw else None,
        bytes=raw.get("bytes"),
        filename=raw.get("filename"),
        description=raw.get("description", ""),
        license=raw.get("license", ""),
        source=raw.get("source", ""),
        labels=tuple(labels) if isinstance(labels, list) else labels,
        classes=raw.get("classes"),
        frames=raw.get("frames"),
        size=raw.get("size"),
        fps=float(raw["fps"]) if "fps" in raw else None,
        stream=raw.get("stream", False),
        signature=dict(raw["signature"]) if "signature" in raw else None,
        backbone=raw.get("backbone"),
        origin=origin,
    )


def _merge_raw(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    if "url" in override or "urls" in override:
        merged.pop("url", None)
        merged.pop("urls", None)
    merged.update(override)
    return merged


def parse_registry(data: Mapping[str, Any], where: str) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Validate one registry document; returns (raw entry tables by name, defaults)."""
    unknown = sorted(set(data) - {"models", "defaults"})
    if unknown:
        raise WeightsError(f"{where}: unknown table {unknown[0]!r} (expected [models.NAME] and [defaults])")
    models = data.get("models", {})
    if not isinstance(models, Mapping):
        raise WeightsError(f"{where}: 'models' must be a table of [models.NAME] tables")
    for name, raw in models.items():
        _check_entry_fields(where, name, raw)
    defaults = data.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise WeightsError(f"{where}: [defaults] must be a table")
    for key, value in defaults.items():
        if key not in _DEFAULT_KEYS:
            raise WeightsError(f"{where}: defaults.{key}: unknown key (expected {', '.join(sorted(_DEFAULT_KEYS))})")
        if not isinstance(value, str):
            raise WeightsError(f"{where}: defaults.{key} must be a model name")
    return {n: dict(r) for n, r in models.items()}, dict(defaults)


def _finish(where: str, name: str, raw: dict[str, Any], origin: str) -> Entry:
    if not raw.get("url") and not raw.get("urls"):
        raise WeightsError(f"{where}: models.{name} has no url")
    return _to_entry(name, raw, origin)


def load_registry(user_path: Path | None | bool = True) -> Registry:
    """The shipped registry, merged with the user's (VAREC_REGISTRY) unless `user_path` is False.

    `user_path=True` (default) reads VAREC_REGISTRY; a Path reads that file instead.
    """
    shipped = shipped_registry_path()
    raw_entries, defaults = parse_registry(_read_toml(shipped), f"registry {shipped}")
    origins = {name: "shipped" for name in raw_entries}
    default_origins = {purpose: shipped for purpose in defaults}  # the file that set each default

    if user_path is True:
        user_path = paths.user_registry_path()
    if user_path:
        user_path = Path(user_path)
        where = f"registry {user_path}"
        user_entries, user_defaults = parse_registry(_read_toml(user_path), where)
        for name, raw in user_entries.items():
            raw_entries[name] = _merge_raw(raw_entries.get(name, {}), raw)
            origins[name] = str(user_path)
            # a changed kind must still make sense after the merge
            _check_entry_fields(where, name, {k: v for k, v in raw_entries[name].items()})
        defaults.update(user_defaults)
        default_origins.update({purpose: user_path for purpose in user_defaults})

    entries = {
        name: _finish(f"registry {_origin_path(origins[name])}", name, raw, origins[name])
        for name, raw in raw_entries.items()
    }
    registry = Registry(entries=entries, defaults=defaults)
    for purpose, name in defaults.items():
        where = f"registry {default_origins[purpose]}: defaults.{purpose} = {name!r}"
        if name not in entries:
            raise WeightsError(f"{where} is not a [models.*] entry")
        if not entries[name].is_classifier:
            defined = _defined_in(entries[name], default_origins[purpose])
            raise WeightsError(f"{where} is a {entries[name].kind} entry, not a classifier{defined}")
    for entry in entries.values():
        if entry.kind == "savedmodel" and not entry.labels:  # a SavedModel carries no class names
            raise WeightsError(
                f"registry {_origin_path(entry.origin)}: models.{entry.name} is a savedmodel entry without labels "
                "(the name of a labels entry or a list of class names)"
            )
        registry.labels_for(entry)  # dangling labels references fail here, once
    return registry
