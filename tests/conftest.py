import os

import pytest

# Quiet TensorFlow's C++ logging in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    """Every test gets its own cache and data dirs, and never the user's registry or debug mode."""
    root = tmp_path_factory.mktemp("varec-env")
    monkeypatch.setenv("VAREC_CACHE_DIR", str(root / "cache"))
    monkeypatch.setenv("VAREC_DATA_DIR", str(root / "data"))
    monkeypatch.delenv("VAREC_REGISTRY", raising=False)
    monkeypatch.delenv("VAREC_OFFLINE", raising=False)
    monkeypatch.delenv("VAREC_DEBUG", raising=False)
    return root
