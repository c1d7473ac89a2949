"""Frame-by-frame classification sessions for streaming sources.

`RingBufferSession` runs the frame encoder (preprocessing + CNN) once per new frame and keeps the
feature vectors in a ring buffer; the sequence head (RNN + softmax) then reads the model's `frames`
features from that buffer, spaced in time as the model's training clips were. One prediction costs
about one CNN pass instead of `frames` of them.

Every per-frame call is compiled, traced once for fixed single-sample shapes: `compiled_call` on any
backend, and on TensorFlow the encoder and head fused into one step (`tf_calls.tensorflow_step_call`). An
eager `model(x)` or `model.predict(x)` per frame costs several times more (measured in
docs/stream.md). On TensorFlow a call that takes under XLA_TRY_BELOW_S is also compiled whole by XLA,
and the faster of the two kept (`faster_with_xla`).
"""

from __future__ import annotations

import threading
import weakref
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

from varec_cli.models.classifier import KerasClassifier, StreamSession
from varec_cli.runtime import tensorflow_backend

CompiledCall = Callable[..., list]

# A TensorFlow call faster than this is mostly per-op dispatch, which XLA compiles away (the scratch
# stream model at 32 px: its encoder 0.34 → 0.17 ms a frame, its whole step 0.57 → 0.22 ms); slower
# ones are convolutions, where TensorFlow's oneDNN kernels beat XLA's on a CPU (scratch at 224 px 1.2
# → 1.6 ms; MobileNetV2 15 → 68 ms, and over a second to compile), so XLA is not even tried for them.
XLA_TRY_BELOW_S = 1e-3
XLA_WARM_CALLS = 2  # untimed calls per candidate after the one that traces
XLA_TIMING_CALLS = 15  # then timed calls
XLA_SURELY_SLOW_S = 5 * XLA_TRY_BELOW_S


def compiled_call(model, input_shapes: Sequence[tuple[int, ...]]) -> CompiledCall:
    """`model` in inference mode as one compiled function for inputs of exactly `input_shapes`
    (float32). Called with numpy arrays, it returns the model's outputs as a list of numpy arrays.

    TensorFlow gets a `tf.function` with a fixed input signature (`tensorflow_compiled_call`); any
    other Keras backend gets the model's own compiled predict step (`keras_predict_step_call`).
    """
    if tensorflow_backend():
        from varec_cli.models.tf_calls import tensorflow_compiled_call

        return faster_with_xla(
            tensorflow_compiled_call(model, input_shapes),
            lambda: tensorflow_compiled_call(model, input_shapes, jit_compile=True),
            example_inputs(input_shapes),
        )
    return keras_predict_step_call(model)


def faster_with_xla(plain: CompiledCall, make_xla: Callable[[], CompiledCall], example: Sequence) -> CompiledCall:
    """`plain`, or the XLA build of the same call where `plain` takes under XLA_TRY_BELOW_S and the
    XLA one is at least 10% faster on `example`, timed here (XLA's edge depends on the model's size
    and the machine), and gives the same outputs up to float rounding. XLA is not tried for a slower
    call: see XLA_TRY_BELOW_S."""
    plain_seconds, plain_outputs = _seconds_per_call(plain, example)
    if plain_seconds >= XLA_TRY_BELOW_S:
        return plain
    try:
        xla = make_xla()
        xla_seconds, xla_outputs = _seconds_per_call(xla, example)
    except Exception:  # an op XLA cannot compile: keep the plain call
        return plain
    same = len(xla_outputs) == len(plain_outputs) and all(
        np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(xla_outputs, plain_outputs)
    )
    return xla if same and xla_seconds < 0.9 * plain_seconds else plain


def _seconds_per_call(call: CompiledCall, example: Sequence) -> tuple[float, list]:
    """(the fastest of XLA_TIMING_CALLS calls, the least disturbed by whatever else runs; the
    outputs), after a call that traces or compiles and XLA_WARM_CALLS more. A call that takes
    XLA_SURELY_SLOW_S or more right after tracing is not called again: a big model's stream starts
    two calls later, not eighteen."""
    import time

    outputs = call(*example)
    fastest = float("inf")
    for index in range(XLA_WARM_CALLS + XLA_TIMING_CALLS):
        started = time.perf_counter()
        call(*example)
        seconds = time.perf_counter() - started
        if index == 0 and seconds >= XLA_SURELY_SLOW_S:
            return seconds, outputs
        if index >= XLA_WARM_CALLS:
            fastest = min(fastest, seconds)
    return fastest, outputs


