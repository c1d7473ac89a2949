"""The model file: a Keras 3 `.keras` archive carrying `varec.json` (labels, clip spec,
preprocessing, provenance) as an extra zip member, so a model describes itself and `varec info`
can read it without importing Keras.
"""

from __future__ import annotations

import contextlib
import json
import os
import zipfile
import zlib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from varec_cli.errors import ModelError, brief
from varec_cli.files import temp_file
from varec_cli.text import control_characters_problem, named_twice, same_name

METADATA_MEMBER = "varec.json"
FORMAT_VERSION = 1


@dataclass
class ModelMetadata:
    labels: list[str]
    frames: int
    size: tuple[int, int]  # (height, width) of each frame fed to the network
    backbone: str
    preprocessing: str
    rnn: str
    feature_dim: int
    sampling: str = "uniform"  # frames spread first to last over the clip (video.reader)
    clip_seconds: float | None = None  # typical span of a training clip, for windows and streaming
    varec_version: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        data = asdict(self)
        data["size"] = list(self.size)
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMetadata:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        size = known.get("size", (0, 0))
        known["size"] = tuple(size) if isinstance(size, (list, tuple)) else size
        return cls(**known)

    def problem(self) -> str | None:
        """What makes these values unusable (a hand-edited or foreign varec.json), or None."""

        def positive_int(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value > 0

        if not isinstance(self.labels, list) or not self.labels or not all(isinstance(x, str) for x in self.labels):
            return "labels must be a non-empty list of names"
        if problem := control_characters_problem(self.labels):
            return problem
        if twins := named_twice(self.labels):  # two outputs of one name: which one is a dataset's class?
            return f"labels must differ from each other, and {same_name(twins[0])!r} is there twice"
        if not positive_int(self.frames):
            return f"frames must be a whole number above 0, not {self.frames!r}"
        if not isinstance(self.size, tuple) or len(self.size) != 2 or not all(positive_int(x) for x in self.size):
            shown = list(self.size) if isinstance(self.size, tuple) else self.size
            return f"size must be [height, width] in pixels, not {shown!r}"
        if not positive_int(self.feature_dim):
            return f"feature_dim must be a whole number above 0, not {self.feature_dim!r}"
        for name in ("backbone", "preprocessing", "rnn", "sampling"):
            if not isinstance(getattr(self, name), str):
                return f"{name} must be a name, not {getattr(self, name)!r}"
        seconds = self.clip_seconds
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < float("inf")
        ):
            return f"clip_seconds must be a number of seconds above 0, not {seconds!r}"
        if not isinstance(self.provenance, dict) or not isinstance(self.format_version, int):
            return "provenance must be an object and format_version a number"
        return None


def read_metadata(path: str | os.PathLike) -> ModelMetadata:
    """The varec metadata of a model file; ModelError if it is not a varec model."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file")
    if path.is_dir():
        raise ModelError(f"{path}: is a directory, not a varec .keras model file")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if METADATA_MEMBER not in names:
                what = "a Keras model without varec metadata" if "config.json" in names else "a zip archive"
                raise ModelError(f"{path}: not a varec model ({what})")
            try:
                raw = archive.read(METADATA_MEMBER)
            except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
                # a bad CRC (varec stores it uncompressed), bad deflate data, encrypted, odd compression
                raise ModelError(f"{path}: its varec metadata cannot be read ({brief(exc)}); is the file damaged?") from None
            data = json.loads(raw)
    except zipfile.BadZipFile:
        raise ModelError(f"{path}: not a varec model (not a .keras archive)") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelError(f"{path}: its varec metadata is corrupt") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: its varec metadata is corrupt (not a JSON object)")
    version = data.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        raise ModelError(f"{path}: made by a newer varec (model format {version}); upgrade varec")
    required = [f.name for f in fields(ModelMetadata) if f.default is MISSING and f.default_factory is MISSING]
    missing = [name for name in required if name not in data and name != "size"]  # size: checked below
    if missing:
        raise ModelError(f"{path}: its varec metadata is incomplete (no {', '.join(missing)})")
    meta = ModelMetadata.from_dict(data)
    problem = meta.problem()
    if problem:
        raise ModelError(f"{path}: its varec metadata is invalid ({problem})")
    return meta


def save_model(model, path: str | os.PathLike, metadata: ModelMetadata) -> Path:
    """Write model + metadata atomically: a temp file beside `path`, renamed at the end."""
    from varec_cli import __version__

    path = Path(path)
    if path.suffix != ".keras":
        raise ModelError(f"{path}: a varec model file must end in .keras")
    if problem := metadata.problem():  # a file varec would refuse to open is not written in the first place
        raise ModelError(f"{path}: not saved: {problem}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not metadata.varec_version:
        metadata.varec_version = __version__
    tmp = temp_file(path.parent, prefix=f".{path.stem}-", suffix=".keras")
    try:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(METADATA_MEMBER, metadata.to_json())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def _named_keras(path: Path):
    """`path` under a name ending in `.keras`, the only name Keras opens a model archive by: a varec
    model renamed `m.KERAS`, `m.zip` or `m` (its metadata read already) loads all the same, through a
    link (a copy where links are not allowed) in a temporary folder."""
    if str(path).endswith(".keras"):
        yield path
        return
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="varec-model-") as folder:
        named = Path(folder) / "model.keras"
        try:
            os.symlink(os.path.abspath(path), named)
        except OSError:
            shutil.copyfile(path, named)
        yield named


def load_model(path: str | os.PathLike):
    """(keras model, metadata). Safe mode: no Lambda or other arbitrary code is deserialised."""
    path = Path(path)
    metadata = read_metadata(path)
    from varec_cli.runtime import import_keras

    keras = import_keras()

    import varec_cli.models.layers  # noqa: F401  (registers FramePreprocessing)

    try:
        with _named_keras(path) as keras_path:
            model = keras.saving.load_model(keras_path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a broken or hostile archive
        if "safe_mode" in str(exc):  # Keras' advice (pass safe_mode=False) is not for varec's users
            what = "Python code (a Lambda layer)" if "Lambda" in str(exc) else "what only Keras' unsafe mode loads"
            raise ModelError(
                f"{path}: it holds {what}, which varec never loads from a model file (Keras safe mode); "
                "rebuild the model without it"
            ) from None
        raise ModelError(f"{path}: cannot load this model ({brief(exc, first_line=True)})") from None
    expected = (metadata.frames, *metadata.size, 3)
    takes = tuple(model.input_shape[1:]) if isinstance(model.input_shape, tuple) else None
    if takes is not None and (len(takes) != len(expected) or any(t not in (None, e) for t, e in zip(takes, expected))):
        shown = "x".join("?" if t is None else str(t) for t in takes)
        raise ModelError(
            f"{path}: its varec metadata says {metadata.frames} frames of {metadata.size[0]}x{metadata.size[1]} px, "
            f"but the network takes {shown}"
        )
    return model, metadata
