"""TensorFlow only: compiled calls with a model's weights folded in as constants
(tf_frozen.with_constant_weights), for the work done call after call on small inputs: a stream's
per-frame steps (models/streaming.py picks these on TensorFlow, Keras' predict step elsewhere) and
`varec train`'s feature extraction (training/loader.frame_encoder_function)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from varec_cli.models.streaming import CompiledCall, step_frame
from varec_cli.models.tf_frozen import with_constant_weights
from varec_cli.runtime import import_tensorflow


def tensorflow_frame_encoder(encoder) -> Callable[[np.ndarray], np.ndarray]:
    """A frame encoder as one compiled call on uint8 batches of any size (MobileNetV2 8.5 → 6.2 ms a
    frame in batches of 64 against its predict step, on 2 cores)."""
    tf = import_tensorflow()
    signature = [tf.TensorSpec((None, *encoder.input_shape[1:]), tf.uint8)]
    call = with_constant_weights(lambda frames: encoder(frames, training=False), signature)

    def encode(frames: np.ndarray) -> np.ndarray:
        return call(tf.constant(frames, tf.uint8)).numpy()

    return encode


def tensorflow_compiled_call(
    model, input_shapes: Sequence[tuple[int, ...]], *, jit_compile: bool = False
) -> CompiledCall:
    """A `tf.function` with a fixed input signature, traced once and reused.

    Unlike `predict_on_batch` it skips the data adapter and the distribution-strategy wrapper on
    every call; called as its one concrete function, with tensors, it skips the `tf.function`'s own
    argument matching too (measured per frame: the scratch stream model's encoder 0.72 → 0.47 ms,
    MobileNetV2's 16.7 → 16.1 ms). The weights are folded in as constants (see
    tf_frozen.with_constant_weights). `jit_compile`: the whole call compiled by XLA (see
    streaming.faster_with_xla for when that pays).
    """
    tf = import_tensorflow()
    signature = [tf.TensorSpec(shape, tf.float32) for shape in input_shapes]
    single = len(signature) == 1

    def run(*inputs):
        return model(inputs[0] if single else list(inputs), training=False)

    concrete = with_constant_weights(run, signature, jit_compile=jit_compile)

    def call(*arrays):
        outputs = concrete(*(tf.constant(np.asarray(a, dtype=np.float32)) for a in arrays))
        if isinstance(outputs, (list, tuple)):
            return [o.numpy() for o in outputs]
        return [outputs.numpy()]

    return call


def tensorflow_step_call(
    encoder, head, frame_shape: tuple[int, ...], past_shape: tuple[int, ...], *, jit_compile: bool = False
) -> CompiledCall:
    """streaming.build_step_model's step as one `tf.function`, with the head compiled by XLA inside it,
    the weights folded in as constants (see tf_frozen.with_constant_weights); `jit_compile`: the whole
    step, CNN included (see streaming.faster_with_xla for when that pays).

    Called as `step(frame, past)`, `past` the frames-1 earlier features as one (1, frames-1, dim)
    array or as a sequence of dim-vectors (a ring buffer's own, not stacked first).

    Three things a tiny model's step is mostly made of, measured on the scratch stream model:
    - an RNN over a short window is many tiny ops in a loop; fused by XLA it costs a fraction of
      its op-by-op run (the GRU head's share of a step fell from ~0.2 to ~0.06 ms; ~5.2 to ~4.0 ms
      for mobilenet_v2's GRU(256) over 16 frames);
    - every argument and result of a `tf.function` call costs ~0.06 ms of Python, as much as that
      head: the frame and the past features go in as one flat vector, the new feature and the
      probabilities come out as one;
    - that vector, built afresh per call (a new array, the features stacked, then copied in), cost
      ~0.04 ms of a 0.37 ms step: each thread fills one of its own in place (the frame and each
      feature into their slices), and `tf.constant` copies it into the call's input tensor.
    Falls back to the unfused head where XLA cannot compile it.
    """
    tf = import_tensorflow()

    frame_size, past_size = int(np.prod(frame_shape)), int(np.prod(past_shape))
    feature_dim = int(past_shape[-1])
    signature = [tf.TensorSpec((1, frame_size + past_size), tf.float32)]

    def make(fuse: bool):
        head_call = tf.function(lambda window: head(window, training=False), jit_compile=fuse and not jit_compile)

        def step(packed):
            frame = tf.reshape(packed[:, :frame_size], frame_shape)
            past = tf.reshape(packed[:, frame_size:], past_shape)
            feature = encoder(frame, training=False)
            window = tf.concat([past, tf.expand_dims(feature, 1)], axis=1)
            return tf.concat([feature, head_call(window)], axis=-1)

        # called directly as a concrete function: see tensorflow_compiled_call
        run = with_constant_weights(step, signature, jit_compile=jit_compile)
        run(tf.zeros((1, frame_size + past_size)))  # compile now
        return run

    try:
        run = make(fuse=True)
    except Exception:  # an op XLA does not support: the same step without fusion
        if jit_compile:
            raise
        run = make(fuse=False)

    per_thread = threading.local()

    def buffers():
        try:
            return per_thread.buffers
        except AttributeError:
            packed = np.zeros((1, frame_size + past_size), np.float32)
            frame_part, past_part = packed[0, :frame_size], packed[0, frame_size:]
            slots = [past_part[i : i + feature_dim] for i in range(0, past_size, feature_dim)]
            per_thread.buffers = packed, frame_part.reshape(frame_shape[1:]), past_part, slots
            return per_thread.buffers

    def call(frame, past):
        packed, frame_part, past_part, slots = buffers()
        frame_part[...] = step_frame(frame, frame_part.shape)
        if isinstance(past, np.ndarray):
            past_part[:] = past.ravel()
        else:
            for slot, feature in zip(slots, past, strict=True):
                slot[:] = feature
        out = run(tf.constant(packed)).numpy()
        return [out[:, :feature_dim], out[:, feature_dim:]]

    return call
