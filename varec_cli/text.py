"""Wording shared by the library's messages and the CLI's."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`1 frame`, `2 frames`, `0 frames`: a count with its noun (`plural` where it is not noun + s)."""
    return f"{count} {noun}" if count == 1 else f"{count} {plural or noun + 's'}"


def shown_names(names: list[str], limit: int = 5) -> str:
    """`a, b, c and 4 more`: a list of names a line can hold."""
    text = ", ".join(names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")


def seconds(value: float) -> str:
    """`4.0 s`, and `0.04 s` below a second, where one decimal would say `0.0 s` of what is there."""
    return f"{value:.{2 if 0 < value < 1 else 1}f} s"


def human_bytes(n: int | float | None) -> str:
    """`1.4 MB`: a size in decimal units, as disks and downloads show them; `?` when unknown."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def control_characters_problem(labels: list[str]) -> str | None:
    """What is wrong with a model's labels (a .keras file's or a SavedModel's) that hold escape codes,
    line breaks or tabs (Unicode category Cc): printed, they would recolour the terminal or break a
    table's row in two. None when they hold none."""
    import unicodedata

    if any(unicodedata.category(character) == "Cc" for label in labels for character in label):
        return "labels must not hold control characters (escape codes, line breaks, tabs)"
    return None


def same_name(name: str) -> str:
    """A name as a reader sees it: `é` written as one character or as `e` and an accent is one name
    (Unicode NFC), as a folder copied from a Mac may spell it."""
    import unicodedata

    return unicodedata.normalize("NFC", name)


def named_twice(names: list[str]) -> tuple[str, str] | None:
    """The first two of `names` that are one name (same_name), as written; None when all differ."""
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        first = seen.setdefault(same_name(name), index)
        if first != index:
            return names[first], name
    return None
