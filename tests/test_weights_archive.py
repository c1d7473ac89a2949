"""Archives: SavedModel tar.gz installed from a local server; unsafe archives refused."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from http_server import fake_savedmodel_tar, labels_text, make_tar_gz, sha256

from varec_cli.errors import WeightsError
from varec_cli.weights import cache
from varec_cli.weights.archive import SAVEDMODEL_METADATA, UnsafeArchiveError, install_savedmodel, safe_extract
from varec_cli.weights.resolve import resolve_model_path


def use_registry(tmp_path: Path, monkeypatch, text: str) -> None:
    path = tmp_path / "user-models.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    monkeypatch.setenv("VAREC_REGISTRY", str(path))


@pytest.mark.parametrize("prefix", ["./", "movinet_a0_base/"])
def test_movinet_style_savedmodel_installed_with_metadata(server, tmp_path, monkeypatch, prefix):
    archive = fake_savedmodel_tar(prefix)
    server.files["/tfhub/a0/base"] = archive
    server.files["/labels.txt"] = labels_text(5)
    use_registry(
        tmp_path,
        monkeypatch,
        f"""
        [models.toy-labels]
        kind = "labels"
        url = "{server.url('/labels.txt')}"
        classes = 5

        [models.toy-movinet]
        kind = "savedmodel"
        url = "{server.url('/tfhub/a0/base')}?tf-hub-format=compressed"
        sha256 = "{sha256(archive)}"
        labels = "toy-labels"
        classes = 5
        frames = 50
        size = 172
        fps = 5.0
        """,
    )
    path = resolve_model_path("toy-movinet")
    assert path == cache.entry_dir("toy-movinet") / "savedmodel"
    assert (path / "saved_model.pb").is_file() and (path / "variables" / "variables.index").is_file()
    meta = json.loads((path / SAVEDMODEL_METADATA).read_text())
    assert meta["labels"] == [f"action {i}" for i in range(5)]
    assert meta["classes"] == 5 and meta["frames"] == 50 and meta["size"] == [172, 172] and meta["fps"] == 5.0
    assert meta["stream"] is False
    assert meta["signature"]["name"] == "serving_default"
    assert meta["signature"]["input"] == "image" and meta["signature"]["output"] == "classifier_head"
    assert meta["signature"]["input_range"] == [0.0, 1.0] and meta["signature"]["output_is_logits"] is True
    # the archive itself is not kept; the labels entry is cached too (trusted on first use)
    assert not list(cache.entry_dir("toy-movinet").glob("*.tar.gz"))
    assert cache.get_record("toy-labels")["verified"] == "recorded"
    assert cache.get_record("toy-movinet")["verified"] == "published sha256"
    # a second resolve re-verifies the unpacked tree from its recorded digest, no network
    assert resolve_model_path("toy-movinet") == path
    assert len(server.requests_for("/tfhub/a0/base")) == 1
    (path / "variables" / "variables.index").write_bytes(b"tampered")
    with pytest.raises(WeightsError, match="changed after it was verified"):
        resolve_model_path("toy-movinet")


def test_stream_entry_records_state_signature(server, tmp_path, monkeypatch):
    server.files["/s"] = fake_savedmodel_tar()
    use_registry(
        tmp_path,
        monkeypatch,
        f"""
        [models.toy-stream]
        kind = "savedmodel"
        url = "{server.url('/s')}"
        labels = ["a", "b", "c"]
        frames = 50
        size = 172
        fps = 5
        stream = true
        """,
    )
    meta = json.loads((resolve_model_path("toy-stream") / SAVEDMODEL_METADATA).read_text())
    assert meta["stream"] is True and meta["signature"]["states"] == "init_states"
    assert meta["labels"] == ["a", "b", "c"] and meta["classes"] == 3


def test_archive_without_saved_model_is_refused(server, tmp_path, monkeypatch):
    server.files["/x"] = make_tar_gz([("readme.txt", b"hello")])
    use_registry(tmp_path, monkeypatch, f"""
        [models.x]
        kind = "savedmodel"
        url = "{server.url('/x')}"
        labels = ["a"]
        """)
    with pytest.raises(WeightsError, match=re.escape(f"x (from {server.url('/x')}): no saved_model.pb")):
        resolve_model_path("x")
    assert cache.get_record("x") is None
    assert not (cache.entry_dir("x") / "savedmodel").exists()


EVIL = [
    ("parent", [("../evil.txt", b"x")]),
    ("deep-parent", [("ok/../../evil.txt", b"x")]),
    ("absolute", [("/tmp/varec-evil-abs.txt", b"x")]),
    ("symlink-out", [("link", ("sym", "/etc")), ("link/evil.txt", b"x")]),
    ("symlink-dotdot", [("link", ("sym", "../outside"))]),
    ("hardlink-out", [("h", ("hard", "../../etc/passwd"))]),
    ("hardlink-unknown", [("h", ("hard", "not/in/archive"))]),
    ("device", [("dev", ("dev", None))]),
    ("fifo", [("pipe", ("fifo", None))]),
]


@pytest.mark.parametrize("members", [m for _, m in EVIL], ids=[i for i, _ in EVIL])
def test_unsafe_members_refused_and_nothing_written(tmp_path, members):
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(make_tar_gz([("saved_model.pb", b"pb")] + members))
    dest = tmp_path / "a" / "b" / "dest"
    dest.mkdir(parents=True)
    with pytest.raises(UnsafeArchiveError, match="refusing to unpack"):
        safe_extract(archive, dest)
    assert list(dest.iterdir()) == []  # checked before anything is written
    assert not (tmp_path / "a" / "b" / "evil.txt").exists() and not (tmp_path / "a" / "evil.txt").exists()
    assert not Path("/tmp/varec-evil-abs.txt").exists()


def test_traversal_savedmodel_from_server_leaves_cache_clean(server, tmp_path, monkeypatch):
    evil = make_tar_gz([("saved_model.pb", b"pb"), ("../../escaped.txt", b"x")])
    server.files["/evil"] = evil
    use_registry(tmp_path, monkeypatch, f"""
        [models.evil]
        kind = "savedmodel"
        url = "{server.url('/evil')}"
        labels = ["a"]
        """)
    with pytest.raises(UnsafeArchiveError):
        resolve_model_path("evil")
    assert not (cache.models_dir() / "escaped.txt").exists() and not (cache.root() / "escaped.txt").exists()
    assert not cache.entry_dir("evil").exists() and cache.get_record("evil") is None


def test_inside_links_are_allowed(tmp_path):
    archive = tmp_path / "ok.tar.gz"
    archive.write_bytes(
        make_tar_gz(
            [
                ("m", None),
                ("m/saved_model.pb", b"pb"),
                ("m/alias.pb", ("sym", "saved_model.pb")),
                ("m/copy.pb", ("hard", "m/saved_model.pb")),
            ]
        )
    )
    target = tmp_path / "installed"
    install_savedmodel(archive, target, {"labels": ["a"]})
    assert (target / "saved_model.pb").read_bytes() == b"pb"
    assert (target / "copy.pb").read_bytes() == b"pb" and not (target / "copy.pb").is_symlink()
    assert (target / "alias.pb").is_symlink() and (target / "alias.pb").read_bytes() == b"pb"
    assert json.loads((target / SAVEDMODEL_METADATA).read_text()) == {"labels": ["a"]}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".unpack-")] == []


def test_not_a_tar_archive(tmp_path):
    archive = tmp_path / "junk.tar.gz"
    archive.write_bytes(b"<html>not found</html>")
    dest = tmp_path / "d"
    dest.mkdir()
    with pytest.raises(WeightsError, match=r"^junk.tar.gz: not a tar archive \(plain, gz, bz2 or xz\)$"):
        safe_extract(archive, dest)


def test_a_savedmodel_download_that_is_no_archive_names_the_model_and_url(server, tmp_path, monkeypatch):
    server.files["/page"] = b"<html>a sign-in page, not a model</html>"
    use_registry(tmp_path, monkeypatch, f"""
        [models.page]
        kind = "savedmodel"
        url = "{server.url('/page')}"
        labels = ["a"]
        """)
    with pytest.raises(WeightsError) as page:
        resolve_model_path("page")
    assert str(page.value) == f"page (from {server.url('/page')}): not a tar archive (plain, gz, bz2 or xz); nothing was kept"
