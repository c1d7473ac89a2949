"""One training run, start to finish: dataset → network → clips or cached features → fit → model file.

Two paths, chosen by whether the frame encoder has anything to learn:
- frozen encoder (a pretrained backbone or an --init model with --fine-tune-layers 0): per-frame
  features are computed once per clip and cached on disk (loader.FeatureCache); the sequence head
  alone is trained on them, then encoder + head are assembled into the full model for saving.
- trainable encoder (`--backbone scratch`, or --fine-tune-layers K > 0): the whole network is trained
  on decoded clips, decoded by worker threads ahead of the accelerator.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from varec_cli.datasets.splits import VAL_SPLIT_SCHEME
from varec_cli.errors import ModelError, VarecError
from varec_cli.paths import expand_user
from varec_cli.text import control_characters_problem, counted, named_twice
from varec_cli.training import (
    DEFAULT_BACKBONE,
    DEFAULT_FRAMES,
    DEFAULT_RNN,
    DEFAULT_UNITS,
    Reporter,
    TrainConfig,
    TrainResult,
)

VAL_SPLIT_WORDS = {  # for the dataset line train prints
    "group": "by group: whole _gNN_ groups per class",
    "clip": "per clip: the names carry no groups",
    "folder": "from the val/ folder",
    "none": "none held out",
}
VAL_SPLIT_RECORDED = {  # the model file's provenance["val_split"], as every varec has written it
    "group": "by group (whole _gNN_ groups per class)",
    "clip": "per clip (names carry no groups)",
    "folder": "from the val/ folder",
    "none": "none",
}


def checkpoint_dir(output: Path) -> Path:
    """Where an unfinished run keeps its checkpoints: beside the model, `<stem>.checkpoints/`."""
    output = Path(output)
    return output.with_name(output.stem + ".checkpoints")


RUN_LOCK = ".lock"  # in the checkpoint folder, held by the run writing it


@contextlib.contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """Held for a whole run, so that a second run to the same -o is refused at once: sharing one
    checkpoint folder, the two would delete each other's checkpoints or resume the other's weights.
    Only the writing worker of a cluster takes it (the others run the same command, same -o).
    """
    from varec_cli.files import file_lock
    from varec_cli.training.tf_fit import is_chief

    if not is_chief():
        yield
        return
    directory = checkpoint_dir(output)
    lock = directory / RUN_LOCK
    made = [folder for folder in (directory, *directory.parents) if not folder.exists()]  # deepest first

    def busy() -> None:
        raise VarecError(
            f"another varec train is writing {output} now (its checkpoints are in {directory}); wait for it to "
            "finish, or give this run another -o"
        )

    def cannot_lock(reason: str) -> VarecError:
        return VarecError(f"cannot create {lock} ({reason}): a run keeps its checkpoints beside -o")

    def remove_if_done() -> None:  # a run that stopped before its first checkpoint leaves no folder behind
        with contextlib.suppress(OSError):
            if [child.name for child in directory.iterdir()] == [RUN_LOCK]:
                shutil.rmtree(directory)
        for folder in made[1:]:  # nor the folders made for -o, when nothing went in them
            try:
                folder.rmdir()
            except OSError:
                break

    with file_lock(lock, cannot_lock=cannot_lock, on_busy=busy):
        try:
            yield
        finally:
            remove_if_done()
    if sys.platform == "win32":  # pragma: no cover - Windows deletes no open file: the lock went only now
        remove_if_done()  # (and a run that took it meanwhile holds it open, so it stays)


def clear_checkpoints(directory: Path) -> None:
    """Deletes what a run left in its checkpoint folder, but the lock the run now holds there."""
    if not directory.is_dir():
        return
    for child in directory.iterdir():
        if child.name == RUN_LOCK:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


@dataclass
class _Architecture:
    backbone: str
    rnn: str
    frames: int
    size: int


def _check_config(config: TrainConfig) -> None:
    from varec_cli.files import check_folder_writable

    output = expand_user(config.output)
    if output.suffix != ".keras":
        raise ModelError(f"{config.output}: a varec model file must end in .keras")
    # Checked now, not after hours of training: the checkpoints and the model go there.
    if output.is_dir():
        raise ModelError(f"{output}: is a folder; -o names the model file to write, e.g. {output / 'model.keras'}")
    check_folder_writable(output.parent, "-o")
    from varec_cli.training.tf_fit import ResumeState

    if config.resume and output.exists() and ResumeState.load(checkpoint_dir(output)) is None:
        raise VarecError(  # a finished run: starting over would replace it
            f"--resume: no checkpoint in {checkpoint_dir(output)}, and {output} exists: that run has finished. "
            f"To train it further, start a new run from it (--init {output} -o NEW.keras); to train it again "
            "from the start, replacing it, drop --resume"
        )
    for name, value, low in (
        ("--epochs", config.epochs, 1),
        ("--batch-size", config.batch_size, 1),
        ("--fine-tune-layers", config.fine_tune_layers, 0),
        ("--patience", config.patience, 1),
    ):
        if value < low:
            raise VarecError(f"{name} must be at least {low}, got {value}")
    if config.frames is not None and config.frames < 1:
        raise VarecError(f"--frames must be at least 1, got {config.frames}")
    if config.size is not None and config.size < 32:
        raise VarecError(f"--size must be at least 32 pixels, got {config.size}")
    if not config.lr > 0:
        raise VarecError(f"--lr must be positive, got {config.lr}")
    if config.init is not None and config.backbone_weights is not None:
        raise VarecError("--backbone-weights and --init exclude each other: the --init model brings its own weights")
    if config.init is not None and output.is_file() and expand_user(config.init).is_file():
        from varec_cli.video.writer import same_file

        if same_file(output, expand_user(config.init)):
            raise VarecError(
                f"{config.output}: -o is the --init model; the run would replace the model it starts from, so give "
                "another -o"
            )
    checkpoints = checkpoint_dir(output)
    if (checkpoints.is_symlink() and not checkpoints.exists()) or (checkpoints.exists() and not checkpoints.is_dir()):
        from varec_cli.files import missing_reason

        what = missing_reason(checkpoints) or "not a folder"
        raise VarecError(
            f"{checkpoints} is in the way ({what}): a run keeps its checkpoints in a folder of that name beside "
            "-o; move it, or give another -o"
        )
    if config.tensorboard:
        from varec_cli.training.history import history_paths

        board = expand_user(config.tensorboard).resolve()
        csv_path, png_path = history_paths(output)
        for taken, what in (
            (output, "-o, the model file"),
            (checkpoints, "this run's checkpoint folder"),
            (csv_path, "the run's history file"),
            (png_path, "the run's history plot"),
        ):
            taken = taken.resolve()
            if board == taken or taken in board.parents:  # found after training, or deleted with the checkpoints
                raise VarecError(
                    f"--tensorboard {config.tensorboard}: is {'in ' if board != taken else ''}{what} ({taken}); "
                    "give the logs a folder of their own"
                )
        check_folder_writable(config.tensorboard, "--tensorboard")


def _architecture(config: TrainConfig, init_meta) -> _Architecture:
    from varec_cli.models.backbones import backbone_spec

    if init_meta is None:
        backbone = config.backbone or DEFAULT_BACKBONE
        spec = backbone_spec(backbone)
        return _Architecture(
            backbone, config.rnn or DEFAULT_RNN, config.frames or DEFAULT_FRAMES, config.size or spec.default_size
        )
    theirs = {"backbone": init_meta.backbone, "rnn": init_meta.rnn, "frames": init_meta.frames, "size": init_meta.size[0]}
    given = {"backbone": config.backbone, "rnn": config.rnn, "frames": config.frames, "size": config.size}
    for key, value in given.items():
        if value is not None and value != theirs[key]:
            raise VarecError(
                f"--{key} {value} differs from the --init model's {key} ({theirs[key]}); "
                f"--init keeps the network's shape, so drop --{key}"
            )
    if init_meta.size[0] != init_meta.size[1]:
        raise VarecError(f"--init model has non-square frames {init_meta.size}; varec trains square frames only")
    return _Architecture(**theirs)


def _backbone_weights(backbone: str, choice: str | None, reporter: Reporter) -> tuple[Path | None, str]:
    """(weights file or None, how provenance describes it) for `--backbone-weights`."""
    from varec_cli.models.backbones import backbone_spec

    if not backbone_spec(backbone).pretrained:
        if choice not in (None, "none"):
            raise VarecError("the scratch backbone has no pretrained weights; drop --backbone-weights")
        return None, "none (scratch CNN, trained from random initialisation)"
    choice = choice or "imagenet"
    if choice == "none":
        return None, "none (random initialisation)"
    if choice == "imagenet":
        from varec_cli.weights.resolve import backbone_weights_path

        done_stage = []

        def progress(done: int, total: int | None) -> None:
            if not done_stage:
                reporter.info(f"downloading the ImageNet weights of {backbone} into the weights cache")
                reporter.stage(f"downloading {backbone} ImageNet weights", total)
                done_stage.append(0)
            reporter.advance(done - done_stage[0])
            done_stage[0] = done

        path = backbone_weights_path(backbone, progress=progress)
        if done_stage:
            reporter.stage_end()
        return Path(path), f"imagenet ({Path(path).name})"
    path = expand_user(choice)
    if not path.is_file():
        raise VarecError(f"--backbone-weights {choice}: no such file (give imagenet, none or a .h5 weights file)")
    return path, f"file {path.name}"


def _cnn_of(encoder):
    """The CNN inside a frame encoder (the nested model after the preprocessing layer)."""
    from varec_cli.runtime import import_keras

    keras = import_keras()

    for layer in encoder.layers:
        if isinstance(layer, keras.Model):
            return layer
    raise ModelError("the frame encoder holds no CNN model")


def _replace_classifier(head, num_classes: int):
    """The same sequence head with a fresh softmax layer for a new class set (the RNN is kept)."""
    from varec_cli.runtime import import_keras

    keras = import_keras()
    from keras import layers

    from varec_cli.models.architecture import HEAD_LAYER

    features = head.get_layer("dropout").output
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(features)
    return keras.Model(head.inputs, outputs, name=HEAD_LAYER)


def _rnn_units(head, rnn: str) -> int:
    layer = head.get_layer(rnn)
    if rnn == "bilstm":
        layer = layer.forward_layer
    return int(layer.units)


def _fingerprint(config: TrainConfig, dataset, arch: _Architecture, labels: list[str]) -> dict:
    """What must match for --resume to continue a run rather than mix two different ones."""
    return {
        "dataset": str(Path(dataset.root).resolve()),
        "layout": dataset.layout,
        "split": dataset.split,
        "labels": labels,
        "backbone": arch.backbone,
        "rnn": arch.rnn,
        "frames": arch.frames,
        "size": arch.size,
        "fine_tune_layers": config.fine_tune_layers,
        "backbone_weights": config.backbone_weights,
        "init": str(Path(config.init).resolve()) if config.init else None,
        "val_fraction": config.val_fraction,
        "val_split_scheme": VAL_SPLIT_SCHEME,
        "seed": config.seed,
        "batch_size": config.batch_size,
        "units": config.units if config.units is not None else (None if config.init else DEFAULT_UNITS),
        "lr": config.lr,  # the checkpoint's optimizer keeps the first run's rate: a new one would not apply
    }


def _resume_state(config: TrainConfig, fingerprint: dict, output: Path, reporter: Reporter):
    from varec_cli.training.tf_fit import ResumeState

    directory = checkpoint_dir(output)
    state = ResumeState.load(directory)
    if not config.resume:
        if state is not None and state.epoch > 0 and not state.extra.get("diverged_epoch"):  # diverged: nothing to resume
            raise VarecError(
                f"{directory} holds the checkpoint of an unfinished run (epoch {state.epoch}); add --resume to "
                "continue it, or delete that folder to start over"
            )
        clear_checkpoints(directory)
        return ResumeState(fingerprint=fingerprint)
    if state is None:
        reporter.warning(f"--resume: no checkpoint in {directory}; starting from epoch 1")
        return ResumeState(fingerprint=fingerprint)
    differs = sorted(k for k in set(fingerprint) | set(state.fingerprint) if fingerprint.get(k) != state.fingerprint.get(k))
    if differs:
        raise VarecError(
            f"--resume: the checkpoint in {directory} was made with different settings "
            f"({', '.join(differs)}); run the original command with --resume, or delete that folder"
        )
    if state.extra.get("diverged_epoch"):
        raise VarecError(
            f"--resume: the run in {directory} diverged at epoch {state.extra['diverged_epoch']} (the loss was not a "
            "number): its weights are NaN from there on; delete that folder and start again with a lower --lr"
        )
    if config.epochs < state.epoch:
        raise VarecError(
            f"--resume: the checkpoint in {directory} is at epoch {state.epoch}, past --epochs {config.epochs}; "
            f"give --epochs {state.epoch} or more"
        )
    reporter.info(f"resuming after epoch {state.epoch} from {directory}")
    return state


def _warn_unlearnable(reporter: Reporter, labels: list[str], train_labels, listed_labels) -> None:
    """A class without a decoded training video is still an output of the model, one it never learned:
    say so (the skipped videos were named as they failed), and whether it had any videos at all."""
    seen = {int(label) for label in train_labels}
    listed = {int(label) for label in listed_labels}
    for index, name in enumerate(labels):
        if index in seen:
            continue
        if index in listed:
            why, way_out = "none of its training videos could be decoded", "fix or remove those videos, or the class"
        else:
            why, way_out = "it has no training videos", "add some, or remove the class"
        reporter.warning(f"class {name!r}: {why}, so the model never learns it ({way_out})")


def _items(samples, remap: dict[int, int] | None) -> list[tuple[Path, int]]:
    return [(Path(s.path), remap[s.label] if remap else int(s.label)) for s in samples]


def run_training(config: TrainConfig, reporter: Reporter) -> TrainResult:
    _check_config(config)
    with output_lock(expand_user(config.output)):
        return _train(config, reporter)


def _train(config: TrainConfig, reporter: Reporter) -> TrainResult:
    started = time.perf_counter()
    output = expand_user(config.output)

    from varec_cli.training import tf_fit

    # The strategy comes first: MultiWorkerMirroredStrategy must exist before any other TF work.
    placement = tf_fit.make_strategy(config.strategy)

    from varec_cli.datasets import load_dataset

    dataset = load_dataset(config.dataset, split=config.split, val_fraction=config.val_fraction, seed=config.seed)
    if not dataset.train:
        raise VarecError(f"dataset {dataset.name} ({dataset.root}) has no training videos")
    for note in dataset.notes:
        reporter.info(note)
    for warning in dataset.warnings:
        reporter.warning(warning)
    if output.is_file() and not config.resume:  # the default -o model.keras makes this easy to do by accident
        reporter.warning(f"{output} exists: this run replaces it when it finishes (give another -o to keep it)")

    init_meta = None
    if config.init is not None:
        from varec_cli.models.modelfile import read_metadata

        init_meta = read_metadata(config.init)
    arch = _architecture(config, init_meta)

    # Labels: the --init model's (names and order) when it knows exactly these classes, matched as
    # evaluate matches them (case aside where that is unambiguous), else the dataset's.
    labels, remap, new_head = list(dataset.labels), None, False
    if init_meta is not None:
        from varec_cli.datasets.base import class_index_by_name

        index_of = class_index_by_name(list(init_meta.labels))
        mapped = [index_of(name) for name in dataset.labels]
        if len(init_meta.labels) == len(mapped) and None not in mapped and len(set(mapped)) == len(mapped):
            labels = list(init_meta.labels)
            remap = dict(enumerate(mapped))
        else:
            new_head = True
    if len(labels) < 2:
        raise VarecError(f"dataset {dataset.name} has {len(labels)} class; a classifier needs at least 2")
    if control_characters_problem(labels):  # found now, not when the trained model is saved (and refused)
        names = ", ".join(ascii(label) for label in labels if control_characters_problem([label]))
        raise VarecError(
            f"dataset {dataset.name}: the class name {names} holds control characters (a line break, a tab, an "
            "escape code), which a model's labels may not; rename that folder"
        )
    if twins := named_twice(labels):  # one name to a reader, and to the model file that would be refused
        raise VarecError(
            f"dataset {dataset.name}: the class names {ascii(twins[0])} and {ascii(twins[1])} are one name written "
            "two ways (Unicode normal forms), which a model's labels may not be; rename one folder"
        )
    train_items, val_items = _items(dataset.train, remap), _items(dataset.val, remap)
    val_by = dataset.val_by

    reporter.info(f"training on {placement.description}")
    reporter.info(
        f"dataset {dataset.name} ({dataset.layout}"
        + (f", split {dataset.split}" if dataset.split else "")
        + f"): {len(labels)} classes; clips: train {len(dataset.train)}, "
        f"val {len(dataset.val)} ({VAL_SPLIT_WORDS.get(val_by, val_by)}), test {len(dataset.test)}"
    )

    ckpt_dir = checkpoint_dir(output)
    fingerprint = _fingerprint(config, dataset, arch, labels)
    state = _resume_state(config, fingerprint, output, reporter)

    from varec_cli.runtime import import_keras

    keras = import_keras()
    precision = tf_fit.configure_precision(placement, allow_mixed=config.mixed_precision and init_meta is None)
    keras.utils.set_random_seed(config.seed)

    from varec_cli.models.architecture import (
        assemble_model,
        assemble_training_model,
        build_frame_encoder,
        build_sequence_head,
        split_model,
    )
    from varec_cli.models.backbones import backbone_spec, set_trainable_layers

    spec = backbone_spec(arch.backbone)
    with placement.strategy.scope():
        if init_meta is not None:
            from varec_cli.models.modelfile import load_model

            init_model, _ = load_model(config.init)
            encoder, head = split_model(init_model)
            set_trainable_layers(_cnn_of(encoder), config.fine_tune_layers)
            if new_head:
                head = _replace_classifier(head, len(labels))
                reporter.info(
                    f"--init {Path(config.init).name}: its classes differ from the dataset's, so a new "
                    f"{len(labels)}-class output layer is trained on its {arch.rnn.upper()}"
                )
            if arch.backbone == "scratch" and config.fine_tune_layers == 0:  # a new scratch CNN would be trained whole
                reporter.info(
                    f"--init {Path(config.init).name}: its scratch CNN is kept frozen (--fine-tune-layers 0); "
                    "give --fine-tune-layers K to train its last K layers too"
                )
            weights_source = f"from --init model {Path(config.init).name}"
            units = _rnn_units(head, arch.rnn)
            if config.units is not None and config.units != units:
                raise VarecError(
                    f"--units {config.units} differs from the --init model's {arch.rnn.upper()} ({units} units); "
                    "--init keeps the network's shape, so drop --units"
                )
        else:
            weights_path, weights_source = _backbone_weights(arch.backbone, config.backbone_weights, reporter)
            encoder = build_frame_encoder(
                arch.backbone, arch.size, weights=str(weights_path) if weights_path else None,
                trainable_layers=config.fine_tune_layers,
            )
            units = config.units or DEFAULT_UNITS
            head = build_sequence_head(
                arch.frames, int(encoder.output_shape[-1]), len(labels), rnn=arch.rnn, units=units,
                dropout=config.dropout,
            )
            if spec.pretrained and weights_path is None and config.fine_tune_layers == 0:
                reporter.warning("the backbone has random weights and is frozen: its features carry little")
    feature_dim = int(encoder.output_shape[-1])
    frozen = not encoder.trainable_weights
    size = (arch.size, arch.size)
    skipped: list[tuple[Path, str]] = []

    from varec_cli.training import loader

    def warn_skip(path: Path, error: str) -> None:
        reporter.warning(loader.skip_message(path, error))

    decoded_before = loader.DECODED.count
    cache_hits = 0
    steps = None
    if frozen:
        from varec_cli import paths

        cache = loader.FeatureCache(
            paths.cache_dir(), backbone=arch.backbone, weights=loader.weights_digest(encoder),
            frames=arch.frames, size=size, precision=precision,
        )

        encode = loader.frame_encoder_function(encoder)
        sets = {}
        for part, items in (("train", train_items), ("val", val_items)):
            if not items:
                continue
            reporter.stage(f"backbone features ({part})", len(items))
            sets[part] = loader.extract_features(
                items, encode, cache, frames=arch.frames, size=size, feature_dim=feature_dim,
                workers=config.workers, on_progress=reporter.advance, on_skip=warn_skip, on_warning=reporter.warning,
            )
            reporter.stage_end()
            skipped += sets[part].skipped
        cache_hits = cache.hits
        reporter.info(
            f"feature cache: {counted(cache.hits, 'clip')} from cache, "
            f"{cache.misses - cache.failed_this_run} decoded and encoded"
            + (f", {cache.failed} could not be decoded" if cache.failed else "")
            + f" ({cache.directory})"
        )
        if cache.write_error:
            reporter.warning(
                f"the feature cache {cache.directory} cannot be written ({cache.write_error}): this run's features "
                "were not kept, and the next run computes them again (VAREC_CACHE_DIR sets where the cache is)"
            )
        if len(sets["train"].labels) == 0:
            raise VarecError("no training video could be decoded")
        _warn_unlearnable(reporter, labels, sets["train"].labels, [label for _, label in train_items])
        train_data = tf_fit.features_dataset(
            sets["train"].features, sets["train"].labels, config.batch_size, shuffle=True, seed=config.seed,
            first_epoch=state.epoch,
        )
        val_data = None
        if "val" in sets and len(sets["val"].labels):
            val_data = tf_fit.features_dataset(
                sets["val"].features, sets["val"].labels, config.batch_size, shuffle=False, seed=config.seed
            )
        trainable = head
        clip_counts = {part: int(len(s.labels)) for part, s in sets.items()}
        clip_seconds = float(np.mean(sets["train"].seconds))
        skipped_counts = {part: len(s.skipped) for part, s in sets.items()}
        steps = tf_fit.batches_per_epoch(len(sets["train"].labels), config.batch_size)
    else:
        sources = {
            part: loader.ClipSource(
                items, arch.frames, size, workers=config.workers, on_skip=warn_skip, on_warning=reporter.warning
            )
            for part, items in (("train", train_items), ("val", val_items))
            if items
        }
        # A val part none of whose videos decodes (each skipped, and said so) is no validation: the
        # training loss then drives the learning rate and early stopping, as without one.
        validating = "val" in sources and sources["val"].any_readable()
        with placement.strategy.scope():
            trainable = assemble_training_model(encoder, head, arch.frames, arch.size)
        train_data = tf_fit.clips_dataset(
            sources["train"], config.batch_size, shuffle=True, seed=config.seed, first_epoch=state.epoch
        )
        val_data = (
            tf_fit.clips_dataset(sources["val"], config.batch_size, shuffle=False, seed=config.seed)
            if validating
            else None
        )
        steps = tf_fit.batches_per_epoch(len(train_items), config.batch_size)

        def remember_clips(state) -> None:
            seconds = list(sources["train"].seconds.values())
            if seconds:
                state.extra["clip_seconds"] = float(np.mean(seconds))
            state.extra["skipped"] = {part: len(s.failed) for part, s in sources.items()}
            state.extra["skipped_files"] = {str(p): e for s in sources.values() for p, e in s.failed.items()}

    # Wall time of the run, --resume'd sessions included (each up to its last completed epoch).
    seconds_before = float(state.extra.get("training_seconds", 0.0))

    def remember(state) -> None:
        state.extra["training_seconds"] = seconds_before + time.perf_counter() - started
        if not frozen:
            remember_clips(state)

    jit_compile, unrolled, planned_steps = "auto", False, 0  # Keras' default
    if frozen:
        planned_steps = steps * config.epochs  # the whole run's: a resumed run is set up as it began
        jit_compile, unrolled = tf_fit.tune_head_for_cpu(head, arch.frames, placement, planned_steps)
    with placement.strategy.scope():
        trainable.compile(
            optimizer=keras.optimizers.Adam(learning_rate=config.lr),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=jit_compile,
        )
    tuning = ["unrolled"] if unrolled else []
    if jit_compile is True and trainable.jit_compile is True:  # what Keras kept of the request
        tuning.append("compiled with XLA")
    if tuning:
        reporter.info(
            f"{arch.rnn.upper()} head {' and '.join(tuning)} for the CPU ({planned_steps} steps planned: a longer "
            "first epoch that pays for itself)"
        )
    outcome = tf_fit.fit(
        trainable, train_data, val_data, placement=placement, epochs=config.epochs, steps=steps, endless=frozen,
        checkpoint_dir=ckpt_dir, state=state, reporter=reporter, patience=config.patience,
        tensorboard=expand_user(config.tensorboard) if config.tensorboard else None,
        on_epoch=remember,
    )
    if outcome.diverged_epoch:
        if not outcome.best_epoch:
            shutil.rmtree(ckpt_dir, ignore_errors=True)  # NaN weights: a retry must not be told to resume them
            raise VarecError(
                f"training diverged: the loss was not a number from epoch {outcome.diverged_epoch} on, so no "
                f"epoch is worth keeping and no model was saved; try a lower --lr (now {config.lr:g})"
            )
        reporter.warning(
            f"training diverged at epoch {outcome.diverged_epoch} (the loss was not a number) and stopped there; "
            f"the model keeps epoch {outcome.best_epoch}'s weights. A lower --lr (now {config.lr:g}) may go further"
        )
    elif outcome.stopped_early and outcome.epochs_run < config.epochs:  # Keras marks a stop on the last one too
        watched = "validation loss" if val_data is not None else "training loss"
        reporter.info(
            f"stopped early after epoch {outcome.epochs_run} of {config.epochs}: the {watched} had not improved "
            f"for {counted(config.patience, 'epoch')} (--patience)"
        )
    if not frozen:  # what the epochs saw (kept in the checkpoint state, so a resumed run knows it too)
        clip_seconds = state.extra.get("clip_seconds")
        skipped_counts = state.extra.get("skipped", {})
        skipped = [(Path(p), e) for p, e in state.extra.get("skipped_files", {}).items()]
        clip_counts = {part: len(s.items) - skipped_counts.get(part, 0) for part, s in sources.items()}
        failed = {str(path) for path, _ in skipped}
        _warn_unlearnable(
            reporter, labels, [label for path, label in train_items if str(path) not in failed],
            [label for _, label in train_items],
        )

    dropout = float(head.get_layer("dropout").rate)  # an --init head keeps its own
    model = _clean_copy(
        assemble_model(encoder, head, arch.frames, arch.size), arch, len(labels), units, dropout
    )

    best = next((row for row in outcome.history if row["epoch"] == outcome.best_epoch), {})
    provenance = {
        "dataset": dataset.name,
        "dataset_root": str(Path(dataset.root).resolve()),
        "layout": dataset.layout,
        "split": dataset.split,
        "classes": len(labels),
        "val_split": VAL_SPLIT_RECORDED.get(val_by, val_by),
        "val_fraction": config.val_fraction if val_by != "folder" else None,
        "val_split_scheme": VAL_SPLIT_SCHEME if val_by in ("group", "clip") else None,
        "clips": {**{"train": 0, "val": 0}, **clip_counts, "test": len(dataset.test)},
        "skipped_videos": {**{"train": 0, "val": 0}, **skipped_counts},
        "epochs": outcome.epochs_run,
        "epochs_requested": config.epochs,
        "best_epoch": outcome.best_epoch,
        **{
            key: round(float(best[key]), 6) if np.isfinite(best[key]) else None  # JSON has no NaN
            for key in ("loss", "accuracy", "val_loss", "val_accuracy") if key in best
        },
        "backbone_weights": weights_source,
        "fine_tune_layers": config.fine_tune_layers,
        "feature_cache": frozen,
        "init": str(Path(config.init).resolve()) if config.init else None,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "seed": config.seed,
        "device": placement.description,
        "precision": precision,
        "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
    }
    for old, new in (("loss", "train_loss"), ("accuracy", "train_accuracy")):
        if old in provenance:
            provenance[new] = provenance.pop(old)
    from varec_cli import __version__

    provenance["varec_version"] = __version__
    provenance["training_seconds"] = round(seconds_before + time.perf_counter() - started, 1)

    history_csv = history_png = None
    if tf_fit.is_chief():
        from varec_cli.models.modelfile import ModelMetadata, save_model
        from varec_cli.training.history import history_paths, write_csv, write_plot

        metadata = ModelMetadata(
            labels=labels,
            frames=arch.frames,
            size=size,
            backbone=arch.backbone,
            preprocessing=spec.preprocessing,
            rnn=arch.rnn,
            feature_dim=feature_dim,
            clip_seconds=round(clip_seconds, 3) if clip_seconds else None,
            provenance=provenance,
        )
        save_model(model, output, metadata)
        from varec_cli.models import tf_frozen

        tf_frozen.prepare(output, model, arch.frames, *size)  # the first `varec predict` with it starts fast
        history_csv, history_png = history_paths(output)
        write_csv(history_csv, outcome.history)
        write_plot(
            history_png, outcome.history, best_epoch=outcome.best_epoch,
            title=f"{output.name}: {arch.backbone} + {arch.rnn}, {dataset.name}",
        )
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return TrainResult(
        output=output,
        provenance=provenance,
        history=outcome.history,
        history_csv=history_csv,
        history_png=history_png,
        feature_cache=frozen,
        videos_decoded=loader.DECODED.count - decoded_before,
        cache_hits=cache_hits,
        skipped=skipped,
        resumed_from=outcome.resumed_from,
    )


def _clean_copy(model, arch: _Architecture, num_classes: int, units: int, dropout: float):
    """The trained network rebuilt, uncompiled and in float32, for the model file.

    Float32: a model trained with mixed precision on a GPU then loads and runs anywhere (CPUs have slow
    or no float16 kernels). Uncompiled: the head trained alone on cached features was compiled, and
    Keras would save its optimizer state inside the model file (twice the head's weights with Adam),
    which inference never reads.
    """
    from varec_cli.runtime import import_keras

    keras = import_keras()
    from varec_cli.models.architecture import build_model

    keras.mixed_precision.set_global_policy("float32")
    copy = build_model(
        num_classes, backbone=arch.backbone, rnn=arch.rnn, frames=arch.frames, size=arch.size, units=units, dropout=dropout
    )
    copy.set_weights(model.get_weights())
    return copy
