"""`varec models`: what the registry offers, and what is already cached."""

from __future__ import annotations

import json

import typer

# What a user who cannot read the repository's docs/models.md needs to add a model or a mirror.
REGISTRY_HELP = (
    "\b\nVAREC_REGISTRY=/path/models.toml adds entries or changes shipped ones (only the keys given):\n"
    "  [models.kitchen]                  # a varec model of your own\n"
    '  url = "https://example.org/kitchen.keras"   # or "file:///full/path/kitchen.keras"\n'
    "  # sha256 = \"...\"                 # the file's 64 hex digits; without them the first download is trusted\n"
    "  [models.movinet-a0-base]          # a shipped entry from a mirror or a local copy\n"
    '  url = "file:///srv/models/a0-base.tar.gz"\n'
    "  [defaults]\n"
    '  predict = "kitchen"               # what predict and annotate use without --model'
)


def models_command(
    as_json: bool = typer.Option(False, "--json", help="A JSON list of entries on stdout."),
) -> None:
    """List downloadable models and weights: kind, classes, input, size, cached, digest."""
    from varec_cli import console
    from varec_cli.text import human_bytes
    from varec_cli.weights.resolve import models_table

    rows = models_table()
    if as_json:
        console.result_line(json.dumps(rows, indent=2))
        return

    from rich.table import Table

    def input_spec(row) -> str:
        spec = row["input"] or "-"
        if row["fps"]:
            spec += f" @{row['fps']:g}fps"
        return spec + (" stream" if row["stream"] else "")

    columns = {  # heading: (justify, cell)
        "name": ("left", lambda row: row["name"] + (" *" if row["default_for"] else "")),
        "kind": ("left", lambda row: row["kind"]),
        "classes": ("right", lambda row: str(row["classes"]) if row["classes"] else "-"),
        "input": ("left", input_spec),
        "size": ("right", lambda row: human_bytes(row["bytes"]) if row["bytes"] else "?"),
        "cached": ("left", lambda row: "changed" if row["changed_on_disk"] else "yes" if row["cached"] else "no"),
        "digest": ("left", lambda row: row["digest"]),
    }
    defaults = "; ".join(f"{purpose}: {row['name']}" for row in rows for purpose in row["default_for"])
    out = console.out()

    def build(headings):
        table = Table(show_edge=False, caption=f"* default for {defaults}" if defaults else None, caption_justify="left")
        for heading in headings:
            table.add_column(heading, justify=columns[heading][0], no_wrap=True)
        for row in rows:
            table.add_row(*(columns[heading][1](row) for heading in headings))
        return table

    # On a narrow terminal, whole columns go (least needed first) rather than every cell being cut:
    # the name is what `varec download` takes. `--json` has them all.
    headings = list(columns)
    table = build(headings)
    for dropped in ("digest", "classes", "size", "input"):
        if console.fits(out, table):
            break
        headings.remove(dropped)
        table = build(headings)
    out.print(table)
