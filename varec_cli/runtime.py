"""Importing the heavy frameworks quietly, in one place."""

from __future__ import annotations

import os

# Keras 3's backends that need a package of that name; "numpy" needs none beyond NumPy.
_KERAS_BACKENDS = frozenset({"tensorflow", "jax", "torch", "openvino"})


def default_to_tensorflow_backend() -> None:
    """Run Keras on TensorFlow unless KERAS_BACKEND names another backend.

    For the `varec` command: a backend in Keras' own config file (~/.keras/keras.json, written for
    other work) would otherwise decide, and varec's environment may not have it. TensorFlow is
    installed with varec, and its speed-ups (frozen graphs, XLA stream steps) need it. Does nothing
    once Keras is imported.
    """
    import sys

    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def import_keras():
    """Import Keras with TensorFlow's C++ start-up chatter silenced unless VAREC_DEBUG=1.

    A backend Keras is set to but cannot import is a VarecError, not a traceback."""
    import sys

    from varec_cli import paths

    if "keras" in sys.modules:
        return sys.modules["keras"]
    if not paths.debug():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    named = os.environ.get("KERAS_BACKEND")
    if named and named not in _KERAS_BACKENDS | {"numpy"} and not paths.debug():
        from varec_cli.errors import VarecError

        raise VarecError(
            f"KERAS_BACKEND={named} is not a Keras backend: use tensorflow, jax, torch, numpy or openvino, "
            "or unset it (varec then uses TensorFlow)"
        )
    from varec_cli.video.quiet import stderr_fd_silenced

    # TensorFlow's C++ start-up lines (oneDNN, CUDA stubs) ignore TF_CPP_MIN_LOG_LEVEL.
    try:
        with stderr_fd_silenced():
            import keras
    except ImportError as missing:
        backend = missing.name
        if backend not in _KERAS_BACKENDS or paths.debug():
            raise
        from varec_cli.errors import VarecError

        if os.environ.get("KERAS_BACKEND"):
            where, instead = f"KERAS_BACKEND={backend}", "or unset KERAS_BACKEND (varec then uses TensorFlow)"
        else:
            where, instead = "Keras' config file, keras.json", "or set KERAS_BACKEND=tensorflow"
        raise VarecError(
            f"Keras is set to the {backend} backend ({where}), but {backend} is not installed beside varec: "
            f"install it there (pipx inject varec {backend}), {instead}"
        ) from None

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
