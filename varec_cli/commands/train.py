"""`varec train`: train a CNN + RNN on a dataset and save a varec model."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from varec_cli.commands import DATASET_HELP
from varec_cli.models.backbones import BACKBONES, RNNS, backbone_spec
from varec_cli.text import counted
from varec_cli.training import STRATEGIES

# typer offers these as choices; the library's own lists, so the two never differ
Backbone = Literal[tuple(BACKBONES)]
Rnn = Literal[RNNS]
Strategy = Literal[STRATEGIES]


# Bounds past which a run would not fit in any machine's memory (a 1e20 typo gave tracebacks, a
# segfault at 21 GB, or a run that ignored SIGTERM): far above what action recognition uses
# (5-64 frames, 112-320 px, 256-2048 units).
MAX_FRAMES, MAX_SIZE, MAX_UNITS, MAX_BATCH = 512, 1024, 8192, 65536

def train_command(
    dataset: str = typer.Option(..., "--dataset", "-d", metavar="DATASET", help=DATASET_HELP),
    split: int = typer.Option(1, "--split", metavar="N", min=1, max=3, help="Official train/test split (1, 2 or 3) for UCF101 and HMDB51."),
    output: Path = typer.Option(Path("model.keras"), "--output", "-o", metavar="FILE.keras", help="Where to write the model (.keras)."),
    backbone: Optional[Backbone] = typer.Option(
        None, "--backbone", help="Per-frame CNN [default: mobilenet_v2; with --init: the model's]."
    ),
    rnn: Optional[Rnn] = typer.Option(None, "--rnn", help="Recurrent layer over the frames [default: gru]."),
    frames: Optional[int] = typer.Option(None, "--frames", metavar="N", min=1, max=MAX_FRAMES, help="Frames per clip [default: 16]."),
    size: Optional[int] = typer.Option(
        None, "--size", metavar="PIXELS", min=32, max=MAX_SIZE, help="Frame size in pixels [default: the backbone's, 224; scratch 64]."
    ),
    epochs: int = typer.Option(30, "--epochs", metavar="N", min=1, help="Maximum epochs (early stopping may end sooner)."),
    batch_size: int = typer.Option(16, "--batch-size", metavar="N", min=1, max=MAX_BATCH, help="Clips per batch (global, across replicas)."),
    fine_tune_layers: int = typer.Option(
        0, "--fine-tune-layers", metavar="K", min=0,
        help="Train the backbone's last K weighted layers too; 0 freezes it and trains the head on cached features. A new --backbone scratch CNN is always trained whole; one from --init is frozen by 0 like any other.",
    ),
    lr: float = typer.Option(1e-3, "--lr", metavar="RATE", help="Initial learning rate (Adam); halved when val loss stalls."),
    seed: int = typer.Option(  # Keras' range of seeds
        0, "--seed", metavar="N", min=0, max=2**32 - 1, help="Seed for the validation split, shuffling and initialisation."
    ),
    val_fraction: float = typer.Option(0.1, "--val-fraction", metavar="FRACTION", help="Share of train held out for validation (by group)."),
    init: Optional[Path] = typer.Option(
        None, "--init", metavar="MODEL", help="Start from this varec model (a new output layer when the classes differ)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last checkpoint."),
    tensorboard: Optional[Path] = typer.Option(None, "--tensorboard", metavar="DIR", help="Write TensorBoard logs to this folder."),
    strategy: Strategy = typer.Option(
        "none", "--strategy", help="mirrored: all GPUs of this machine; multiworker: machines in TF_CONFIG."
    ),
    workers: Optional[int] = typer.Option(None, "--workers", metavar="N", min=1, help="Video decoding threads [default: cores, 2-8]."),
    backbone_weights: Optional[str] = typer.Option(
        None, "--backbone-weights", metavar="WEIGHTS", help="imagenet (default for pretrained backbones), none, or a .h5 file."
    ),
    patience: int = typer.Option(10, "--patience", metavar="EPOCHS", min=1, help="Stop after this many epochs without val loss gain."),
    units: Optional[int] = typer.Option(None, "--units", metavar="N", min=1, max=MAX_UNITS, help="RNN units [default: 256; with --init, its own]."),
) -> None:
    """Train a model on DATASET and save it, with its training curves beside it.

    With a frozen backbone (the default) each clip's per-frame features are computed once and cached;
    later epochs and later runs train the RNN head from the cache.
    """
    from varec_cli.commands._reporting import RichReporter
    from varec_cli.training import TrainConfig, train

    if not 0 < lr < float("inf"):
        raise typer.BadParameter("must be a number more than 0", param_hint="--lr")
    if backbone and not backbone_spec(backbone).pretrained and backbone_weights not in (None, "none"):
        raise typer.BadParameter(f"the {backbone} backbone has no pretrained weights", param_hint="--backbone-weights")
    if not 0 <= val_fraction < 1:
        raise typer.BadParameter("must be from 0 to below 1", param_hint="--val-fraction")
    config = TrainConfig(
        dataset=dataset, output=output, split=split, backbone=backbone, rnn=rnn, frames=frames, size=size,
        epochs=epochs, batch_size=batch_size, fine_tune_layers=fine_tune_layers, lr=lr, seed=seed,
        val_fraction=val_fraction, init=init, resume=resume, tensorboard=tensorboard, strategy=strategy,
        workers=workers, backbone_weights=backbone_weights, patience=patience, units=units,
    )
    try:
        with RichReporter() as reporter:
            result = train(config, reporter)
    except KeyboardInterrupt:
        _say_how_to_resume(output)
        raise
    p = result.provenance
    metrics = "  ".join(
        f"{key.replace('_', ' ')} {p[key]:.4f}" for key in ("train_accuracy", "val_accuracy")
        if isinstance(p.get(key), float)  # None where training diverged
    )
    reporter.info(
        f"saved {result.output} (best epoch {p.get('best_epoch')} of {p.get('epochs')}; {metrics}); "
        f"history: {result.history_csv}, {result.history_png}"
    )
    if result.skipped:
        reporter.warning(f"skipped {counted(len(result.skipped), 'video')} that could not be decoded")


def _say_how_to_resume(output) -> None:
    """After Ctrl-C: the epochs done are not lost, and here is how to go on."""
    from varec_cli.training import resume_hint

    if (hint := resume_hint(output)) is not None:
        typer.echo(hint, err=True)
