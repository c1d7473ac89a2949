"""Datasets: find a dataset, detect its layout, read its official split, make a group-aware val split.

    load_dataset("ucf101", split=1)            # $VAREC_DATA_DIR/ucf101, official layout
    load_dataset("/data/my_clips")             # any folder: layout detected by content

Layouts, in detection order: "ucf101" (UCF-101/ or ucfTrainTestlist/ inside), "hmdb51"
(testTrainMulti_7030_splits/ inside), "folder-splits" (train/ inside), "folder" (class folders).
See docs/datasets.md.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from varec_cli import paths
from varec_cli.datasets import folder, hmdb51, ucf101
from varec_cli.datasets.base import HMDB51_URL, LAYOUTS, UCF101_URL, Dataset, Sample, check_each_video_once
from varec_cli.datasets.splits import OFFICIAL_SPLITS, check_split, check_val_fraction, group_of, split_validation
from varec_cli.errors import DatasetError
from varec_cli.paths import expand_user
from varec_cli.video import VIDEO_EXTENSIONS, is_video

__all__ = [
    "LAYOUTS",
    "NAMED_DATASETS",
    "OFFICIAL_SPLITS",
    "VIDEO_EXTENSIONS",
    "Dataset",
    "Sample",
    "action_types",
    "detect_layout",
    "group_of",
    "is_video",
    "load_dataset",
    "resolve_dataset_root",
    "split_validation",
]

NAMED_DATASETS = {"ucf101": UCF101_URL, "hmdb51": HMDB51_URL}


def resolve_dataset_root(name_or_path: str | Path) -> tuple[str, Path, str | None]:
    """(name, root, required layout). `ucf101`/`hmdb51` mean paths.data_dir()/<name> and must have
    that layout; anything else is a folder path whose layout is detected. Only the names as written
    here are always names: another spelling (`UCF101`) is the folder of that name in the current
    directory when there is one, else the name."""
    text = str(name_or_path)
    if not isinstance(name_or_path, Path) and (
        text in NAMED_DATASETS or (text.lower() in NAMED_DATASETS and not Path(text).exists())
    ):
        name = text.lower()
        return name, paths.data_dir() / name, name
    root = expand_user(text)
    return root.name or text, root, None


def detect_layout(root: Path) -> str:
    """The layout of an existing folder, judged by what it contains."""
    if ucf101.looks_like(root):
        return "ucf101"
    if hmdb51.looks_like(root):
        return "hmdb51"
    if folder.looks_like_splits(root):
        return "folder-splits"
    return "folder"


def load_dataset(name_or_path: str | Path, *, split: int = 1, val_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """Load a dataset by name (`ucf101`, `hmdb51`) or folder path.

    `split` picks the official train/test split (1, 2 or 3; validated for every layout, used by
    UCF101 and HMDB51). `val` comes from a `val/` folder when the layout has one, otherwise
    `val_fraction` of train is taken out by group (see splits.split_validation), per class,
    deterministically for a given `seed`.
    """
    split = check_split(split)
    val_fraction = check_val_fraction(val_fraction)
    if not str(name_or_path).strip():  # Path("") is the working folder: a script's unset variable, not a choice
        raise DatasetError("the dataset is empty: give a folder of class folders, or the name ucf101 or hmdb51")
    name, root, required = resolve_dataset_root(name_or_path)

    if not root.is_dir():
        if required is not None:
            expected = {"ucf101": ucf101.expected, "hmdb51": hmdb51.expected}[required](root)
            raise DatasetError(
                f"dataset {name!r} not found: looked in {root} (set VAREC_DATA_DIR to move it); {expected}"
            )
        what = "is not a folder" if root.exists() else "does not exist"
        raise DatasetError(
            f"dataset folder {root} {what}; give a folder of class folders, or the name ucf101 or hmdb51"
        )

    layout = detect_layout(root)
    if required is not None and layout != required:
        expected = {"ucf101": ucf101.expected, "hmdb51": hmdb51.expected}[required](root)
        raise DatasetError(f"{root} does not hold the {required} official layout; {expected}")

    notes: list[str] = []
    given_val: list[Sample] | None = None
    if layout == "ucf101":
        labels, train, test, warnings = ucf101.load(root, split)
    elif layout == "hmdb51":
        labels, train, test, warnings = hmdb51.load(root, split)
    elif layout == "folder-splits":
        labels, parts, notes, warnings = folder.load_splits(root)
        train, given_val, test = parts["train"] or [], parts["val"], parts["test"] or []
    else:
        labels, train, notes, warnings = folder.load(root)
        test = []

    check_each_video_once({"train": train, "val": given_val or [], "test": test}, list(labels))
    if given_val is not None:
        val, val_by = given_val, "folder"
    else:
        train, val, val_by = split_validation(train, val_fraction, seed, labels=list(labels))
        if val_by == "clip":
            notes.append("validation split is per clip: the file names carry no `_gNN_` groups")

    return Dataset(
        name=name,
        root=root,
        layout=layout,
        labels=labels,
        train=train,
        val=val,
        test=test,
        split=split if layout in ("ucf101", "hmdb51") else None,
        val_by=val_by,
        notes=notes,
        warnings=warnings,
    )


@lru_cache(maxsize=1)
def _action_type_table() -> tuple[tuple[str, str], ...]:
    from importlib import resources

    text = resources.files("varec_cli").joinpath("data").joinpath("ucf101_action_types.tsv").read_text(encoding="utf-8")
    rows = []
    for line in text.splitlines()[1:]:  # header: class, action_type
        if line.strip():
            class_name, kind = line.rstrip("\r").split("\t")
            rows.append((class_name.strip(), kind.strip()))
    return tuple(rows)


def action_types() -> dict[str, str]:
    """UCF101 class name → action type (one of its five: Human-Object Interaction, Body-Motion Only,
    Human-Human Interaction, Playing Musical Instruments, Sports), from the packaged table."""
    return dict(_action_type_table())
