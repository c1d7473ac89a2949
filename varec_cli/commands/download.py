"""`varec download`: fetch registry models into the cache (verified), with a progress bar."""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator, List, Optional

import typer


@contextlib.contextmanager
def download_progress() -> Iterator[Callable[[str], Callable[[int, Optional[int]], None]]]:
    """Yields `progress_for(label)`, a factory of weights-download progress callbacks.

    On a terminal: a rich bar per download on stderr (size, speed, ETA). Elsewhere (logs, pipes):
    one plain line per download on stderr. The commands that may fetch a model first (predict,
    annotate, stream, evaluate, info) use it through `commands/_models.open_model`:

        with download_progress() as progress_for:
            path = resolve_model_path(name, progress=progress_for(name))
    """
    from varec_cli import console

    err = console.err()
    if not err.is_terminal:
        announced: dict[str, Optional[int]] = {}  # label → the size said

        def plain_for(label: str):
            def callback(done: int, total: Optional[int]) -> None:
                # Said again when a transfer of another size starts: the next mirror, after one refused.
                if label not in announced or (done == 0 and total != announced[label]):
                    announced[label] = total
                    from varec_cli.text import human_bytes

                    size = f" ({human_bytes(total)})" if total else ""
                    print(f"downloading {label}{size} ...", file=sys.stderr, flush=True)

            return callback

        yield plain_for
        return

    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )
    with progress:

        def rich_for(label: str):
            task = None

            def callback(done: int, total: Optional[int]) -> None:
                nonlocal task
                if task is None:
                    task = progress.add_task(label, total=total)
                progress.update(task, completed=done, total=total)

            return callback

        yield rich_for


def download_command(
    names: Optional[List[str]] = typer.Argument(None, metavar="NAME", help="Registry names (see `varec models`)."),
    all_: bool = typer.Option(False, "--all", help="Fetch every model in the registry."),
    force: bool = typer.Option(False, "--force", help="Fetch again even when a verified copy is cached."),
) -> None:
    """Download models and weights into the cache, verified against their digests."""
    from varec_cli import console
    from varec_cli.errors import ExitCode, VarecError
    from varec_cli.weights.cache import describe_verification, get_record
    from varec_cli.weights.registry import load_registry
    from varec_cli.weights.resolve import ensure_cached

    if not names and not all_:
        raise typer.BadParameter("give one or more model names, or --all", param_hint="NAME")
    if names and all_:
        raise typer.BadParameter("give model names or --all, not both", param_hint="NAME")
    registry = load_registry()
    wanted = registry.names() if all_ else list(dict.fromkeys(names or []))
    for name in wanted:
        registry.get(name)  # an unknown name fails before anything is downloaded
    failed = 0
    fetched = []
    with download_progress() as progress_for:
        for name in wanted:
            def waiting(name=name) -> None:
                console.err().print(
                    f"waiting for another varec process that is fetching {name} ...", markup=False, highlight=False
                )

            try:
                path = ensure_cached(name, registry=registry, force=force, progress=progress_for(name), on_wait=waiting)
            except VarecError as exc:
                if len(wanted) == 1:
                    raise
                failed += 1  # one failure does not keep the other models from the cache
                console.error_line(str(exc))
                continue
            fetched.append(f"{name}\t{path}\t({describe_verification(get_record(name))})")
    # Printed once the bars are done: on a terminal, a line written while they are live is redrawn over.
    out = console.out()
    for line in fetched:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(ExitCode.FAILURE)
