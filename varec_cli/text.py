"""Wording shared by the library's messages and the CLI's."""

from __future__ import annotations


def counted(count: int, noun: str) -> str:
    """`1 frame`, `2 frames`, `0 frames`: a count with its noun (a regular plural)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
