"""Plain folders: one sub-folder per class, videos anywhere inside it.

    "folder":         ROOT/<class>/**/<video>                 everything is train; no test
    "folder-splits":  ROOT/train/<class>/**/<video>           plus ROOT/val/... and ROOT/test/... when present

Classes are the sub-folder names that hold at least one video, sorted by name. In "folder-splits"
the classes come from train/; a val/ or test/ class that train/ lacks is an error.
"""

from __future__ import annotations

from pathlib import Path

from varec_cli.datasets.base import Sample, subfolders
from varec_cli.datasets.splits import group_of
from varec_cli.errors import DatasetError
from varec_cli.text import counted, shown_names
from varec_cli.video import VIDEO_EXTENSIONS, find_videos


def looks_like_splits(root: Path) -> bool:
    return (root / "train").is_dir()


def _extensions() -> str:
    return " ".join(sorted(VIDEO_EXTENSIONS))


def _scan(folder: Path, warnings: list[str]) -> tuple[dict[str, list[Path]], list[str]]:
    """Class name → its videos, and the names of sub-folders that hold no video. Folders inside a
    class that cannot be read are told in `warnings`: their videos are missing from the run."""
    classes: dict[str, list[Path]] = {}
    empty: list[str] = []
    unreadable: list[tuple[Path, str]] = []
    for sub in subfolders(folder):
        before = len(unreadable)
        videos = find_videos(sub, unreadable)
        if videos:
            classes[sub.name] = videos
        elif len(unreadable) == before:  # one that could not be read (in part) is not known to be without videos
            empty.append(sub.name)
    if unreadable:
        where, why = unreadable[0]
        warnings.append(
            f"cannot read {counted(len(unreadable), 'folder')} under {folder} ({where}: {why}"
            + (f"; and {len(unreadable) - 1} more" if len(unreadable) > 1 else "")
            + f"): the videos in {'it are' if len(unreadable) == 1 else 'them are'} left out"
        )
    return classes, empty


def _samples(classes: dict[str, list[Path]], label_of: dict[str, int]) -> list[Sample]:
    return [Sample(path, label_of[name], group_of(path)) for name in sorted(classes) for path in classes[name]]


def _need_two_classes(classes: dict[str, list[Path]], folder: Path) -> None:
    if not classes:
        raise DatasetError(
            f"no videos found in class folders under {folder}: expected {folder}/<class>/<videos> "
            f"({_extensions()}), {folder}/train/<class>/..., or the UCF101/HMDB51 official layout"
        )
    if len(classes) < 2:
        only = next(iter(classes))
        raise DatasetError(
            f"{folder} has videos for one class only ({only!r}); a classifier needs two or more "
            f"class folders: {folder}/<class>/<videos>"
        )


def load(root: Path) -> tuple[list[str], list[Sample], list[str], list[str]]:
    """(labels, train, notes, warnings) of ROOT/<class>/<videos>."""
    warnings: list[str] = []
    classes, empty = _scan(root, warnings)
    _need_two_classes(classes, root)
    labels = sorted(classes)
    label_of = {name: i for i, name in enumerate(labels)}
    notes = [f"ignored {counted(len(empty), 'folder')} without videos: {shown_names(empty)}"] if empty else []
    return labels, _samples(classes, label_of), notes, warnings


def load_splits(root: Path) -> tuple[list[str], dict[str, list[Sample] | None], list[str], list[str]]:
    """(labels, {"train": [...], "val": [...] or None, "test": [...]}, notes, warnings) of
    ROOT/{train,val,test}/<class>.

    "val" is None when there is no val/ folder (the caller then takes it out of train). A val/ or
    test/ without videos of some class is a warning: its figures say nothing of that class."""
    warnings: list[str] = []
    train_classes, empty = _scan(root / "train", warnings)
    _need_two_classes(train_classes, root / "train")
    labels = sorted(train_classes)
    label_of = {name: i for i, name in enumerate(labels)}
    notes = [f"ignored {counted(len(empty), 'folder')} in train/ without videos: {shown_names(empty)}"] if empty else []
    parts: dict[str, list[Sample] | None] = {"train": _samples(train_classes, label_of), "val": None, "test": []}
    for part in ("val", "test"):
        folder = root / part
        if not folder.is_dir():
            continue
        classes, _ = _scan(folder, warnings)
        unknown = sorted(set(classes) - set(label_of))
        if unknown:
            raise DatasetError(
                f"{folder} has {'a class folder' if len(unknown) == 1 else 'class folders'} that {root / 'train'} lacks: {', '.join(unknown)}; "
                f"every {part} class needs training videos"
            )
        samples = _samples(classes, label_of)
        if part == "val" and not samples:  # as absent: validation is taken out of train, not switched off
            notes.append(f"ignored {folder}: it holds no videos, so validation is taken out of train/")
            continue
        lacking = [name for name in labels if name not in classes]
        if lacking and samples:
            measured = "validation accuracy" if part == "val" else "a test evaluation"
            warnings.append(
                f"{folder} has no videos of {counted(len(lacking), 'class', 'classes')} that train/ has: {shown_names(lacking)}; "
                f"{measured} says nothing of {'it' if len(lacking) == 1 else 'them'}"
            )
        parts[part] = samples
    return labels, parts, notes, warnings
