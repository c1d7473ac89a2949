"""HMDB51, official layout.

    ROOT/<class>/<video>.avi
    ROOT/testTrainMulti_7030_splits/<class>_test_splitN.txt     `<video>.avi <id>`

id 1 = train, 2 = test, 0 = unused in that split. Classes are the split files' class names,
sorted. HMDB51 names carry no UCF-style groups, so a validation part taken from train is per clip;
the official split itself keeps clips of one source video on one side.
"""

from __future__ import annotations

import re
from pathlib import Path

from varec_cli.datasets.base import (
    HMDB51_URL,
    CaseInsensitiveDir,
    Sample,
    check_listed_once,
    missing_files_error,
    read_lines,
    unnamed_class_folders,
)
from varec_cli.datasets.splits import check_split, group_of
from varec_cli.errors import DatasetError
from varec_cli.text import shown_names

SPLITS_DIR = "testTrainMulti_7030_splits"
_SPLIT_FILE_RE = re.compile(r"^(?P<cls>.+)_test_split(?P<n>\d+)\.txt$", re.IGNORECASE)


def looks_like(root: Path) -> bool:
    return (root / SPLITS_DIR).is_dir()


def expected(root: Path) -> str:
    return (
        f"expected {root}/<class>/*.avi and {root / SPLITS_DIR}/<class>_test_splitN.txt; "
        f"official download: {HMDB51_URL}"
    )


def load(root: Path, split: int) -> tuple[list[str], list[Sample], list[Sample], list[str]]:
    """(labels, train, test, warnings) of official split `split` (1, 2 or 3); id-0 (unused) clips are
    left out, and so are class folders no split file names (a warning says which)."""
    split = check_split(split)
    splits_dir = root / SPLITS_DIR
    if not splits_dir.is_dir():
        raise DatasetError(f"HMDB51 at {root} is incomplete: {splits_dir} is missing; {expected(root)}")
    split_files: dict[str, Path] = {}
    named: set[str] = set()  # classes any split's file names: each must have this split's file too
    for path in sorted(splits_dir.iterdir()):
        match = _SPLIT_FILE_RE.match(path.name)
        if match and path.is_file():
            named.add(match["cls"])
            if int(match["n"]) == split:
                split_files[match["cls"]] = path
    if not split_files:
        raise DatasetError(f"no *_test_split{split}.txt files in {splits_dir}; {expected(root)}")
    lacking = sorted(named - set(split_files))
    if lacking:
        shown = shown_names([f"{name}_test_split{split}.txt" for name in lacking], limit=3)
        raise DatasetError(
            f"HMDB51 at {root} is incomplete: {splits_dir} has no {shown} (other splits name "
            f"{'that class' if len(lacking) == 1 else 'those classes'}); {expected(root)}"
        )

    labels = sorted(split_files)
    top = CaseInsensitiveDir(root)
    train: list[Sample] = []
    test: list[Sample] = []
    for label, class_name in enumerate(labels):
        list_path = split_files[class_name]
        folder = top.get(class_name)
        if folder is None or not folder.is_dir():
            raise DatasetError(
                f"HMDB51 class folder {root / class_name} is missing (named by {list_path.name}); {expected(root)}"
            )
        files = CaseInsensitiveDir(folder)
        missing: list[str] = []
        entries = read_lines(list_path)
        for number, line in entries:
            parts = line.split()
            if len(parts) != 2 or parts[1] not in {"0", "1", "2"}:
                raise DatasetError(f"{list_path}:{number}: expected `<video>.avi <0|1|2>`, got {line!r}")
            name, role = parts
            if role == "0":
                continue
            found = files.get(name)
            if found is None or not found.is_file():
                missing.append(f"{class_name}/{name}")
                continue
            (train if role == "1" else test).append(Sample(found, label, group_of(found)))
        if missing:
            raise missing_files_error(missing, len(entries), list_path.name, root, HMDB51_URL)
    if not train:
        raise DatasetError(f"the split {split} lists in {splits_dir} mark no training videos; {expected(root)}")
    files = f"the *_test_split{split}.txt files"
    check_listed_once(train, test, files, files)
    warnings = []
    unnamed = unnamed_class_folders(root, labels, {SPLITS_DIR})
    if unnamed:
        warnings.append(
            f"HMDB51 at {root}: {'a class folder' if len(unnamed) == 1 else f'{len(unnamed)} class folders'} with "
            f"videos but no <class>_test_split{split}.txt in {SPLITS_DIR}/, left out: {shown_names(unnamed)}"
        )
    return labels, train, test, warnings
