"""The shipped registry and VAREC_REGISTRY overrides."""

from __future__ import annotations

import textwrap

import pytest

from varec_cli.errors import WeightsError
from varec_cli.weights.registry import load_registry


def user_registry(tmp_path, monkeypatch, text: str):
    path = tmp_path / "models.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    monkeypatch.setenv("VAREC_REGISTRY", str(path))
    return path


def test_shipped_entries_and_published_digests(monkeypatch):
    # The published URLs below are compared as text with what the shipped registry says: nothing is
    # fetched here. Offline mode refuses any download before a socket opens, and conftest.loopback_only
    # refuses any connection off this machine.
    monkeypatch.setenv("VAREC_OFFLINE", "1")
    reg = load_registry()
    assert reg.defaults == {"predict": "movinet-a0-base", "stream": "movinet-a0-stream"}
    keras_apps = "https://storage.googleapis.com/tensorflow/keras-applications/"
    expected = {
        "backbone-mobilenet_v2": (
            keras_apps + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
            None,
        ),
        "backbone-resnet50": (
            keras_apps + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "4d473c1dd8becc155b73f8504c6f6626",
        ),
        "backbone-resnet152v2": (
            keras_apps + "resnet/resnet152v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
            "ed17cf2e0169df9d443503ef94b23b33",
        ),
        "backbone-efficientnetv2-b0": (
            keras_apps + "efficientnet_v2/efficientnetv2-b0_notop.h5",
            "893217f2bb855e2983157299931e43ff",
        ),
    }
    for name, (url, md5) in expected.items():
        entry = reg.get(name)
        assert entry.kind == "backbone" and entry.url == url
        assert entry.md5 == md5 and entry.sha256 is None  # Keras publishes md5 (or nothing)
    for variant, size in (("a0", 172), ("a2", 224)):
        for mode in ("base", "stream"):
            entry = reg.get(f"movinet-{variant}-{mode}")
            assert entry.kind == "savedmodel" and entry.size == size and entry.classes == 600
            assert entry.url == (
                f"https://tfhub.dev/tensorflow/movinet/{variant}/{mode}/kinetics-600/classification/3"
                "?tf-hub-format=compressed"
            )
            assert entry.stream is (mode == "stream") and entry.fps == 5.0 and entry.frames == 50
            assert entry.labels == "kinetics600-labels"
            assert entry.effective_signature()["input"] == "image"
    labels = reg.get("kinetics600-labels")
    assert labels.kind == "labels" and labels.classes == 600
    assert labels.url.startswith("https://raw.githubusercontent.com/tensorflow/models/")
    assert "72.3%" in reg.get("movinet-a0-base").description
    assert "78.6%" in reg.get("movinet-a2-base").description


def test_user_entry_with_url_and_sha256_is_a_keras_model(tmp_path, monkeypatch):
    user_registry(tmp_path, monkeypatch, f"""
        [models.my-model]
        url = "https://example.org/models/mine.keras"
        sha256 = "{'ab' * 32}"
    """)
    entry = load_registry().get("my-model")
    assert entry.kind == "keras" and entry.sha256 == "ab" * 32 and entry.cache_filename() == "mine.keras"
    assert entry.origin.endswith("models.toml")


def test_user_override_of_url_keeps_shipped_fields(tmp_path, monkeypatch):
    user_registry(tmp_path, monkeypatch, """
        [models.backbone-resnet50]
        url = "https://mirror.example/resnet50_notop.h5"
    """)
    entry = load_registry().get("backbone-resnet50")
    assert entry.url == "https://mirror.example/resnet50_notop.h5" and entry.cache_filename() == "resnet50_notop.h5"
    assert entry.md5 == "4d473c1dd8becc155b73f8504c6f6626" and entry.kind == "backbone"


