"""The package's own Keras layers, registered so that safe-mode loading can rebuild them."""

from __future__ import annotations

import keras
from keras import ops

PREPROCESSING_MODES = ("unit", "symmetric", "caffe", "none")
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="varec")
class FramePreprocessing(keras.layers.Layer):
    """RGB pixels in 0..255 → what the backbone was trained on. Lives in the model file, so every
    command feeds the same thing: resized RGB frames, nothing else.

    Modes: unit (x/255), symmetric (x/127.5-1, MobileNetV2/ResNetV2), caffe (RGB→BGR minus the
    ImageNet mean, ResNet50), none (the backbone scales by itself, EfficientNetV2).
    """

    def __init__(self, mode: str = "unit", **kwargs):
        super().__init__(**kwargs)
        if mode not in PREPROCESSING_MODES:
            raise ValueError(f"unknown preprocessing mode {mode!r}")
        self.mode = mode

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "unit":
            return x / 255.0
        if self.mode == "symmetric":
            return x / 127.5 - 1.0
        if self.mode == "caffe":
            x = ops.flip(x, axis=-1)
            return x - ops.convert_to_tensor(_CAFFE_BGR_MEAN, dtype=self.compute_dtype)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="varec")
class FoldFrames(keras.layers.Layer):
    """(batch, frames, ...) → (batch * frames, ...): the frame encoder then sees one big batch."""

    def call(self, inputs):
        return ops.reshape(inputs, (-1,) + tuple(inputs.shape[2:]))

    def compute_output_shape(self, input_shape):
        return (None,) + tuple(input_shape[2:])


@keras.saving.register_keras_serializable(package="varec")
class UnfoldFrames(keras.layers.Layer):
    """(batch * frames, ...) → (batch, frames, ...), undoing FoldFrames."""

    def __init__(self, frames: int, **kwargs):
        super().__init__(**kwargs)
        self.frames = int(frames)

    def call(self, inputs):
        return ops.reshape(inputs, (-1, self.frames) + tuple(inputs.shape[1:]))

    def compute_output_shape(self, input_shape):
        return (None, self.frames) + tuple(input_shape[1:])

    def get_config(self):
        return {**super().get_config(), "frames": self.frames}
