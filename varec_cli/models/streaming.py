"""Frame-by-frame classification sessions for streaming sources."""

from __future__ import annotations

from collections import deque

import numpy as np

from varec_cli.models.classifier import KerasClassifier, StreamSession


class RingBufferSession(StreamSession):
    """Each frame goes through the CNN once; the RNN reads the last `frames` feature vectors.

    One prediction therefore costs about one CNN pass, not `frames` of them.
    """

    def __init__(self, classifier: KerasClassifier):
        self._encoder, self._head = classifier.halves()
        self._features: deque[np.ndarray] = deque(maxlen=classifier.spec.frames)

    def push(self, frame: np.ndarray) -> np.ndarray | None:
        batch = np.asarray(frame, dtype=np.float32)[None]
        self._features.append(np.asarray(self._encoder.predict_on_batch(batch))[0])
        if len(self._features) < self._features.maxlen:
            return None
        sequence = np.stack(self._features)[None]
        return np.asarray(self._head.predict_on_batch(sequence))[0].astype(np.float32)

    def reset(self) -> None:
        self._features.clear()
