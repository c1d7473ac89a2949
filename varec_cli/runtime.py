"""Importing the heavy frameworks quietly, in one place."""

from __future__ import annotations

import os


def import_keras():
    """Import Keras with TensorFlow's C++ start-up chatter silenced unless VAREC_DEBUG=1."""
    from varec_cli import paths

    if not paths.debug():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    return keras
