"""The types every layout produces, and the small file helpers the layouts share."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from varec_cli.errors import DatasetError

UCF101_URL = "https://www.crcv.ucf.edu/data/UCF101.php"
HMDB51_URL = "https://serre-lab.clps.brown.edu/resource/hmdb-a-large-human-motion-database/"

LAYOUTS = ("ucf101", "hmdb51", "folder", "folder-splits")
PARTS = ("test", "val", "train")  # a Dataset's lists of samples, as `evaluate --subset` names them


@dataclass(frozen=True)
class Sample:
    """One video: its file, its label index into `Dataset.labels`, and its group (actor/scene) if known."""

    path: Path
    label: int
    group: str | None = None


@dataclass
class Dataset:
    """A loaded dataset: class names plus train/val/test lists of samples.

    `val_by` says how `val` was made: "group" (whole `_gNN_` groups per class), "clip" (per-clip,
    stratified; the names carry no groups), "folder" (a `val/` folder was given) or "none" (empty).
    `notes` holds one-line remarks worth showing a user (a fallback taken, folders ignored);
    `warnings` what may make the run other than the user thinks (videos left out, a class missing
    from val/).
    """

    name: str
    root: Path
    layout: str
    labels: list[str]
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    split: int | None = None
    val_by: str = "none"
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        """Clips per part: {"train": n, "val": n, "test": n}."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def action_types(self) -> dict[str, str] | None:
        """UCF101's class → action type table for this dataset's labels, or None for other layouts."""
        if self.layout != "ucf101":
            return None
        from varec_cli.datasets import action_types

        table = action_types()
        by_lower = {name.lower(): kind for name, kind in table.items()}
        return {label: by_lower[label.lower()] for label in self.labels if label.lower() in by_lower}


def subfolders(folder: Path) -> list[Path]:
    """Visible sub-folders (links to folders too), sorted by name."""
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
    except OSError as exc:
        raise DatasetError(f"cannot read the folder {folder} ({exc.strerror or exc})") from None
    found = []
    for entry in entries:
        if entry.name.startswith((".", "__")):
            continue
        try:
            if entry.is_dir():
                found.append(Path(entry.path))
        except OSError:  # not ours to look at: as if absent
            continue
    return sorted(found)


def unnamed_class_folders(folder: Path, labels: list[str], skip: set[str]) -> list[str]:
    """Sub-folders of `folder` that hold videos but are none of `labels` (any case): a class an
    official layout's lists leave out, so its videos are left out, which a user should hear of."""
    from varec_cli.video import find_videos

    known = {label.lower() for label in labels} | {name.lower() for name in skip}
    return [sub.name for sub in subfolders(folder) if sub.name.lower() not in known and find_videos(sub)]


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines of a text list as (line number, stripped text); tolerates CRLF and a BOM."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


class CaseInsensitiveDir:
    """Finds children of a folder by exact name first, then ignoring case (upstream lists and folders
    disagree on case, e.g. UCF101's `HandstandPushups/v_HandStandPushups_*`). Listings are cached."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._listing: dict[str, Path] | None = None

    def get(self, name: str) -> Path | None:
        exact = self.folder / name
        if exact.exists():
            return exact
        if self._listing is None:
            self._listing = {}
            if self.folder.is_dir():
                for child in sorted(self.folder.iterdir()):
                    self._listing.setdefault(child.name.lower(), child)
        return self._listing.get(name.lower())


def missing_files_error(missing: list[str], total: int, list_name: str, where: Path, url: str) -> DatasetError:
    """One line: how many list entries name missing files, the first of them, and the download page."""
    return DatasetError(
        f"{len(missing)} of {total} entries in {list_name} name videos missing under {where} "
        f"(first: {missing[0]}); is the download complete? Official download: {url}"
    )


def check_listed_once(train: list[Sample], test: list[Sample], train_list: str, test_list: str) -> None:
    """A video the split lists name twice, or as both train and test, is an error: a test clip trained
    on inflates the score, and the official lists never do it, so a hand-edited list has a slip.
    `train_list`, `test_list`: the files named in the message (the same text where one file marks both)."""
    seen: dict[Path, str] = {}
    names = {"train": train_list, "test": test_list}
    for part, samples in (("train", train), ("test", test)):
        for sample in samples:
            earlier = seen.get(sample.path)
            if earlier is not None:
                if earlier == part:
                    where = f"twice in the {part} list ({names[part]})"
                else:
                    files = train_list if train_list == test_list else f"{train_list}, {test_list}"
                    where = f"in both the train and the test list ({files})"
                raise DatasetError(f"{sample.path} is listed {where}; each video belongs in one list, once")
            seen[sample.path] = part


def check_each_video_once(parts: dict[str, list[Sample]], labels: list[str]) -> None:
    """One video file reached by two names (a linked folder, a link, a hard link) in two classes, or
    in two parts, is an error: its label is two things at once, or a clip trained on is also measured.
    Within one class and part it would weigh double. Compared by file identity, not by name."""
    seen: dict[tuple[int, int], tuple[str, Sample]] = {}
    for part, samples in parts.items():
        for sample in samples:
            try:
                status = sample.path.stat()
            except OSError:  # gone, or not ours to look at: decoding it will say so
                continue
            key = (status.st_dev, status.st_ino)
            if key not in seen:
                seen[key] = (part, sample)
                continue
            earlier_part, earlier = seen[key]
            where = f"{earlier.path} and {sample.path} are one file"
            if earlier.label != sample.label:
                raise DatasetError(
                    f"{where}, in two classes ({labels[earlier.label]}, {labels[sample.label]}): a link leads from "
                    "one class folder into another; each video belongs to one class"
                )
            if earlier_part != part:
                raise DatasetError(
                    f"{where}, in both {earlier_part} and {part}: a link leads from one into the other, and a clip "
                    "trained on and measured inflates the score; each video belongs in one part"
                )
            raise DatasetError(f"{where}, reached through a link: each video belongs in a dataset once")


def class_index_by_name(labels: list[str]) -> Callable[[str], int | None]:
    """A dataset's class name → the index of the model label it is: the same name, else the one label
    that differs only in case (`ApplyEyeMakeup` for a folder `applyeyemakeup`); never one of two labels
    that differ only in case (`Run` and `run` are two classes). A name is the same however its accents
    are written (`é` as one character, or `e` and an accent, as a Mac's copy may spell a folder). None
    for a class the labels lack."""

    from varec_cli.text import same_name as same

    exact = {same(label): i for i, label in enumerate(labels)}
    folded: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        folded.setdefault(same(label).casefold(), []).append(i)

    def index_of(name: str) -> int | None:
        if same(name) in exact:
            return exact[same(name)]
        candidates = folded.get(same(name).casefold(), [])
        return candidates[0] if len(candidates) == 1 else None

    return index_of
