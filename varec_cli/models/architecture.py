"""The varec network: a frame encoder (preprocessing + CNN) applied to each frame with
TimeDistributed, then a sequence head (LSTM/GRU + softmax).

Keeping the two halves as named sub-models is what lets training cache per-frame features and
train the head alone, and lets streaming run the CNN once per frame and the head over a ring
buffer of features.
"""

from __future__ import annotations

from varec_cli.errors import VarecError
from varec_cli.models.backbones import RNNS, backbone_spec, build_backbone, set_trainable_layers

ENCODER_LAYER = "frame_features"  # the TimeDistributed wrapper around the frame encoder
HEAD_LAYER = "sequence_head"


def build_frame_encoder(backbone: str, size: int, *, weights: str | None = None, trainable_layers: int = 0):
    """(size, size, 3) RGB pixels in 0..255 → a feature vector."""
    from varec_cli.runtime import import_keras

    keras = import_keras()

    from varec_cli.models.layers import FramePreprocessing

    spec = backbone_spec(backbone)
    cnn = build_backbone(backbone, size, weights=weights)
    if spec.pretrained:
        set_trainable_layers(cnn, trainable_layers)
    inputs = keras.Input((size, size, 3), name="rgb")
    x = FramePreprocessing(spec.preprocessing, name="preprocessing")(inputs)
    x = cnn(x)
    return keras.Model(inputs, x, name="frame_encoder")


def build_sequence_head(
    frames: int, feature_dim: int, num_classes: int, *, rnn: str = "gru", units: int = 256, dropout: float = 0.3
):
    """(frames, feature_dim) features in temporal order → class probabilities."""
    from varec_cli.runtime import import_keras

    keras = import_keras()
    from keras import layers

    if rnn not in RNNS:
        raise VarecError(f"unknown RNN {rnn!r}; choose one of: {', '.join(RNNS)}")
    inputs = keras.Input((frames, feature_dim), name="features")
    if rnn == "lstm":
        x = layers.LSTM(units, name="lstm")(inputs)
    elif rnn == "gru":
        x = layers.GRU(units, name="gru")(inputs)
    else:
        x = layers.Bidirectional(layers.LSTM(units), name="bilstm")(inputs)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=HEAD_LAYER)


def assemble_model(encoder, head, frames: int, size: int):
    """Frames (frames, size, size, 3) → probabilities, sharing the weights of `encoder` and `head`."""
    from varec_cli.runtime import import_keras

    keras = import_keras()
    from keras import layers

    inputs = keras.Input((frames, size, size, 3), name="frames")
    features = layers.TimeDistributed(encoder, name=ENCODER_LAYER)(inputs)
    return keras.Model(inputs, head(features), name="varec")


def assemble_training_model(encoder, head, frames: int, size: int):
    """The same network as assemble_model, with the frames folded into the batch around the encoder.

    Keras' TimeDistributed unrolls one encoder call per frame, so tracing a training step costs about
    `frames` encoder traces (measured: 36 s vs 4.7 s for MobileNetV2 at 16 frames). Training uses this
    model; the saved file keeps the TimeDistributed one (the weights are the same objects). On a CPU,
    per step of 16 clips with 20 layers trained, TimeDistributed was faster for MobileNetV2 (2.4 s vs
    3.1 s) but not for ResNet152V2 (10.9 s vs 10.8 s, after a 153 s trace vs 24 s) or the scratch CNN,
    so this model is used everywhere.
    """
    from varec_cli.runtime import import_keras

    keras = import_keras()
    from varec_cli.models.layers import FoldFrames, UnfoldFrames

    inputs = keras.Input((frames, size, size, 3), name="frames")
    features = UnfoldFrames(frames, name="unfold_frames")(encoder(FoldFrames(name="fold_frames")(inputs)))
    return keras.Model(inputs, head(features), name="varec_training")


def build_model(
    num_classes: int,
    *,
    backbone: str = "mobilenet_v2",
    rnn: str = "gru",
    frames: int = 16,
    size: int = 224,
    weights: str | None = None,
    trainable_layers: int = 0,
    units: int = 256,
    dropout: float = 0.3,
):
    if num_classes < 2:
        raise VarecError("a classifier needs at least 2 classes")
    if frames < 1 or size < 8:
        raise VarecError("frames must be >= 1 and size >= 8")
    encoder = build_frame_encoder(backbone, size, weights=weights, trainable_layers=trainable_layers)
    head = build_sequence_head(
        frames, int(encoder.output_shape[-1]), num_classes, rnn=rnn, units=units, dropout=dropout
    )
    return assemble_model(encoder, head, frames, size)


def split_model(model):
    """(frame encoder, sequence head) of a varec model: the halves share weights with it."""
    return model.get_layer(ENCODER_LAYER).layer, model.get_layer(HEAD_LAYER)
