"""`varec cache dir|list|clear [NAME]`: where downloads live, what is there, and removing it."""

from __future__ import annotations

import enum
from typing import Optional

import typer

from varec_cli.text import counted


class CacheAction(str, enum.Enum):
    dir = "dir"
    list = "list"
    clear = "clear"


def cache_command(
    action: CacheAction = typer.Argument(..., metavar="ACTION", help="dir: print the cache folder; list: cached models; clear: remove."),
    name: Optional[str] = typer.Argument(None, metavar="NAME", help="With clear: remove only this model, '(compiled)' the compiled graphs or '(features)' the training features (default: all)."),
) -> None:
    """Show or clear the weights cache (VAREC_CACHE_DIR)."""
    from varec_cli import console
    from varec_cli.weights import cache

    if name is not None and action is not CacheAction.clear:
        raise typer.BadParameter(f"NAME is only used with `clear`, not `{action.value}`", param_hint="NAME")
    if action is CacheAction.dir:
        console.result_line(str(cache.root()))
        return

    if action is CacheAction.list:
        items = cache.list_cached()
        if not items:
            console.err().print(f"the cache is empty ({cache.models_dir()})", markup=False, highlight=False)
            return
        from rich.table import Table

        from varec_cli.text import human_bytes

        def build(columns):
            table = Table(show_edge=False)
            for column in columns:
                table.add_column(column, justify="right" if column == "size" else "left", no_wrap=True)
            for item in items:
                cells = {"name": item.name, "kind": item.kind, "size": human_bytes(item.size_bytes),
                         "verified": item.verified, "path": str(item.path)}
                table.add_row(*(cells[column] for column in columns))
            return table

        out = console.out()
        table = build(("name", "kind", "size", "verified", "path"))
        if console.fits(out, table):
            out.print(table)
            return
        # Too narrow for the paths (there to be copied, so never cut or folded into a column): the
        # table without them, then each path on a line of its own.
        out.print(build(("name", "kind", "size", "verified")))
        for item in items:
            out.print(f"{item.name}: {item.path}", soft_wrap=True, markup=False, highlight=False)
        return

    if name is None:
        removed = cache.clear()
        models = [n for n in removed if n not in (cache.COMPILED_NAME, cache.FEATURES_NAME)]
        parts = [counted(len(models), "cached model")]
        parts += ["the compiled graphs"] if cache.COMPILED_NAME in removed else []
        parts += ["the training features"] if cache.FEATURES_NAME in removed else []
        what = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
        console.err().print(f"removed {what} from {cache.root()}", markup=False, highlight=False)
        return

    from varec_cli.errors import WeightsError
    from varec_cli.weights.registry import load_registry, unknown_name_message

    removed = cache.clear(name)
    if removed:
        console.err().print(f"removed {name}", markup=False, highlight=False)
        return
    if name == cache.COMPILED_NAME:
        console.err().print("no compiled graphs; nothing to remove", markup=False, highlight=False)
        return
    if name == cache.FEATURES_NAME:
        console.err().print("no training features; nothing to remove", markup=False, highlight=False)
        return
    known = load_registry().names()
    if name not in known:
        raise WeightsError(unknown_name_message(name, known))
    console.err().print(f"{name} is not cached; nothing to remove", markup=False, highlight=False)
