"""`varec models`: what the registry offers, and what is already cached."""

from __future__ import annotations

import json

import typer


def models_command(
    as_json: bool = typer.Option(False, "--json", help="A JSON list of entries on stdout."),
) -> None:
    """List downloadable models and weights: kind, classes, input, size, cached, digest."""
    from varec_cli.weights.download import human_bytes
    from varec_cli.weights.resolve import models_table

    rows = models_table()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return

    from rich.table import Table

    defaults = "; ".join(f"{purpose}: {row['name']}" for row in rows for purpose in row["default_for"])
    table = Table(show_edge=False, caption=f"* default for {defaults}" if defaults else None, caption_justify="left")
    for column, justify in (
        ("name", "left"),
        ("kind", "left"),
        ("classes", "right"),
        ("input", "left"),
        ("size", "right"),
        ("cached", "left"),
        ("digest", "left"),
    ):
        table.add_column(column, justify=justify, no_wrap=True)
    for row in rows:
        input_spec = row["input"] or "-"
        if row["fps"]:
            input_spec += f" @{row['fps']:g}fps"
        if row["stream"]:
            input_spec += " stream"
        table.add_row(
            row["name"] + (" *" if row["default_for"] else ""),
            row["kind"],
            str(row["classes"]) if row["classes"] else "-",
            input_spec,
            human_bytes(row["bytes"]) if row["bytes"] else "?",
            "yes" if row["cached"] else "no",
            row["digest"],
        )
    wide_out().print(table)


def wide_out():
    """The stdout console; when stdout is not a terminal, wide enough that table rows stay whole."""
    import os
    import sys

    from varec_cli import console

    out = console.out()
    if out.is_terminal or "COLUMNS" in os.environ:
        return out
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, markup=False, width=max(out.width, 160))
