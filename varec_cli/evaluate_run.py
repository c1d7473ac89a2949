"""Evaluating models on a dataset split: classify every video, hand the probabilities to
`evaluation.compute_metrics`.

Each video is decoded once per clip spec (frames, size) however many models share it, by the
training loader's worker threads, with the sampler `varec predict` uses (`--clips K` averages K
interleaved temporal views, exactly as `varec predict --clips K` does). Models that take frames at a
rate (a SavedModel with `fps`, whose frame count depends on each video's length) go through
`predict.classify_video` itself, one video at a time. A video that fails to decode is skipped,
reported, and counted per model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from varec_cli.datasets.base import PARTS
from varec_cli.errors import DatasetError, ModelError, VarecError
from varec_cli.reporting import Reporter
from varec_cli.text import counted


@dataclass
class ModelEvaluation:
    model: str  # as given on the command line
    metrics: object  # evaluation.Metrics
    skipped: int
    skipped_files: list[tuple[Path, str]] = field(default_factory=list)

    def to_json(self) -> dict:
        return self.metrics.to_json(self.model, self.skipped)


@dataclass
class EvaluationRun:
    dataset: object  # datasets.Dataset
    subset: str
    clips: int
    evaluations: list[ModelEvaluation]


def _targets_for(classifier, dataset, samples) -> np.ndarray:
    """Dataset label indices → the model's output indices, by class name (datasets.base.class_index_by_name)."""
    from varec_cli.datasets.base import class_index_by_name

    index_of = class_index_by_name(classifier.labels)
    present = sorted({dataset.labels[s.label] for s in samples})
    unknown = [name for name in present if index_of(name) is None]
    if unknown:
        raise ModelError(
            f"{classifier.name} does not know {len(unknown)} of the dataset's classes "
            f"(first: {unknown[0]}); it was trained on: {', '.join(classifier.labels[:8])}"
            + (" ..." if len(classifier.labels) > 8 else "")
        )
    return np.asarray([index_of(dataset.labels[s.label]) for s in samples], np.int64)


def _trained_here(classifier, dataset) -> dict:
    """The provenance of a model trained on this very dataset folder, else {}."""
    provenance = getattr(getattr(classifier, "metadata", None), "provenance", None) or {}
    if Path(str(provenance.get("dataset_root", ""))).resolve() != Path(dataset.root).resolve():
        return {}
    return provenance


def _warn_other_official_split(reporter: Reporter, classifier, dataset) -> None:
    """UCF101's and HMDB51's three splits share their videos: another split's test part holds clips a
    model trained on, whichever subset is scored."""
    trained = _trained_here(classifier, dataset).get("split")
    if dataset.layout in ("ucf101", "hmdb51") and isinstance(trained, int) and trained != dataset.split:
        reporter.warning(
            f"{classifier.name} was trained on split {trained} of this dataset: split {dataset.split} holds clips it "
            f"trained on, so its score here is inflated; give --split {trained}"
        )


def _warn_other_split(reporter: Reporter, classifier, dataset, val_fraction: float, seed: int) -> None:
    """A model trained on this dataset with another --val-fraction or --seed had other validation
    clips: the val/train subset scored here mixes its training clips with its validation ones."""
    provenance = _trained_here(classifier, dataset)
    if not provenance:
        return
    from varec_cli.datasets.splits import VAL_SPLIT_SCHEME

    if provenance.get("val_fraction") == 0:
        reporter.warning(
            f"{classifier.name} was trained on all of this dataset's training part (--val-fraction 0): every clip "
            "scored here is one it trained on, so the score says little of unseen clips"
        )
        return
    if provenance.get("val_split_scheme") != VAL_SPLIT_SCHEME:
        reporter.warning(
            f"{classifier.name} was trained by an earlier varec, which drew validation splits another way: "
            "the val and train parts scored here are not the ones it was trained with"
        )
        return
    theirs = {"--val-fraction": provenance.get("val_fraction"), "--seed": provenance.get("seed")}
    ours = {"--val-fraction": val_fraction, "--seed": seed}
    differ = [f"{option} {theirs[option]}" for option in theirs
              if isinstance(theirs[option], (int, float)) and theirs[option] != ours[option]]
    if differ:
        reporter.warning(
            f"{classifier.name} was trained on this dataset with {' '.join(differ)}: give the same to score "
            "its own validation split (this one holds clips it trained on)"
        )