@pytest.mark.parametrize(
    "text, message",
    [
        ("[models.x\nurl = 1", "not valid TOML"),
        ('[models.x]\nurl = "https://e/x.keras"\nsha265 = "00"', "unknown key 'sha265'"),
        ('[models.x]\nurl = "https://e/x.keras"\nsha256 = "abc"', "64 hex digits"),
        ('[models.x]\nurl = "https://e/x.keras"\nmd5 = "abc"', "32 hex digits"),
        ('[models.x]\nurl = "ftp://e/x.keras"', "not an http(s):// or file:// URL"),
        ('[models.x]\nurl = "file://relative/x.keras"', "names the host 'relative'; a file URL takes an absolute path"),
        ('[models.x]\nurl = "file:relative/x.keras"', "is relative; a file URL takes an absolute path"),
        ('[models.x]\nurl = "http://[::1/x.keras"', "not an http(s):// or file:// URL"),
        ('[models.x]\nurl = "http://e:abc/x.keras"', "not an http(s):// or file:// URL"),
        ('[models.x]\nurl = "http://:80/x.keras"', "not an http(s):// or file:// URL"),
        ('[models.x]\nkind = "movie"\nurl = "https://e/x"', "one of keras"),
        ('[models.x]\nsha256 = "' + "0" * 64 + '"', "has no url"),
        ('[defaults]\npredict = "nope"', "is not a [models.*] entry"),
        ('[defaults]\npredict = "backbone-resnet50"', "not a classifier"),
        ('[models.x]\nurl = "https://e/x"\nlabels = "missing-labels"', "names no labels entry"),
        # the user's file changes an entry the shipped file refers to: the user's file is named too
        ('[models.movinet-a0-base]\nkind = "labels"\nurl = "file:///x.txt"', "is a labels entry, not a classifier"),
        ('[models.kinetics600-labels]\nkind = "keras"\nurl = "file:///x.keras"', "names a keras entry, not a labels entry"),
        ('[model.x]\nurl = "https://e/x"', "unknown table 'model'"),
        ('[models.x]\nurl = "https://e/x"\nsignature = { ouptut = "y" }', "unknown key 'ouptut' (did you mean 'output'?)"),
        ('[models.x]\nurl = "https://e/x"\nsignature = { input_range = "x" }', "input_range must be [low, high]"),
        ('[models.x]\nurl = "https://e/x"\nsignature = { input_range = [1, 0] }', "input_range must be [low, high]"),
        ('[models.x]\nurl = "https://e/x"\nsignature = { input_dtype = "float99" }', 'input_dtype must be "float32"'),
        ('[models.x]\nurl = "https://e/x"\nsignature = { output_is_logits = "yes" }', "output_is_logits must be true or false"),
        ('[models.x]\nurl = "https://e/x"\nsignature = { name = 3 }', "signature.name must be the name of a signature"),
        ('[models.x]\nurl = "https://e/x"\nfps = inf', "fps must be a positive number"),
        ('[models.x]\nurl = "https://e/x"\nsignature = { input_range = [0, inf] }', "two finite numbers"),
    ],
)
def test_malformed_user_registry_is_a_one_line_error(tmp_path, monkeypatch, text, message):
    path = user_registry(tmp_path, monkeypatch, text)
    with pytest.raises(WeightsError) as info:
        load_registry()
    assert message in str(info.value)
    assert str(path) in str(info.value)  # the user's file, not the shipped one, is named


def test_registry_that_is_not_utf8_is_a_one_line_error(tmp_path, monkeypatch):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[models.x]\ndescription = "café"\nurl = "https://e/x.keras"\n'.encode("latin-1"))
    monkeypatch.setenv("VAREC_REGISTRY", str(path))
    with pytest.raises(WeightsError, match="not valid TOML: the file is not UTF-8 text"):
        load_registry()


def test_missing_user_registry_file(tmp_path, monkeypatch):
    monkeypatch.setenv("VAREC_REGISTRY", str(tmp_path / "absent.toml"))
    with pytest.raises(WeightsError, match="no such file"):
        load_registry()


def test_unknown_name_suggests_close_matches():
    with pytest.raises(WeightsError, match="did you mean movinet-a2-stream"):
        load_registry().get("movinet-a2-straem")
    with pytest.raises(WeightsError, match="varec models"):
        load_registry().get("zzzzzz")


def test_cache_file_names_keep_the_suffix_loaders_need(tmp_path, monkeypatch):
    user_registry(tmp_path, monkeypatch, """
        [models.backbone-resnet50]
        url = "https://mirror.example/get?id=resnet50"

        [models.mine]
        url = "https://example.org/download/model"
    """)
    reg = load_registry()
    assert reg.get("backbone-resnet50").cache_filename().endswith(".h5")
    assert reg.get("mine").cache_filename() == "model.keras"
    assert reg.get("movinet-a0-base").cache_filename() == "model.tar.gz"


def test_the_registry_example_in_models_help_loads(tmp_path, monkeypatch):
    """A user copies it from `varec models --help` into a file: it must load as it stands."""
    from varec_cli.commands.models import REGISTRY_HELP

    toml_lines = [line[2:] for line in REGISTRY_HELP.splitlines() if line.startswith("  ")]
    path = user_registry(tmp_path, monkeypatch, "\n".join(toml_lines))
    registry = load_registry()
    assert registry.get("kitchen").kind == "keras" and registry.default("predict") == "kitchen"
    assert registry.get("movinet-a0-base").url == "file:///srv/models/a0-base.tar.gz"
    assert registry.get("movinet-a0-base").origin == str(path)