def example_inputs(shapes: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Inputs to time and compare compiled calls on: frames (rank 4) of random pixels, features of
    random values; the same every time."""
    rng = np.random.default_rng(0)
    return [
        rng.uniform(0, 255, shape).astype(np.float32) if len(shape) == 4 else rng.standard_normal(shape).astype(np.float32)
        for shape in shapes
    ]


def keras_predict_step_call(model) -> CompiledCall:
    """Any Keras backend: the model's compiled predict step (`jax.jit` on JAX), through
    `predict_on_batch`, which reuses it from call to call."""

    def call(*arrays):
        arrays = [np.asarray(a, dtype=np.float32) for a in arrays]
        outputs = model.predict_on_batch(arrays[0] if len(arrays) == 1 else arrays)
        if isinstance(outputs, (list, tuple)):
            return [np.asarray(o) for o in outputs]
        return [np.asarray(outputs)]

    return call


def step_frame(frame, shape: tuple[int, ...]) -> np.ndarray:
    """`frame` as an array, checked to be one frame of `shape` (h, w, 3), alone or as a batch of one:
    a step copies or reshapes it into its input, which would take a wrong-sized frame of as many
    pixels, or broadcast a smaller one, without a word."""
    frame = np.asarray(frame)
    if frame.shape[-3:] != tuple(shape):
        raise ValueError(f"a stream step takes frames of {tuple(shape)}, not {frame.shape}")
    return frame


def build_step_model(encoder, head, frames: int):
    """(new frame, the frames-1 earlier features) → (the new frame's feature, probabilities).

    Encoder and head share their weights with the whole model; one call does one CNN pass and one
    pass of the head over the window, so a streaming step is a single compiled call.
    """
    from varec_cli.runtime import import_keras

    keras = import_keras()
    from keras import layers

    feature_dim = int(encoder.output_shape[-1])
    frame = keras.Input(tuple(encoder.input_shape[1:]), name="frame")
    feature = encoder(frame)
    newest = layers.Reshape((1, feature_dim), name="newest_feature")(feature)
    if frames == 1:
        inputs, sequence = [frame], newest
    else:
        past = keras.Input((frames - 1, feature_dim), name="past_features")
        inputs, sequence = [frame, past], layers.Concatenate(axis=1, name="window")([past, newest])
    return keras.Model(inputs, [feature, head(sequence)], name="stream_step")


class _StreamFunctions:
    """The compiled calls a session needs, built (and traced) once per classifier."""

    def __init__(self, classifier: KerasClassifier):
        from varec_cli.models.stream_head import projected_head

        encoder, head = classifier.halves()
        self.sequence_head = head = projected_head(head)
        spec = classifier.spec
        self.frames = spec.frames
        self.feature_dim = int(encoder.output_shape[-1])
        frame_shape = (1, spec.height, spec.width, 3)
        past_shape = (1, spec.frames - 1, self.feature_dim)
        self.encode = compiled_call(encoder, [frame_shape])
        self._head_model, self._window_shape = head, (1, spec.frames, self.feature_dim)
        self._head_call: CompiledCall | None = None
        self._head_lock = threading.Lock()
        if spec.frames > 1 and tensorflow_backend():
            from varec_cli.models.tf_calls import tensorflow_step_call

            self.step = faster_with_xla(
                tensorflow_step_call(encoder, head, frame_shape, past_shape),
                lambda: tensorflow_step_call(encoder, head, frame_shape, past_shape, jit_compile=True),
                example_inputs([frame_shape, past_shape]),
            )
        else:
            step_model = build_step_model(encoder, head, spec.frames)
            step = compiled_call(step_model, [frame_shape] if spec.frames == 1 else [frame_shape, past_shape])
            if spec.frames == 1:
                self.step = step
            else:  # frame and past as a session gives them, as tensorflow_step_call takes them

                def portable_step(frame, past):
                    frame = step_frame(frame, frame_shape[1:]).reshape(frame_shape)
                    return step(frame, past if isinstance(past, np.ndarray) else np.stack(past)[None])

                self.step = portable_step
        if not tensorflow_backend():  # trace now (faster_with_xla has on TensorFlow), not on the first frame
            zeros = np.zeros(frame_shape, np.float32)
            self.encode(zeros)
            self.step(zeros) if spec.frames == 1 else self.step(zeros, np.zeros(past_shape, np.float32))

    @property
    def head(self) -> CompiledCall:
        """The head alone, (1, frames, dim) features → probabilities. A session needs it only for a
        window that repeats the newest frame (a source sparser in time than the model's spacing), so
        it is built on first use, not when every stream starts (MobileNetV2's GRU(256) head: 1.4 s
        on 2 cores, its XLA build tried and timed)."""
        with self._head_lock:
            if self._head_call is None:
                self._head_call = compiled_call(self._head_model, [self._window_shape])
            return self._head_call


_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def stream_functions(classifier: KerasClassifier) -> _StreamFunctions:
    with classifier._lock:  # one set of compiled calls, timed and chosen once, however many threads ask
        functions = _FUNCTIONS.get(classifier)
        if functions is None:
            functions = _FUNCTIONS[classifier] = _StreamFunctions(classifier)
        return functions


def frame_spacing(clip_seconds: float | None, frames: int, fps: float | None) -> float | None:
    """Seconds between the frames the head reads, matching how training clips were sampled.

    A training clip of `clip_seconds` at `fps` holds clip_seconds*fps frames and the model's
    `frames` are spread first to last over them, so they lie (clip_seconds - 1/fps)/(frames - 1)
    apart. None (read every frame) when the model does not say how long its clips were.
    """
    if not clip_seconds or clip_seconds <= 0 or frames < 2:
        return None
    span = clip_seconds - (1.0 / fps if fps and fps > 0 else 0.0)
    return max(span, 0.0) / (frames - 1)


class RingBufferSession(StreamSession):
    """Each frame goes through the CNN once; the head reads `frames` feature vectors from a ring
    buffer, `spacing` seconds apart (the nearest stored frame to each wanted time), ending at the
    newest frame.

    Frames are placed in time by the `timestamp` given to `push` (source seconds), else by their
    count at `fps`. Without a spacing (the model does not know its clip length), or without any
    notion of time, the head reads the last `frames` frames pushed.
    """

    def __init__(self, classifier: KerasClassifier, *, fps: float | None = None):
        self._functions = stream_functions(classifier)
        self.frames = classifier.spec.frames
        self.fps = fps if fps and fps > 0 else None
        self.spacing = frame_spacing(classifier.spec.clip_seconds, self.frames, self.fps)
        if self.spacing is not None:  # for _past_indices: how far back each earlier frame is wanted
            self._offsets = [self.spacing * k for k in range(self.frames - 1, 0, -1)]
            self._window = window = self.window_seconds
            self._full_span = window - 1e-6 * max(1.0, window)
        self._times: deque[float] = deque()
        self._features: deque[np.ndarray] = deque()
        self._count = 0

    @property
    def window_seconds(self) -> float | None:
        """The time the head's window spans, when frames are spaced in time."""
        return None if self.spacing is None else self.spacing * (self.frames - 1)

    def reset(self) -> None:
        self._times.clear()
        self._features.clear()
        self._count = 0

    def push(self, frame: np.ndarray, timestamp: float | None = None) -> np.ndarray | None:
        if timestamp is not None:
            now, timed = float(timestamp), self.spacing is not None
        elif self.fps is not None:
            now, timed = self._count / self.fps, self.spacing is not None
        else:
            now, timed = float(self._count), False
        self._count += 1
        past = self._past_indices(now) if timed else self._last_indices()
        functions, features = self._functions, self._features
        if past is None:
            feature = functions.encode(np.asarray(frame)[None])[0][0]
            probabilities = None
        elif self.frames == 1:
            feature, probabilities = functions.step(np.asarray(frame)[None])
            feature, probabilities = feature[0], probabilities[0]
        elif -1 in past:
            # The window repeats the newest frame (frames closer together than the source's):
            # encode it first, then run the head over the completed window.
            feature = functions.encode(np.asarray(frame)[None])[0][0]
            window = np.stack([feature if i == -1 else features[i] for i in past] + [feature])
            probabilities = functions.head(window[None])[0][0]
        else:  # the usual step: each compiled call casts to float32 once, as it packs its input
            feature, probabilities = functions.step(frame, [features[i] for i in past])
            feature, probabilities = feature[0], probabilities[0]
        self._store(now, feature, timed)
        return None if probabilities is None else np.asarray(probabilities, dtype=np.float32)

    def _last_indices(self) -> list[int] | None:
        """Every frame: the frames-1 latest stored features, once there are that many."""
        if len(self._features) < self.frames - 1:
            return None
        return list(range(len(self._features) - (self.frames - 1), len(self._features)))

    def _past_indices(self, now: float) -> list[int] | None:
        """For each of the frames-1 earlier wanted times, the stored frame nearest to it (-1: the
        new frame itself is nearer); None until the buffer spans the whole window.

        Plain Python on purpose: a handful of values, where numpy's per-call overhead would be
        most of a tiny model's step. The wanted times grow, so each search starts where the last
        one ended."""
        times = self._times
        if not times or now - times[0] < self._full_span:
            return None
        last = len(times) - 1
        picks = []
        right = 1
        for offset in self._offsets:
            wanted = now - offset
            right = min(max(bisect_left(times, wanted, right, last), 1), last)
            left = max(right - 1, 0)
            nearest = left if abs(times[left] - wanted) <= abs(times[right] - wanted) else right
            picks.append(-1 if abs(now - wanted) < abs(times[nearest] - wanted) else nearest)
        return picks

    def _store(self, now: float, feature: np.ndarray, timed: bool) -> None:
        self._times.append(now)
        self._features.append(np.asarray(feature, dtype=np.float32))
        if timed:
            # Keep one frame older than the window, the candidate nearest to its first wanted time.
            oldest_needed = now - self._window - self.spacing
            while len(self._times) > 2 and self._times[1] <= oldest_needed:
                self._times.popleft()
                self._features.popleft()
        else:
            while len(self._features) > max(self.frames - 1, 1):
                self._times.popleft()
                self._features.popleft()
