"""The one interface every command uses to classify clips, whatever the model file is."""

from __future__ import annotations

import abc
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from varec_cli.errors import ModelError
from varec_cli.paths import expand_user
from varec_cli.runtime import tensorflow_backend


@dataclass(frozen=True)
class ClipSpec:
    frames: int  # frames per clip
    height: int
    width: int
    clip_seconds: float | None = None  # typical time span of one clip, when known
    fps: float | None = None  # the frame rate the model expects frames at, when it has one

    @property
    def size(self) -> tuple[int, int]:
        return (self.height, self.width)

    def frames_for(self, seconds: float) -> int:
        """Frames to sample from `seconds` of video: fixed for CNN+RNN models; for models that take
        frames at a rate (fps set, e.g. MoViNet at 5 fps), that rate, capped at `frames`."""
        if not self.fps or seconds <= 0:
            return self.frames
        return int(min(self.frames, max(8, round(seconds * self.fps))))


class StreamSession(abc.ABC):
    """Frame-by-frame classification: push model-sized RGB frames, get probabilities back."""

    @abc.abstractmethod
    def push(self, frame: np.ndarray, timestamp: float | None = None) -> np.ndarray | None:
        """Add one (H, W, 3) uint8 RGB frame; probabilities once enough frames were seen, else None.

        `timestamp`: the frame's source time in seconds, when known (a session may ignore it)."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget all frames seen so far."""


