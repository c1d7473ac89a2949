"""Split helpers: the official-split number, UCF-style groups and the group-aware validation split.

Why groups: UCF101 cuts each source video into several clips and names them `v_<Class>_gGG_cCC`;
clips of one group share actor, background and viewpoint. A random per-clip split puts
near-duplicates on both sides and reports optimistic accuracy, so validation takes whole groups.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from pathlib import Path

from varec_cli.datasets.base import Sample
from varec_cli.errors import DatasetError

OFFICIAL_SPLITS = (1, 2, 3)

# v_ApplyEyeMakeup_g08_c01 (the `v_` prefix is optional so re-encoded copies still group).
_GROUP_RE = re.compile(r"^(?:v_)?(?P<cls>[^/\\]+?)_g(?P<group>\d+)_c\d+$", re.IGNORECASE)


def group_of(path: str | Path) -> str | None:
    """The UCF-style group of a video file name: `v_Class_g08_c01.avi` → "Class/g08"; else None."""
    match = _GROUP_RE.match(Path(path).stem)
    if not match:
        return None
    return f"{match['cls']}/g{match['group']}"


def check_split(split: int) -> int:
    """The official split number, validated: 1, 2 or 3."""
    if isinstance(split, bool) or split not in OFFICIAL_SPLITS:
        raise DatasetError(f"split must be 1, 2 or 3 (the official train/test splits), got {split!r}")
    return int(split)


def check_val_fraction(val_fraction: float) -> float:
    try:
        value = float(val_fraction)
    except (TypeError, ValueError):
        raise DatasetError(f"validation fraction must be a number from 0 to below 1, got {val_fraction!r}") from None
    if not 0.0 <= value < 1.0:
        raise DatasetError(f"validation fraction must be from 0 to below 1, got {val_fraction!r}")
    return value


def _units_for_val(n_units: int, val_fraction: float) -> int:
    """How many units (groups or clips) of one class go to validation.

    At least one when the class has two or more units (so every class is validated), never all of
    them (so every class still trains)."""
    if val_fraction <= 0 or n_units < 2:
        return 0
    return min(n_units - 1, max(1, round(val_fraction * n_units)))


# How split_validation draws a class's part; recorded with a model and a checkpoint, so that a split
# drawn another way (varec before 0.1: keyed by the class's index) is not taken for this one.
VAL_SPLIT_SCHEME = "per class, keyed by class name"


def split_validation(
    samples: list[Sample], val_fraction: float, seed: int = 0, *, labels: list[str] | None = None
) -> tuple[list[Sample], list[Sample], str]:
    """Take a validation part out of `samples`: stratified per class, deterministic by `seed`.

    A unit is a whole group (`Sample.group`) when the sample has one, else the single clip, so
    clips of one group never sit on both sides. Returns (train, val, how) where how is "group"
    when any sample carried a group, "clip" when none did, "none" when val is empty by request.
    The choice per class depends only on the seed, the class's name (`labels[label]`; the index when
    no names are given) and its units: adding, removing or reordering other classes changes nothing,
    so a model's validation clips stay out of its training clips when the dataset grows.
    """
    val_fraction = check_val_fraction(val_fraction)
    if val_fraction == 0 or not samples:
        return list(samples), [], "none"

    units_by_label: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, sample in enumerate(samples):
        key = f"group:{sample.group}" if sample.group is not None else f"clip:{sample.path.as_posix()}"
        units_by_label[sample.label][key].append(index)

    val_indices: set[int] = set()
    for label in sorted(units_by_label):
        units = units_by_label[label]
        keys = sorted(units)
        name = labels[label] if labels is not None else label
        random.Random(f"varec-val:{seed}:{name}").shuffle(keys)
        for key in keys[: _units_for_val(len(keys), val_fraction)]:
            val_indices.update(units[key])

    train = [s for i, s in enumerate(samples) if i not in val_indices]
    val = [s for i, s in enumerate(samples) if i in val_indices]
    how = "group" if any(s.group is not None for s in samples) else "clip"
    return train, val, how
