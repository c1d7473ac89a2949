"""UCF101, official layout.

    ROOT/UCF-101/<Class>/v_<Class>_gGG_cCC.avi
    ROOT/ucfTrainTestlist/classInd.txt            `1 ApplyEyeMakeup`
    ROOT/ucfTrainTestlist/trainlist0N.txt         `ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1`
    ROOT/ucfTrainTestlist/testlist0N.txt          `ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi`

Folder and file names are matched exactly, then ignoring case: upstream, the folder
`HandstandPushups` holds `v_HandStandPushups_*` files while the lists may spell it either way.
"""

from __future__ import annotations

from pathlib import Path

from varec_cli.datasets.base import (
    UCF101_URL,
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

VIDEOS_DIR = "UCF-101"
LISTS_DIR = "ucfTrainTestlist"


def looks_like(root: Path) -> bool:
    return (root / VIDEOS_DIR).is_dir() or (root / LISTS_DIR).is_dir()


def expected(root: Path) -> str:
    return (
        f"expected {root / VIDEOS_DIR}/<Class>/*.avi and {root / LISTS_DIR}/"
        f"{{classInd.txt,trainlist0N.txt,testlist0N.txt}}; official download: {UCF101_URL}"
    )


def read_class_index(path: Path) -> list[str]:
    """classInd.txt → class names in label order (line `1 ApplyEyeMakeup` is label 0)."""
    by_id: dict[int, str] = {}
    for number, line in read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DatasetError(f"{path}:{number}: expected `<id> <ClassName>`, got {line!r}")
        class_id = int(parts[0])
        if class_id in by_id:
            raise DatasetError(f"{path}:{number}: class id {class_id} appears twice")
        by_id[class_id] = parts[1]
    if not by_id:
        raise DatasetError(f"{path} lists no classes; {expected(path.parent.parent)}")
    if sorted(by_id) != list(range(1, len(by_id) + 1)):
        raise DatasetError(f"{path}: class ids must run 1..{len(by_id)} without gaps")
    names = [by_id[i] for i in range(1, len(by_id) + 1)]
    if len({n.lower() for n in names}) != len(names):
        raise DatasetError(f"{path}: a class name appears twice")
    return names


def _read_list(path: Path, labels: list[str], videos: Path) -> list[Sample]:
    """A train or test list; the label comes from the class folder, an id when present must agree."""
    label_of = {name.lower(): index for index, name in enumerate(labels)}
    folders: dict[str, CaseInsensitiveDir] = {}
    top = CaseInsensitiveDir(videos)
    samples: list[Sample] = []
    missing: list[str] = []
    entries = read_lines(path)
    for number, line in entries:
        parts = line.split()
        if len(parts) not in (1, 2) or (len(parts) == 2 and not parts[1].isdigit()):
            raise DatasetError(f"{path}:{number}: expected `<Class>/<video>.avi [<id>]`, got {line!r}")
        relative = parts[0].replace("\\", "/")
        pieces = relative.split("/")
        if len(pieces) != 2 or not all(pieces) or ".." in pieces:
            raise DatasetError(f"{path}:{number}: expected `<Class>/<video>.avi`, got {parts[0]!r}")
        class_name, file_name = pieces
        label = label_of.get(class_name.lower())
        if label is None:
            raise DatasetError(f"{path}:{number}: class {class_name!r} is not in classInd.txt")
        if len(parts) == 2 and int(parts[1]) - 1 != label:
            raise DatasetError(
                f"{path}:{number}: label {parts[1]} does not match class {class_name!r} "
                f"(classInd.txt gives it {label + 1})"
            )
        key = class_name.lower()
        if key not in folders:
            folder = top.get(class_name)
            folders[key] = CaseInsensitiveDir(folder if folder is not None else videos / class_name)
        found = folders[key].get(file_name)
        if found is None or not found.is_file():
            missing.append(relative)
            continue
        samples.append(Sample(found, label, group_of(found)))
    if missing:
        raise missing_files_error(missing, len(entries), path.name, videos, UCF101_URL)
    if not samples:
        raise DatasetError(f"{path} lists no videos; {expected(path.parent.parent)}")
    return samples


def load(root: Path, split: int) -> tuple[list[str], list[Sample], list[Sample], list[str]]:
    """(labels, train, test, warnings) of official split `split` (1, 2 or 3); class folders that
    classInd.txt does not name are left out (a warning says which)."""
    split = check_split(split)
    videos, lists = root / VIDEOS_DIR, root / LISTS_DIR
    class_index = lists / "classInd.txt"
    train_list = lists / f"trainlist{split:02d}.txt"
    test_list = lists / f"testlist{split:02d}.txt"
    for needed in (videos, class_index, train_list, test_list):
        if not needed.exists():
            raise DatasetError(f"UCF101 at {root} is incomplete: {needed} is missing; {expected(root)}")
    labels = read_class_index(class_index)
    train = _read_list(train_list, labels, videos)
    test = _read_list(test_list, labels, videos)
    check_listed_once(train, test, train_list.name, test_list.name)
    warnings = []
    unnamed = unnamed_class_folders(videos, labels, set())
    if unnamed:
        warnings.append(
            f"UCF101 at {root}: {'a class folder' if len(unnamed) == 1 else f'{len(unnamed)} class folders'} in "
            f"{VIDEOS_DIR}/ that {LISTS_DIR}/classInd.txt does not name, left out: {shown_names(unnamed)}"
        )
    return labels, train, test, warnings
