"""Training a varec model: what to train (TrainConfig), how progress is reported (Reporter), and
`train()`, which runs it.

    from varec_cli.training import TrainConfig, train
    result = train(TrainConfig(dataset="ucf101", split=1, output=Path("ucf101-gru.keras")))

Modules: loader.py (parallel decoding, the backbone-feature cache), tf_fit.py (TensorFlow: strategy,
precision, tf.data, the Keras fit loop, checkpoints for --resume), history.py (CSV + PNG of the
curves), run.py (the whole run, provenance included). Importing this package is cheap: the heavy
frameworks load when `train()` runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from varec_cli.reporting import Reporter  # where it is defined; importable from here as before

DEFAULT_BACKBONE = "mobilenet_v2"
DEFAULT_RNN = "gru"
DEFAULT_FRAMES = 16
DEFAULT_UNITS = 256
STRATEGIES = ("none", "mirrored", "multiworker")  # how training spreads over devices (tf_fit.make_strategy)

__all__ = ["Reporter", "TrainConfig", "TrainResult", "resume_hint", "train"]


@dataclass
class TrainConfig:
    """Everything `varec train` takes. None means "the default", or "as the --init model has it"."""

    dataset: str
    output: Path
    split: int = 1
    backbone: str | None = None  # default mobilenet_v2
    rnn: str | None = None  # default gru
    frames: int | None = None  # default 16
    size: int | None = None  # default: the backbone's native size (224; 64 for scratch)
    epochs: int = 30
    batch_size: int = 16
    fine_tune_layers: int = 0  # 0 = frozen backbone: features cached, the head alone is trained
    lr: float = 1e-3
    seed: int = 0
    val_fraction: float = 0.1
    init: Path | None = None
    resume: bool = False
    tensorboard: Path | None = None
    strategy: str = "none"
    workers: int | None = None  # decode threads
    backbone_weights: str | None = None  # imagenet | none | PATH; default imagenet for pretrained
    patience: int = 10  # early stopping (the LR is halved after max(2, patience // 3) flat epochs)
    units: int | None = None  # default 256; with --init, the model's own
    dropout: float = 0.3
    mixed_precision: bool = True  # on GPU only


@dataclass
class TrainResult:
    output: Path
    provenance: dict[str, Any]
    history: list[dict[str, float]]
    history_csv: Path | None
    history_png: Path | None
    feature_cache: bool  # the head was trained from cached backbone features
    videos_decoded: int  # videos this run decoded (0 when every feature came from the cache)
    cache_hits: int
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    resumed_from: int = 0  # epochs done before this run (when resumed)


def train(config: TrainConfig, reporter: Reporter | None = None) -> TrainResult:
    """Run one training as `config` says; returns where the model went and how it went."""
    from varec_cli.training.run import run_training

    return run_training(config, reporter or Reporter())


def resume_hint(output: Path) -> str | None:
    """After a run to `output` was stopped: where its last checkpoint is and how to go on from it;
    None when it checkpointed no epoch."""
    from varec_cli.paths import expand_user
    from varec_cli.training.run import checkpoint_dir
    from varec_cli.training.tf_fit import ResumeState

    directory = checkpoint_dir(expand_user(output))
    state = ResumeState.load(directory)
    if state is None or state.epoch <= 0:
        return None
    return f"epoch {state.epoch} is the last one checkpointed (in {directory}): the same command with --resume goes on from there"
