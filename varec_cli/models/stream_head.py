"""The sequence head as a stream step runs it: the same layers and weights, with the recurrent
layer's input projections for the whole window computed in one matrix product.

A Keras LSTM or GRU multiplies each frame's features by its input kernel inside its loop, one frame
at a time. With one window per call that product is a matrix-vector one, which reads the whole kernel
from memory for every frame: MobileNetV2's 1280 features into a GRU(256) is a 3.9 MB kernel, read 16
times per frame of a stream. One product over the window reads it once; the loop then only runs the
recurrent kernel (256x768 there), which stays in cache: that head went from 2.7 to 0.9 ms a frame
(both compiled by XLA, as a stream step runs them). A small kernel stays in cache anyway, and there
XLA compiles the Keras layer's own loop into faster code than the written-out one (the 32 px scratch
stream model's GRU(16): 0.10 ms against 0.30; a GRU(256) on 128 features, a 0.4 MB kernel: 0.44
against 0.56), so only kernels of at least PROJECT_MIN_KERNEL_BYTES are projected. Training and clip
inference, with many clips per batch, do not have this problem and keep the Keras layers.

Imported only where Keras already is (it imports Keras at the top).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

PROJECT_MIN_KERNEL_BYTES = 1 << 20


def projected_head(head, min_kernel_bytes: int | None = None):
    """`head` (window of features → probabilities) with its recurrent layer computed as above, or
    `head` itself where that does not pay (an input kernel under `min_kernel_bytes`, by default
    PROJECT_MIN_KERNEL_BYTES) or where the head is not what build_sequence_head makes (one LSTM, GRU
    or Bidirectional LSTM returning its last output, then Dropout and Dense layers; float32; no
    state kept between calls)."""
    recurrent = [layer for layer in head.layers if isinstance(layer, (layers.LSTM, layers.GRU, layers.Bidirectional))]
    if len(recurrent) != 1 or not _supported(recurrent[0]) or len(head.inputs) != 1 or len(head.outputs) != 1:
        return head
    if _input_kernel_bytes(recurrent[0]) < (PROJECT_MIN_KERNEL_BYTES if min_kernel_bytes is None else min_kernel_bytes):
        return head
    window = head.inputs[0]
    if window.shape[1] is None:  # the window's length must be known to write its loop out
        return head
    chain = [layer for layer in head.layers if not isinstance(layer, layers.InputLayer)]
    if chain[0] is not recurrent[0] or not all(isinstance(layer, (layers.Dropout, layers.Dense)) for layer in chain[1:]):
        return head
    inputs = keras.Input(tuple(window.shape[1:]), name=window.name)
    x = ProjectedRecurrence(recurrent[0])(inputs)
    for layer in chain[1:]:
        x = layer(x)
    projected = keras.Model(inputs, x, name=f"{head.name}_projected")
    # A head this module misreads (a layer applied twice, a subclass that computes otherwise) must
    # not change a label: both heads on the same windows, else the Keras one.
    windows = np.random.default_rng(0).standard_normal((2, *window.shape[1:])).astype("float32")
    want = ops.convert_to_numpy(head(windows, training=False))
    got = ops.convert_to_numpy(projected(windows, training=False))
    return projected if got.shape == want.shape and np.allclose(got, want, rtol=1e-4, atol=1e-5) else head


def _input_kernel_bytes(layer) -> int:
    """Bytes of the input kernel one frame's projection reads (the larger direction's)."""
    if isinstance(layer, layers.Bidirectional):
        return max(_input_kernel_bytes(layer.forward_layer), _input_kernel_bytes(layer.backward_layer))
    rows, cols = layer.cell.kernel.shape
    return int(rows) * int(cols) * 4  # float32 (see _supported)


def _supported(layer) -> bool:
    if isinstance(layer, layers.Bidirectional):
        return (
            layer.merge_mode == "concat"
            and not layer.return_sequences
            and not layer.return_state
            and isinstance(layer.forward_layer, layers.LSTM)
            and _supported(layer.forward_layer)
            and isinstance(layer.backward_layer, layers.LSTM)
            and _supported_rnn(layer.backward_layer, backwards=True)
        )
    return _supported_rnn(layer, backwards=False)


def _supported_rnn(layer, *, backwards: bool) -> bool:
    return (
        isinstance(layer, (layers.LSTM, layers.GRU))
        and not layer.return_sequences
        and not layer.return_state
        and not layer.stateful
        and bool(layer.go_backwards) == backwards
        and layer.dtype_policy.compute_dtype == "float32"
        and layer.dtype_policy.variable_dtype == "float32"
    )


class ProjectedRecurrence(layers.Layer):
    """A built LSTM, GRU or Bidirectional(LSTM) layer's last output over a fixed-length window, in
    inference mode, with its weights (see the top of this module)."""

    def __init__(self, recurrent, **kwargs):
        super().__init__(name=f"{recurrent.name}_projected", dtype=recurrent.dtype_policy, **kwargs)
        self.recurrent = recurrent

    def call(self, window):
        if isinstance(self.recurrent, layers.Bidirectional):
            forward = last_output(self.recurrent.forward_layer, window)
            backward = last_output(self.recurrent.backward_layer, window)
            return ops.concatenate([forward, backward], axis=-1)
        return last_output(self.recurrent, window)

    def compute_output_shape(self, input_shape):
        return self.recurrent.compute_output_shape(input_shape)


def last_output(layer, window):
    """What `layer(window, training=False)` returns, for an LSTM or GRU layer that returns its last
    output (going backwards if it does), written out over the window's fixed length."""
    cell = layer.cell
    units = cell.units
    steps = range(window.shape[1])
    if layer.go_backwards:
        steps = reversed(steps)
    length, features = window.shape[1], window.shape[2]
    # Every frame's input projection at once, as one 2-D product (batch and frames together).
    projected = ops.reshape(ops.matmul(ops.reshape(window, (-1, features)), cell.kernel), (-1, length, cell.kernel.shape[-1]))
    recurrent_bias = None
    if cell.use_bias:
        if isinstance(layer, layers.GRU) and cell.reset_after:
            projected = projected + cell.bias[0]
            recurrent_bias = cell.bias[1]
        else:
            projected = projected + cell.bias
    state = ops.zeros_like(projected[:, 0, :units])
    carry = state
    for t in steps:
        x = projected[:, t, :]
        if isinstance(layer, layers.LSTM):
            z = x + ops.matmul(state, cell.recurrent_kernel)
            z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
            carry = cell.recurrent_activation(z_f) * carry + cell.recurrent_activation(z_i) * cell.activation(z_c)
            state = cell.recurrent_activation(z_o) * cell.activation(carry)
            continue
        x_z, x_r, x_h = ops.split(x, 3, axis=-1)
        if cell.reset_after:
            inner = ops.matmul(state, cell.recurrent_kernel)
            if recurrent_bias is not None:
                inner = inner + recurrent_bias
            inner_z, inner_r, inner_h = ops.split(inner, 3, axis=-1)
        else:
            inner_z, inner_r = ops.split(ops.matmul(state, cell.recurrent_kernel[:, : 2 * units]), 2, axis=-1)
        z = cell.recurrent_activation(x_z + inner_z)
        r = cell.recurrent_activation(x_r + inner_r)
        if cell.reset_after:
            recurrent_h = r * inner_h
        else:
            recurrent_h = ops.matmul(r * state, cell.recurrent_kernel[:, 2 * units :])
        candidate = cell.activation(x_h + recurrent_h)
        state = z * state + (1 - z) * candidate
    return state