def evaluate_models(
    dataset_name: str,
    models: list[str],
    *,
    split: int = 1,
    subset: str = "test",
    clips: int = 1,
    val_fraction: float = 0.1,
    seed: int = 0,
    workers: int | None = None,
    batch_videos: int = 8,
    reporter: Reporter | None = None,
    open_model: Callable[[str], object] | None = None,
) -> EvaluationRun:
    """Metrics of each model on `subset` ("test": the official test split; "val"; "train").

    `models` are paths or registry names; `open_model(name)` turns one into a Classifier (default:
    `models.classifier.open_classifier`, which fetches registry names without showing progress).
    """
    from varec_cli.datasets import load_dataset
    from varec_cli.evaluation import compute_metrics
    from varec_cli.models.classifier import open_classifier
    from varec_cli.training import loader
    from varec_cli.weights.resolve import repeated_model

    reporter = reporter or Reporter()
    if not models:
        raise VarecError("no model given: pass --model PATH (repeat it to compare models)")
    if (twice := repeated_model(models)) is not None:
        raise VarecError(f"{twice} is given twice")
    if clips < 1:
        raise VarecError("--clips must be at least 1")
    if subset not in PARTS:
        raise VarecError(f"unknown subset {subset!r}; choose one of: {', '.join(PARTS)}")
    dataset = load_dataset(dataset_name, split=split, val_fraction=val_fraction, seed=seed)
    for warning in dataset.warnings:
        reporter.warning(warning)
    samples = list(getattr(dataset, subset))
    if not samples:
        hint = ""
        if subset == "test" and dataset.layout in ("ucf101", "hmdb51"):
            hint = f" (its split {dataset.split} lists mark none as test)"
        elif subset == "test":
            hint = " (a plain folder of class folders has no test split: try --subset val)"
        where = "" if Path(dataset.name) == Path(dataset.root) else f" ({dataset.root})"
        raise DatasetError(f"dataset {dataset.name}{where} has no {subset} videos{hint}")

    opener = open_model or (lambda model: open_classifier(model, purpose="evaluate"))
    classifiers = [opener(str(model)) for model in models]
    targets = [_targets_for(c, dataset, samples) for c in classifiers]
    for classifier in classifiers:
        _warn_other_official_split(reporter, classifier, dataset)
        if subset in ("val", "train") and dataset.val_by != "folder":
            _warn_other_split(reporter, classifier, dataset, val_fraction, seed)
    action_types = dataset.action_types()  # None outside UCF101
    reporter.info(
        f"evaluating {counted(len(classifiers), 'model')} on {counted(len(samples), f'{subset} video')} "
        f"of {dataset.name}" + (f" (split {dataset.split})" if dataset.split else "")
        + f", {counted(clips, 'clip')} per video"
    )

    probabilities = [np.zeros((len(samples), len(c.labels)), np.float32) for c in classifiers]
    decoded_ok = [np.zeros(len(samples), bool) for _ in classifiers]
    skipped_files: list[list[tuple[Path, str]]] = [[] for _ in classifiers]

    groups: dict[tuple, list[int]] = {}
    by_rate: list[int] = []
    for index, classifier in enumerate(classifiers):
        if classifier.spec.fps:
            by_rate.append(index)
        else:
            groups.setdefault((classifier.spec.frames, classifier.spec.size), []).append(index)

    paths = [Path(s.path) for s in samples]
    warned: set[Path] = set()

    def skip(member: int, path: Path, error: str) -> None:
        if path not in warned:
            reporter.warning(loader.skip_message(path, error))
            warned.add(path)
        skipped_files[member].append((path, error))

    def warn(path: Path, warning: str | None) -> None:  # decoded well short of its stated length
        if warning is not None and path not in warned:
            reporter.warning(warning)
            warned.add(path)

    for member in by_rate:
        from varec_cli.predict import classify_video

        reporter.stage(f"classifying {subset} videos ({classifiers[member].name})", len(samples))
        for video, path in enumerate(paths):
            try:
                result = classify_video(classifiers[member], path, clips=clips)
            except VarecError as exc:
                skip(member, path, str(exc))
            else:
                probabilities[member][video] = result.probabilities
                decoded_ok[member][video] = True
                warn(path, result.warning)
            reporter.advance(1)
        reporter.stage_end()
    for (frames, size), members in groups.items():
        reporter.stage(f"classifying {subset} videos ({frames} frames, {size[0]}x{size[1]})", len(samples))
        pending: list[tuple[int, np.ndarray]] = []

        def flush() -> None:
            if not pending:
                return
            batch = np.concatenate([views for _, views in pending])  # (videos*clips, frames, H, W, 3)
            for member in members:
                scores = classifiers[member].predict_clips(batch).reshape(len(pending), clips, -1).mean(axis=1)
                for (video, _), row in zip(pending, scores):
                    probabilities[member][video] = row
                    decoded_ok[member][video] = True
            reporter.advance(len(pending))
            pending.clear()

        for result in loader.decode_videos(paths, frames, size, views=clips, workers=workers):
            if result.error is not None:
                for member in members:
                    skip(member, result.path, result.error)
                reporter.advance(1)
                continue
            warn(result.path, result.warning)
            pending.append((result.index, result.frames))
            if len(pending) >= batch_videos:
                flush()
        flush()
        reporter.stage_end()

    evaluations = []
    for model, classifier, probs, truth, ok, skipped in zip(
        models, classifiers, probabilities, targets, decoded_ok, skipped_files
    ):
        if not ok.any():
            raise VarecError(f"no {subset} video of {dataset.name} could be decoded; nothing to evaluate")
        if not np.isfinite(probs[ok]).all():
            raise classifier.broken_output_error()
        metrics = compute_metrics(probs[ok], truth[ok], list(classifier.labels), action_types=action_types)
        evaluations.append(ModelEvaluation(str(model), metrics, len(skipped), skipped))
    return EvaluationRun(dataset, subset, clips, evaluations)
