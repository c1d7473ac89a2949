"""`varec info`: what a model file is."""

from __future__ import annotations

import json
import math

import typer


def info_command(
    model: str = typer.Argument(..., metavar="MODEL", help="A model file or folder, or a registry name."),
    as_json: bool = typer.Option(False, "--json", help="Print the description as JSON."),
    all_labels: bool = typer.Option(False, "--labels", help="List every label, not only the first few."),
) -> None:
    """Describe MODEL: labels, clip spec, backbone, RNN, parameters and training provenance."""
    from varec_cli import console
    from varec_cli.commands._models import open_model

    description = open_model(model, "info").describe()
    if as_json:
        console.result_line(json.dumps(_without_nan(description), indent=2, default=str))
        return
    from rich.table import Table

    table = Table(show_header=False, show_edge=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    labels = description.get("labels", [])
    for key, value in description.items():
        if key == "labels":
            shown = labels if all_labels or len(labels) <= 12 else labels[:10] + [f"... ({len(labels) - 10} more)"]
            value = ", ".join(shown)
        elif key == "provenance":
            continue
        elif isinstance(value, (list, tuple)):
            value = " x ".join(str(v) for v in value) if key == "frame_size" else ", ".join(map(str, value))
        elif isinstance(value, int) and key == "parameters":
            value = f"{value:,}"
        table.add_row(key.replace("_", " "), "-" if value is None else str(value))
    provenance = description.get("provenance") or {}
    for key, value in provenance.items():
        table.add_row(f"trained: {key.replace('_', ' ')}", _shown(value))
    if not provenance:
        table.add_row("trained", "no training provenance recorded")
    console.out().print(table)


def _without_nan(value):
    """NaN and infinities as null: JSON has neither (a diverged training run may have recorded them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _without_nan(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_nan(item) for item in value]
    return value


_PART_ORDER = {"train": 0, "val": 1, "test": 2}


def _shown(value) -> str:
    """A provenance value as a person reads it: no Python None/True/False, numbers as recorded (they
    are rounded when written; a learning rate of 1e-05 is not 0.0000, 3 hours not 1.08e+04 s)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict) and all(isinstance(item, (str, int, float, bool)) or item is None for item in value.values()):
        # clips: "train 40, val 8, test 32", in the order a run uses them (the file keeps keys sorted)
        parts = sorted(value.items(), key=lambda pair: _PART_ORDER.get(pair[0], len(_PART_ORDER)))
        return ", ".join(f"{name} {_shown(item)}" for name, item in parts)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)
