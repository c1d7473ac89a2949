"""TensorFlow SavedModel classifiers (MoViNet from TF Hub and the like). TensorFlow-only.

The signature is described by `varec-model.json`, written beside the SavedModel by the weights cache:
input key (`image`, float32 [batch, frames, H, W, 3] in [0, 1]), output key (`classifier_head`,
logits), and for stream models the `init_states` function whose states are carried frame to frame.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from varec_cli.errors import ModelError, brief
from varec_cli.models.classifier import Classifier, ClipSpec, StreamSession
from varec_cli.text import control_characters_problem
from varec_cli.weights.archive import SAVEDMODEL_METADATA


def is_savedmodel_dir(path: Path) -> bool:
    return path.is_dir() and (path / "saved_model.pb").is_file()


def metadata_problem(metadata: Any) -> str | None:
    """What is wrong with a varec-model.json a user wrote beside a SavedModel, or None: checked here,
    before it is used, so that a wrong type is its error and not a traceback from deep inside."""
    from varec_cli.errors import WeightsError
    from varec_cli.weights.registry import check_signature

    def positive(value, kinds) -> bool:
        return isinstance(value, kinds) and not isinstance(value, bool) and value > 0 and value == value

    if not isinstance(metadata, dict):
        return "must be a JSON object"
    labels = metadata.get("labels")
    if not labels:
        return "no labels recorded"
    if not isinstance(labels, list) or not all(isinstance(label, str) and label for label in labels):
        return "labels must be a list of names"
    if problem := control_characters_problem(labels):
        return problem
    size = metadata.get("size")
    if size is not None and not (isinstance(size, list) and len(size) == 2 and all(positive(v, int) for v in size)):
        return f"size must be [height, width] in pixels, got {size!r}"
    if metadata.get("frames") is not None and not positive(metadata["frames"], int):
        return f"frames must be a whole number above 0, got {metadata['frames']!r}"
    if metadata.get("fps") is not None and not positive(metadata["fps"], (int, float)):
        return f"fps must be a number above 0, got {metadata['fps']!r}"
    signature = metadata.get("signature")
    if signature is not None:
        if not isinstance(signature, dict):
            return "signature must be an object"
        try:
            check_signature("signature", signature)
        except WeightsError as exc:
            return str(exc)
    return None


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


class SavedModelClassifier(Classifier):
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        meta_file = self.path / SAVEDMODEL_METADATA
        if not meta_file.is_file():
            raise ModelError(f"{self.path}: a SavedModel without {SAVEDMODEL_METADATA} (labels and input spec unknown)")
        try:
            self.metadata: dict[str, Any] = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"{meta_file}: unreadable ({brief(exc)})") from None
        if (problem := metadata_problem(self.metadata)) is not None:
            raise ModelError(f"{meta_file}: {problem}")
        self.labels = list(self.metadata.get("labels") or [])
        height, width = self.metadata.get("size") or (172, 172)
        fps = float(self.metadata.get("fps") or 0) or None
        frames = int(self.metadata.get("frames") or 8)
        self.spec = ClipSpec(
            frames, int(height), int(width), clip_seconds=frames / fps if fps else None, fps=fps
        )
        self.signature = dict(self.metadata.get("signature") or {})
        self.name = str(self.metadata.get("name") or self.path.name)
        self.stream = bool(self.metadata.get("stream"))

        from varec_cli.runtime import import_tensorflow

        tf = import_tensorflow()  # quietly, as everywhere else

        try:
            self._loaded = tf.saved_model.load(str(self.path))
        except Exception as exc:  # TF raises several types for a broken SavedModel
            raise ModelError(f"{self.path}: cannot load this SavedModel ({brief(exc, first_line=True)})") from None
        self._input_key = self.signature.get("input", "image")
        self._output_key = self.signature.get("output", "classifier_head")
        low, high = self.signature.get("input_range", [0.0, 1.0])
        self._scale = (float(high) - float(low)) / 255.0
        self._offset = float(low)
        self._logits = bool(self.signature.get("output_is_logits", True))
        self._check_functions()

    def _check_functions(self) -> None:
        """The functions varec-model.json names exist: a wrong name is its error now, not a KeyError
        at the first clip."""
        signatures = self._loaded.signatures
        have = ", ".join(sorted(signatures)) or "none"
        if self.stream:
            states = self.signature.get("states", "init_states")
            if getattr(self._loaded, "init_states", None) is None and states not in signatures:
                raise ModelError(
                    f"{self.name}: recorded as a stream model, but the SavedModel has no {states!r} function "
                    f"(its signatures: {have})"
                )
            if not callable(self._loaded):
                raise ModelError(f"{self.name}: recorded as a stream model, but the SavedModel is not callable")
            return
        name = self.signature.get("name", "serving_default")
        if name not in signatures:
            raise ModelError(f"{self.name}: the SavedModel has no signature {name!r} (its signatures: {have})")

    def model_input(self, frames_uint8: np.ndarray) -> np.ndarray:
        return frames_uint8.astype(np.float32) * self._scale + self._offset

    def _probabilities(self, outputs) -> np.ndarray:
        values = np.asarray(outputs, dtype=np.float32)
        if values.shape[-1] != len(self.labels):
            raise ModelError(f"{self.name}: the network has {values.shape[-1]} outputs but {len(self.labels)} labels")
        return _softmax(values) if self._logits else values

    def predict_clips(self, clips: np.ndarray) -> np.ndarray:
        if self.stream:
            # A stream model classifies a clip by running its frames through the states.
            results = []
            for clip in clips:
                session = self.start_stream()
                probs = None
                for frame in clip:
                    probs = session.push(frame)
                results.append(probs)
            return np.stack(results)
        import tensorflow as tf

        function = self._loaded.signatures[self.signature.get("name", "serving_default")]
        outputs = function(**{self._input_key: tf.constant(self.model_input(np.asarray(clips)))})
        key = self._output_key if self._output_key in outputs else next(iter(outputs))
        return self._probabilities(outputs[key].numpy())

    def start_stream(self, fps: float | None = None) -> StreamSession:
        if not self.stream:
            raise ModelError(f"{self.name}: not a stream model; use a *-stream model for live classification")
        return SavedModelStreamSession(self)

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.name,  # as the user named it: a registry name, or the folder's name
            "file": str(self.path.absolute()),
            "format": "TensorFlow SavedModel" + (" (stream: one frame at a time with states)" if self.stream else ""),
            "classes": len(self.labels),
            "labels": self.labels,
            "frames": self.spec.frames,
            "frame_size": [self.spec.height, self.spec.width],
            "fps": self.spec.fps,
            "input": f"{self._input_key}: float32 [batch, frames, H, W, 3] in {self.signature.get('input_range', [0, 1])}",
            "output": f"{self._output_key}: {'logits' if self._logits else 'probabilities'}",
            "description": self.metadata.get("description"),
            "license": self.metadata.get("license"),
            "source": self.metadata.get("source") or self.metadata.get("url"),
            "provenance": {},
        }


class SavedModelStreamSession(StreamSession):
    """Carries a stream model's states from frame to frame: one frame in, probabilities out.

    A model trained at a frame rate (MoViNet: 5 fps) is fed frames at that rate of source time when
    timestamps are given; frames in between return the latest probabilities without a model call.
    """

    def __init__(self, classifier: SavedModelClassifier):
        self._classifier = classifier
        self._states = None
        self._interval = 1.0 / classifier.spec.fps if classifier.spec.fps else 0.0
        self.reset()

    def reset(self) -> None:
        import tensorflow as tf

        loaded = self._classifier._loaded
        spec = self._classifier.spec
        shape = tf.constant([1, 1, spec.height, spec.width, 3], dtype=tf.int32)
        init = getattr(loaded, "init_states", None)
        if init is None:
            name = self._classifier.signature.get("states", "init_states")
            init = loaded.signatures[name]
            self._states = dict(init(input_shape=shape))
        else:
            self._states = dict(init(shape))
        self._next_time: float | None = None
        self._latest: np.ndarray | None = None

    def push(self, frame: np.ndarray, timestamp: float | None = None) -> np.ndarray | None:
        import tensorflow as tf

        if timestamp is not None and self._interval:
            if self._next_time is not None and timestamp + 1e-6 < self._next_time:
                return self._latest
            self._next_time = timestamp + self._interval

        image = self._classifier.model_input(np.asarray(frame)[None, None])
        inputs = {**self._states, self._classifier._input_key: tf.constant(image)}
        logits, states = self._classifier._loaded(inputs)
        self._states = dict(states)
        self._latest = self._classifier._probabilities(np.asarray(logits)[0])
        return self._latest
