"""Pretrained weights: a registry of downloadable artefacts, a verified on-disk cache, downloads.

`resolve.resolve_model_path()` is the one place a model name becomes a file; see docs/models.md.
Nothing here imports requests, TensorFlow or Keras at import time.
"""

from varec_cli.weights.archive import SAVEDMODEL_METADATA
from varec_cli.weights.resolve import (
    backbone_weights_path,
    default_model_name,
    ensure_cached,
    resolve_model_path,
)

__all__ = [
    "SAVEDMODEL_METADATA",
    "backbone_weights_path",
    "default_model_name",
    "ensure_cached",
    "resolve_model_path",
]
