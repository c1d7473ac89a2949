"""Importing the heavy frameworks quietly, in one place."""

from __future__ import annotations

import os


def import_keras():
    """Import Keras with TensorFlow's C++ start-up chatter silenced unless VAREC_DEBUG=1."""
    import sys

    from varec_cli import paths

    if "keras" in sys.modules:
        return sys.modules["keras"]
    if not paths.debug():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from varec_cli.video.quiet import stderr_fd_silenced

    # TensorFlow's C++ start-up lines (oneDNN, CUDA stubs) ignore TF_CPP_MIN_LOG_LEVEL.
    with stderr_fd_silenced():
        import keras

    if not paths.debug():
        import logging

        # TensorFlow's Python-side warnings (retracing notices and the like) speak to developers.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
    return keras


def import_tensorflow():
    """TensorFlow, imported (through Keras) as quietly as import_keras does it."""
    import_keras()
    import tensorflow

    return tensorflow


def tensorflow_backend() -> bool:
    """Whether Keras runs on TensorFlow (where varec's TensorFlow-only speed-ups apply)."""
    return import_keras().backend.backend() == "tensorflow"


_fast_exit = False


def request_fast_exit() -> None:
    """Let the `varec` process end with os._exit once this command is done (see cli.main).

    Python's own shutdown with TensorFlow and a Keras model loaded takes 0.6-0.8 s (module
    teardown, destructors), longer than some commands' real work. Only for commands whose
    output is stdout/stderr alone: atexit handlers do not run.
    """
    global _fast_exit
    _fast_exit = True


def fast_exit_requested() -> bool:
    return _fast_exit
