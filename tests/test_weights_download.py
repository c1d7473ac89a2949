"""Downloads against a real HTTP server on 127.0.0.1: verify, resume, refuse, lock, offline, TOFU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from http_server import fake_h5, fake_keras, md5, sha256

from varec_cli.errors import ModelError, OfflineError, WeightsError
from varec_cli.weights import cache, download
from varec_cli.weights.download import DigestMismatchError, DownloadError
from varec_cli.weights.resolve import (
    backbone_weights_path,
    default_model_name,
    ensure_cached,
    models_table,
    resolve_model_path,
)

KERAS = fake_keras()
H5 = fake_h5(300_000)


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """Write a user registry (VAREC_REGISTRY) from TOML text."""

    def write(text: str) -> Path:
        path = tmp_path / "user-models.toml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        monkeypatch.setenv("VAREC_REGISTRY", str(path))
        return path

    return write


def leftovers() -> list[str]:
    """Temp files or unpack folders left in the cache."""
    base = cache.models_dir()
    if not base.exists():
        return []
    return [str(p) for p in base.rglob("*") if p.name.startswith((".download-", ".unpack-", ".old-"))]


def test_good_download_is_verified_cached_and_reused(server, registry):
    server.files["/m/toy.keras"] = KERAS
    registry(f"""
        [models.toy]
        url = "{server.url('/m/toy.keras')}"
        sha256 = "{sha256(KERAS)}"
    """)
    stale = cache.entry_dir("toy") / ".download-killed.part"  # left by a killed process
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    seen = []
    path = resolve_model_path("toy", progress=lambda done, total: seen.append((done, total)))
    assert not stale.exists()
    assert path.read_bytes() == KERAS
    assert path.name == "toy.keras" and path.parent == cache.entry_dir("toy")
    assert seen[-1] == (len(KERAS), len(KERAS))
    record = cache.get_record("toy")
    assert record["verified"] == "published sha256" and record["download_sha256"] == sha256(KERAS)
    # second use: from the cache, no request
    assert resolve_model_path("toy") == path
    assert len(server.requests_for("/m/toy.keras")) == 1
    assert leftovers() == []


def test_wrong_digest_keeps_nothing(server, registry):
    server.files["/m/toy.keras"] = KERAS
    wrong = sha256(b"something else")
    registry(f"""
        [models.toy]
        url = "{server.url('/m/toy.keras')}"
        sha256 = "{wrong}"
    """)
    with pytest.raises(DigestMismatchError) as info:
        resolve_model_path("toy")
    message = str(info.value)
    assert wrong in message and sha256(KERAS) in message and "nothing was kept" in message
    assert cache.get_record("toy") is None and not cache.entry_dir("toy").exists()


def test_published_md5_is_checked(server, registry):
    server.files["/w/x_notop.h5"] = H5
    registry(f"""
        [models.backbone-mobilenet_v2]
        url = "{server.url('/w/x_notop.h5')}"
        md5 = "{md5(b'other')}"
    """)
    with pytest.raises(DigestMismatchError, match="published md5"):
        backbone_weights_path("mobilenet_v2")


def test_404_is_one_line_naming_url_and_way_out(server, registry):
    registry(f"""
        [models.toy]
        url = "{server.url('/missing.keras')}"
        sha256 = "{sha256(KERAS)}"
    """)
    with pytest.raises(DownloadError) as info:
        resolve_model_path("toy")
    message = str(info.value)
    assert "\n" not in message
    assert server.url("/missing.keras") in message and "HTTP 404" in message
    assert "give its path to --model" in message and "VAREC_REGISTRY" in message
    assert len(server.requests_for("/missing.keras")) == 1  # a 404 is not retried
    assert leftovers() == []


def test_connection_refused_names_the_url(registry, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(download, "BACKOFF_S", 0.01)
    url = f"http://127.0.0.1:{port}/toy.keras"
    registry(f"""
        [models.toy]
        url = "{url}"
    """)
    with pytest.raises(DownloadError, match="connection refused") as info:
        resolve_model_path("toy")
    assert url in str(info.value)


def test_dropped_connection_resumes_with_range(server, registry):
    server.files["/w/big_notop.h5"] = H5
    server.drop_first["/w/big_notop.h5"] = 1
    registry(f"""
        [models.backbone-resnet50]
        url = "{server.url('/w/big_notop.h5')}"
        md5 = "{md5(H5)}"
    """)
    path = backbone_weights_path("resnet50")
    assert path.read_bytes() == H5
    ranges = server.requests_for("/w/big_notop.h5")
    assert ranges[0] is None and ranges[1] is not None
    assert ranges[1] == f"bytes={len(H5) // 2}-"
    assert server.if_ranges_for("/w/big_notop.h5") == [None, server.etag(H5)]  # only this version resumed
    assert leftovers() == []


def _weights_cut_once(server, registry) -> str:
    """H5 served as entry `weights` (no published digest: the first download's sha256 becomes the
    trusted one), its first transfer cut halfway. Returns its path on the server."""
    where = "/w/big_notop.h5"
    server.files[where] = H5
    server.drop_first[where] = 1
    registry(f"""
        [models.weights]
        kind = "backbone"
        url = "{server.url(where)}"
    """)
    return where


def test_a_file_replaced_on_the_server_before_the_resume_comes_whole_not_spliced(server, registry):
    new = fake_h5(300_000, seed=7)  # same size, other bytes
    server.replace_after_cut[_weights_cut_once(server, registry)] = new
    path = ensure_cached("weights")
    assert path.read_bytes() == new
    assert cache.get_record("weights")["download_sha256"] == sha256(new)


def test_without_a_validator_a_dropped_transfer_starts_over(server, registry):
    server.no_validator.add(_weights_cut_once(server, registry))
    assert ensure_cached("weights").read_bytes() == H5
    assert server.requests_for("/w/big_notop.h5") == [None, None]  # no Range it could not trust


def test_a_server_that_trickles_bytes_is_given_up_on_and_a_slow_one_is_not(server, tmp_path):
    """A byte now and then kept every read within its timeout, so a download from a server that trickled
    never ended. A span of the read timeout that brings under STALL_BYTES is a stall (retried, as a
    dropped connection is); a slow transfer that keeps coming is left to finish."""
    server.files["/w.h5"] = data = fake_h5(6_000)
    server.chunk_bytes, server.delay_s = 100, 0.1  # 1 kB/s: each read is answered within 0.1 s
    with pytest.raises(DownloadError) as failed:
        download.fetch_to_temp([server.url("/w.h5")], tmp_path, what="w", retries=1, backoff=0.01, timeout=(5, 0.5))
    assert str(failed.value).startswith(f"cannot download w from {server.url('/w.h5')}: the transfer stalled (under 1024 bytes in 0.5 s)")
    assert len(server.requests_for("/w.h5")) == 2 and server.log[-1][1] is not None  # the retry resumed
    server.chunk_bytes = 1000  # 10 kB/s
    fetched = download.fetch_to_temp([server.url("/w.h5")], tmp_path, what="w", timeout=(5, 0.5))
    assert fetched.path.read_bytes() == data


def test_server_ignoring_range_restarts_cleanly(server, registry):
    server.files["/w/big_notop.h5"] = H5
    server.drop_first["/w/big_notop.h5"] = 1
    server.ignore_range.add("/w/big_notop.h5")
    registry(f"""
        [models.backbone-resnet50]
        url = "{server.url('/w/big_notop.h5')}"
        md5 = "{md5(H5)}"
    """)
    path = backbone_weights_path("resnet50")
    assert path.read_bytes() == H5  # not the first half twice
    assert len(server.requests_for("/w/big_notop.h5")) == 2


def test_server_compressing_anyway_is_decoded(server, registry):
    server.files["/m/toy.keras"] = KERAS
    server.gzip_encode.add("/m/toy.keras")
    registry(f"""
        [models.toy]
        url = "{server.url('/m/toy.keras')}"
        sha256 = "{sha256(KERAS)}"
    """)
    assert resolve_model_path("toy").read_bytes() == KERAS


def test_mirror_used_when_first_url_fails(server, registry):
    server.files["/mirror/toy.keras"] = KERAS
    registry(f"""
        [models.toy]
        urls = ["{server.url('/gone/missing.keras')}", "{server.url('/mirror/toy.keras')}"]
        sha256 = "{sha256(KERAS)}"
    """)
    path = resolve_model_path("toy")
    assert path.read_bytes() == KERAS and path.name == "toy.keras"  # named after where it came from
    assert cache.get_record("toy")["url"].endswith("/mirror/toy.keras")
    # fetched again (--force) from a first mirror that is back: one copy stays, under its new name
    server.files["/gone/missing.keras"] = KERAS
    again = ensure_cached("toy", force=True)
    assert again.name == "missing.keras" and [p.name for p in again.parent.iterdir() if p.name != cache.ENTRY_MARK] == ["missing.keras"]


def test_every_mirror_that_serves_other_bytes_is_named(server, registry):
    server.files["/a/toy.keras"] = KERAS + b"a"
    server.files["/b/toy.keras"] = KERAS + b"b"
    registry(f"""
        [models.toy]
        urls = ["{server.url('/a/toy.keras')}", "{server.url('/b/toy.keras')}"]
        sha256 = "{sha256(KERAS)}"
    """)
    with pytest.raises(DownloadError) as raised:
        resolve_model_path("toy")
    message = str(raised.value)
    assert "any of its 2 URLs (toy" in message  # no empty reason in front
    for name, data in (("/a/toy.keras", KERAS + b"a"), ("/b/toy.keras", KERAS + b"b")):
        assert f"the file from {server.url(name)} does not match" in message and sha256(data) in message
    assert cache.get_record("toy") is None


def test_not_enough_disk_space_fails_before_downloading(server, registry):
    server.files["/m/toy.keras"] = KERAS
    registry(f"""
        [models.toy]
        url = "{server.url('/m/toy.keras')}"
        bytes = 1000000000000000
    """)
    with pytest.raises(WeightsError, match=r"not enough free disk space.*1000\.0 TB"):
        resolve_model_path("toy")
    assert server.requests_for("/m/toy.keras") == []


def test_a_small_file_fits_on_a_nearly_full_disk(server, registry, monkeypatch):
    """The room asked for beyond the file is the file's size again, up to 64 MiB: a model of a few KB
    is fetched with 10 MiB free, one declared at 6 MiB is refused (12 MiB asked for)."""
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: real(path)._replace(free=10 << 20))
    server.files["/m/small.keras"] = KERAS
    server.files["/m/big.keras"] = KERAS
    registry(f"""
        [models.small]
        url = "{server.url('/m/small.keras')}"
        bytes = {len(KERAS)}

        [models.big]
        url = "{server.url('/m/big.keras')}"
        bytes = {6 << 20}
    """)
    assert resolve_model_path("small").read_bytes() == KERAS
    with pytest.raises(WeightsError, match=r"not enough free disk space.*need about 12\.6 MB, 10\.5 MB free"):
        resolve_model_path("big")
    assert server.requests_for("/m/big.keras") == []


def test_offline_uncached_fails_at_once_and_cached_works(server, registry, monkeypatch):
    server.files["/m/toy.keras"] = KERAS
    registry(f"""
        [models.toy]
        url = "{server.url('/m/toy.keras')}"
        sha256 = "{sha256(KERAS)}"
    """)
    monkeypatch.setenv("VAREC_OFFLINE", "1")
    with pytest.raises(OfflineError, match="offline mode"):
        resolve_model_path("toy")
    with pytest.raises(OfflineError, match="backbone mobilenet_v2"):
        backbone_weights_path("mobilenet_v2")
    assert server.log == []

    monkeypatch.delenv("VAREC_OFFLINE")
    path = resolve_model_path("toy")
    monkeypatch.setenv("VAREC_OFFLINE", "1")
    assert resolve_model_path("toy") == path
    assert len(server.log) == 1
    with pytest.raises(OfflineError, match="toy is cached, but fetching it again .--force. needs the network"):
        ensure_cached("toy", force=True)
    assert len(server.log) == 1 and path.exists()


def test_trust_on_first_use_then_tampering_detected(server, registry):
    server.files["/w/m_notop.h5"] = H5
    registry(f"""
        [models.backbone-mobilenet_v2]
        url = "{server.url('/w/m_notop.h5')}"
    """)
    assert next(r for r in models_table() if r["name"] == "backbone-mobilenet_v2")["digest"] == "on first use"
    path = backbone_weights_path("mobilenet_v2")
    record = cache.get_record("backbone-mobilenet_v2")
    assert record["verified"] == "recorded" and record["download_sha256"] == sha256(H5)
    row = next(r for r in models_table() if r["name"] == "backbone-mobilenet_v2")
    assert row["digest"] == "recorded" and row["sha256"] == sha256(H5) and row["cached"]

    # the recorded digest is checked on every use
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="changed after it was verified.*`varec download --force backbone-mobilenet_v2`"):
        backbone_weights_path("mobilenet_v2")

    # and a forced re-download must match the first download, not whatever is served now
    server.files["/w/m_notop.h5"] = fake_h5(300_000, seed=99)
    with pytest.raises(DigestMismatchError, match="recorded at its first download"):
        ensure_cached("backbone-mobilenet_v2", force=True)
    server.files["/w/m_notop.h5"] = H5
    assert ensure_cached("backbone-mobilenet_v2", force=True).read_bytes() == H5


def test_html_error_page_is_not_trusted(server, registry):
    server.files["/w/m_notop.h5"] = b"<html>please log in</html>"
    registry(f"""
        [models.backbone-mobilenet_v2]
        url = "{server.url('/w/m_notop.h5')}"
    """)
    with pytest.raises(WeightsError, match="not an HDF5"):
        backbone_weights_path("mobilenet_v2")
    assert cache.get_record("backbone-mobilenet_v2") is None
    assert not cache.entry_dir("backbone-mobilenet_v2").exists()  # nothing for `cache list` to show


def test_a_mirror_serving_an_html_page_is_skipped(server, registry):
    server.files["/login/toy.keras"] = b"<!DOCTYPE html><html>please log in</html>"
    server.files["/mirror/toy.keras"] = KERAS
    registry(f"""
        [models.toy]
        urls = ["{server.url('/login/toy.keras')}", "{server.url('/mirror/toy.keras')}"]
    """)
    assert resolve_model_path("toy").read_bytes() == KERAS
    assert cache.get_record("toy")["url"].endswith("/mirror/toy.keras")
    assert cache.get_record("toy")["download_sha256"] == sha256(KERAS)  # the page's digest is not trusted


def test_an_html_page_is_not_taken_for_a_label_list(server, registry):
    server.files["/labels.txt"] = b"<!DOCTYPE html>\n<html><body>Not found</body></html>\n"
    registry(f"""
        [models.some-labels]
        kind = "labels"
        url = "{server.url('/labels.txt')}"
    """)
    with pytest.raises(WeightsError, match="is an HTML page, not a label list"):
        ensure_cached("some-labels")
    assert cache.get_record("some-labels") is None


def test_a_changed_published_digest_is_not_listed_as_cached(server, registry):
    server.files["/m/toy.keras"] = KERAS
    entry = f"""
        [models.toy]
        url = "{server.url('/m/toy.keras')}"
        sha256 = "{{}}"
    """
    registry(entry.format(sha256(KERAS)))
    ensure_cached("toy")
    assert next(r for r in models_table() if r["name"] == "toy")["cached"]
    registry(entry.format("0" * 64))  # the registry now vouches for other bytes
    assert not next(r for r in models_table() if r["name"] == "toy")["cached"]


def test_a_registry_entry_named_like_a_file_is_usable(server, registry):
    server.files["/m/toy.keras"] = KERAS
    registry(f"""
        [models."kitchen.keras"]
        url = "{server.url('/m/toy.keras')}"
    """)
    assert resolve_model_path("kitchen.keras").read_bytes() == KERAS
    with pytest.raises(ModelError, match="other.keras: no such model file"):
        resolve_model_path("other.keras")


def test_paths_names_and_defaults(tmp_path, registry):
    model = tmp_path / "mine.keras"
    model.write_bytes(KERAS)
    assert resolve_model_path(str(model)) == model
    with pytest.raises(ModelError, match="no such model file"):
        resolve_model_path(str(tmp_path / "nope.keras"))
    with pytest.raises(WeightsError, match="did you mean movinet-a0-base"):
        resolve_model_path("movinet-a0-bse")
    with pytest.raises(WeightsError, match="not a model that classifies"):
        resolve_model_path("backbone-resnet50")
    assert default_model_name("predict") == "movinet-a0-base"
    assert default_model_name("stream") == "movinet-a0-stream"
    registry("""
        [defaults]
        predict = "movinet-a2-base"
    """)
    assert default_model_name("predict") == "movinet-a2-base"
    assert default_model_name("stream") == "movinet-a0-stream"


def test_file_url_works_offline(tmp_path, registry, monkeypatch):
    local = tmp_path / "copy_notop.h5"
    local.write_bytes(H5)
    registry(f"""
        [models.backbone-efficientnetv2-b0]
        url = "{local.as_uri()}"
        md5 = "{md5(H5)}"
    """)
    monkeypatch.setenv("VAREC_OFFLINE", "1")
    assert backbone_weights_path("efficientnetv2-b0").read_bytes() == H5


CHILD = """
import json, sys
from varec_cli.weights.resolve import resolve_model_path
path = resolve_model_path("toy")
print(json.dumps({"path": str(path)}))
"""


def test_two_processes_fetching_one_model_both_get_a_good_file(server, registry):
    server.files["/m/toy.keras"] = KERAS
    server.delay_s = 0.02  # ~0.2 s per transfer, so the two processes overlap
    registry(f"""
        [models.toy]
        url = "{server.url('/m/toy.keras')}"
        sha256 = "{sha256(KERAS)}"
    """)
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    procs = [
        subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
    paths_seen = {json.loads(out)["path"] for out, _ in results}
    assert len(paths_seen) == 1
    path = Path(paths_seen.pop())
    assert sha256(path.read_bytes()) == sha256(KERAS)
    assert len(server.requests_for("/m/toy.keras")) == 1  # the second waited for the first
    assert leftovers() == []
