"""Per-frame CNN backbones: how to build each, and the pixel preprocessing it was trained with."""

from __future__ import annotations

import math
from dataclasses import dataclass

from varec_cli.errors import VarecError, brief


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    preprocessing: str  # a FramePreprocessing mode
    feature_dim: int
    default_size: int
    pretrained: bool  # has ImageNet weights to start from


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("scratch", "unit", 128, 64, False),
        BackboneSpec("mobilenet_v2", "symmetric", 1280, 224, True),
        BackboneSpec("resnet50", "caffe", 2048, 224, True),
        BackboneSpec("resnet152v2", "symmetric", 2048, 224, True),
        # EfficientNetV2 carries its own rescaling layer and expects raw 0..255 pixels.
        BackboneSpec("efficientnetv2-b0", "none", 1280, 224, True),
    )
}

RNNS = ("lstm", "gru", "bilstm")


def backbone_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise VarecError(f"unknown backbone {name!r}; choose one of: {', '.join(BACKBONES)}") from None


def _scratch_cnn(size: int):
    """A small CNN trained from zero: strided convolutions down to <=8x8, then a dense projection.

    Flatten (not global pooling) keeps *where* things are in the frame, which is what tells
    "moving left" from "moving right" once the RNN reads the sequence.
    """
    from varec_cli.runtime import import_keras

    keras = import_keras()
    from keras import layers

    inputs = keras.Input((size, size, 3), name="pixels")
    x = inputs
    blocks = max(1, math.ceil(math.log2(max(size, 8) / 8)))
    filters = 16
    for i in range(blocks):
        x = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu", name=f"conv{i + 1}")(x)
        filters = min(filters * 2, 64)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(BACKBONES["scratch"].feature_dim, activation="relu", name="project")(x)
    return keras.Model(inputs, x, name="scratch_cnn")


def build_backbone(name: str, size: int, weights: str | None = None):
    """A Keras model mapping preprocessed (size, size, 3) pixels to a feature vector.

    `weights` is None (random init) or a local .h5 weights file (ImageNet no-top weights come
    through the weights cache, never Keras' own downloader).
    """
    from varec_cli.runtime import import_keras

    keras = import_keras()

    spec = backbone_spec(name)
    if name == "scratch":
        if weights:
            raise VarecError("the scratch backbone has no pretrained weights")
        return _scratch_cnn(size)
    shape = (size, size, 3)
    apps = keras.applications
    if name == "mobilenet_v2":
        model = apps.MobileNetV2(include_top=False, weights=None, input_shape=shape, pooling="avg")
    elif name == "resnet50":
        model = apps.ResNet50(include_top=False, weights=None, input_shape=shape, pooling="avg")
    elif name == "resnet152v2":
        model = apps.ResNet152V2(include_top=False, weights=None, input_shape=shape, pooling="avg")
    elif name == "efficientnetv2-b0":
        model = apps.EfficientNetV2B0(
            include_top=False, weights=None, input_shape=shape, pooling="avg", include_preprocessing=True
        )
    else:  # pragma: no cover - backbone_spec already rejected it
        raise VarecError(f"unknown backbone {name!r}")
    if weights:
        try:
            model.load_weights(str(weights))
        except Exception as exc:  # Keras raises ValueError, OSError, KeyError... for a file that is not these weights
            raise VarecError(
                f"{weights}: not {name} no-top weights Keras can load into this network ({brief(exc, 160)})"
            ) from None
    assert model.output_shape[-1] == spec.feature_dim
    return model


def set_trainable_layers(backbone, trainable_layers: int) -> None:
    """Freeze a pretrained backbone except its last `trainable_layers` layers (0 = fully frozen)."""
    if trainable_layers <= 0:
        backbone.trainable = False
        return
    backbone.trainable = True
    weighted = [layer for layer in backbone.layers if layer.weights]
    for layer in weighted[:-trainable_layers]:
        layer.trainable = False