class Classifier(abc.ABC):
    name: str
    labels: list[str]
    spec: ClipSpec

    @abc.abstractmethod
    def predict_clips(self, clips: np.ndarray) -> np.ndarray:
        """uint8 RGB clips (B, frames, H, W, 3) → float32 probabilities (B, num_classes)."""

    @abc.abstractmethod
    def start_stream(self, fps: float | None = None) -> StreamSession:
        """A fresh frame-by-frame session (see StreamSession); `fps`: the source's frame rate, when known."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """What `varec info` shows."""

    def broken_output_error(self) -> ModelError:
        return ModelError(f"{self.name}: the model's output is not a number (NaN or infinity); its weights are broken")

    def top_k(self, probabilities: np.ndarray, k: int) -> list[tuple[str, float]]:
        if not np.all(np.isfinite(probabilities)):
            # NaN has no rank, and JSON has no NaN: a model whose weights overflowed or diverged.
            raise self.broken_output_error()
        order = np.argsort(-probabilities, kind="stable")[: max(1, k)]
        return [(self.labels[i], float(probabilities[i])) for i in order]


class KerasClassifier(Classifier):
    """A varec CNN+RNN `.keras` model."""

    batch_size = 8

    def __init__(self, path: str | os.PathLike):
        from varec_cli.models import tf_frozen
        from varec_cli.models.modelfile import read_metadata

        self.path = Path(path)
        worth = self.path.is_file() and tf_frozen.worth_freezing(self.path)
        identity = tf_frozen.file_identity(self.path) if worth else None
        self.metadata = read_metadata(self.path)
        self._identity = identity if identity and tensorflow_backend() else None  # frozen graphs are TensorFlow's
        self.name = self.path.name
        self.labels = list(self.metadata.labels)
        height, width = self.metadata.size
        self.spec = ClipSpec(self.metadata.frames, height, width, clip_seconds=self.metadata.clip_seconds)
        self._model = None
        self._encoder = None
        self._head = None
        self._lock = threading.RLock()  # one set-up (load, split, freeze) however many threads ask
        # Clip inference runs a frozen graph of the model where the backend is TensorFlow (see
        # models/tf_frozen.py). A cached one spares building the Keras model at all; without one, the
        # model is loaded now, so that a broken file fails here rather than at the first clip.
        self._clip_function = self._cached_frozen_function()
        if self._clip_function is None:
            self._load()

    @property
    def model(self):
        """The Keras model (built from the file on first use when a frozen graph served so far)."""
        with self._lock:
            if self._model is None:
                self._load()
            return self._model

    def _load(self) -> None:
        from varec_cli.models.modelfile import load_model

        model, _ = load_model(self.path)
        outputs = int(model.output_shape[-1])
        if outputs != len(self.labels):
            raise ModelError(f"{self.path}: the network has {outputs} outputs but {len(self.labels)} labels")
        self._model = model

    def _cached_frozen_function(self):
        if self._identity is None:
            return None
        from varec_cli.models import tf_frozen

        return tf_frozen.load_cached(self._identity)

    def _clips_function(self):
        """The function predict_clips runs on a batch of uint8 clips: the frozen graph (cached, or
        frozen now and cached), else the two Keras halves (another backend, or freezing failed)."""
        with self._lock:
            if self._clip_function is None:
                self._clip_function = self._make_clips_function()
            return self._clip_function

    def _make_clips_function(self):
        encoder, head = self.halves()
        spec = self.spec
        if self._identity is not None:
            from varec_cli.models import tf_frozen

            frozen_clips = tf_frozen.freeze_and_cache(self._identity, encoder, head, spec.frames, spec.height, spec.width)
            if frozen_clips is not None:
                return frozen_clips

        def keras_halves(batch: np.ndarray) -> np.ndarray:
            # The frame encoder over all frames of the batch, then the head over their features:
            # the whole model's function and weights, but not its graph (the whole model's
            # TimeDistributed traces one encoder call per frame: 17 s vs 0.8 s for mobilenet_v2).
            frames = batch.reshape((-1,) + batch.shape[2:])  # uint8: the model casts inside its graph
            features = np.asarray(encoder.predict_on_batch(frames))
            return np.asarray(head.predict_on_batch(features.reshape(len(batch), spec.frames, -1)))

        return keras_halves

    def predict_clips(self, clips: np.ndarray) -> np.ndarray:
        clips = np.asarray(clips)
        if clips.ndim != 5 or clips.shape[1:] != (self.spec.frames, self.spec.height, self.spec.width, 3):
            raise ValueError(f"expected clips (B, {self.spec.frames}, {self.spec.height}, {self.spec.width}, 3)")
        if clips.dtype != np.uint8:
            raise ValueError(f"expected uint8 clips, got {clips.dtype}")
        run = self._clips_function()
        outputs = []
        # Every call gets the same batch shape (a short last batch is padded), so each compiled
        # function sees one input shape: traced and set up once, not once per batch size.
        step = min(self.batch_size, len(clips))
        for i in range(0, len(clips), step):
            batch = clips[i : i + step]
            real = len(batch)
            if real < step:
                batch = np.concatenate([batch, np.repeat(batch[-1:], step - real, axis=0)])
            outputs.append(np.asarray(self._run(run, batch))[:real])
        return np.concatenate(outputs).astype(np.float32)

    def _run(self, run, batch: np.ndarray) -> np.ndarray:
        from varec_cli.models import tf_frozen

        try:
            return run(batch)
        except tf_frozen.UnusableGraph:  # e.g. traced where a GPU's cuDNN kernels were visible
            with self._lock:
                tf_frozen.discard(self._identity)
                self._identity = None  # this process keeps to the Keras model
                self._clip_function = None
            return self._clips_function()(batch)

    def halves(self):
        """(frame encoder, sequence head), sharing weights with the whole model."""
        with self._lock:
            if self._encoder is None:
                from varec_cli.models.architecture import split_model

                self._encoder, self._head = split_model(self.model)
            return self._encoder, self._head

    def start_stream(self, fps: float | None = None) -> StreamSession:
        from varec_cli.models.streaming import RingBufferSession

        return RingBufferSession(self, fps=fps)

    def describe(self) -> dict[str, Any]:
        meta = self.metadata
        return {
            "model": self.name,  # as the user named it: a registry name, or the file's name
            "file": str(self.path.absolute()),
            "format": "varec .keras (CNN per frame + RNN)",
            "classes": len(self.labels),
            "labels": self.labels,
            "frames": meta.frames,
            "frame_size": list(meta.size),
            "backbone": meta.backbone,
            "preprocessing": meta.preprocessing,
            "rnn": meta.rnn,
            "feature_dim": meta.feature_dim,
            "sampling": meta.sampling,
            "clip_seconds": meta.clip_seconds,
            "parameters": int(self.model.count_params()),
            "varec_version": meta.varec_version,
            "provenance": meta.provenance,
        }


def load_classifier(path: str | os.PathLike) -> Classifier:
    """A Classifier for a model on disk: a varec `.keras` file or an unpacked SavedModel folder."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: no such model file")
    if path.is_dir():
        from varec_cli.models.savedmodel import is_savedmodel_dir

        if is_savedmodel_dir(path):
            from varec_cli.models.savedmodel import SavedModelClassifier

            return SavedModelClassifier(path)
        raise ModelError(f"{path}: is a directory, neither a varec .keras model nor a SavedModel")
    return KerasClassifier(path)


def open_classifier(
    name_or_path: str | os.PathLike | None, *, purpose: str = "predict", progress=None
) -> Classifier:
    """The Classifier for a `--model` argument: a path, a registry name (fetched into the verified
    cache on first use), or None for the default model of `purpose` ("stream" or anything else)."""
    from varec_cli.weights.resolve import default_model_name, resolve_model_path

    if name_or_path is None:
        name_or_path = default_model_name(purpose)
    given = str(name_or_path)
    classifier = load_classifier(resolve_model_path(given, progress=progress))
    # What the user called it: a registry name (not the cache's file name), or the file's or folder's
    # name (not the name a SavedModel folder records inside).
    path = expand_user(given)
    if path.exists():  # a link's own name, as given; `.` or `..` by the folder's name
        classifier.name = path.name if path.name not in ("", "..") else path.resolve().name
    else:
        classifier.name = given
    return classifier
