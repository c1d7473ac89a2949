"""`varec download`, `varec models`, `varec cache` through the real Typer app (conftest `cli`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import textwrap

import pytest
from http_server import fake_h5, fake_keras, fake_savedmodel_tar, labels_text, md5, sha256

from varec_cli.weights import cache
from varec_cli.weights.registry import load_registry

KERAS = fake_keras()


@pytest.fixture
def toy_registry(server, tmp_path, monkeypatch):
    server.files["/toy.keras"] = KERAS
    path = tmp_path / "models.toml"
    path.write_text(
        textwrap.dedent(f"""
            [models.toy]
            url = "{server.url('/toy.keras')}"
            sha256 = "{sha256(KERAS)}"
            description = "a toy model"

            [models.gone]
            url = "{server.url('/gone.keras')}"
        """),
        encoding="utf-8",
    )
    monkeypatch.setenv("VAREC_REGISTRY", str(path))
    return path


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_models_table_and_json(cli):
    result = cli("models")
    assert result.exit_code == 0, result.stderr
    assert "movinet-a0-base" in result.stdout and "default for predict: movinet-a0-base" in result.stdout
    assert "backbone-resnet50" in result.stdout and "published md5" in result.stdout
    rows = json.loads(cli("models", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["movinet-a2-stream"]["input"] == "50x224x224" and by_name["movinet-a2-stream"]["stream"] is True
    assert by_name["movinet-a0-base"]["classes"] == 600 and by_name["movinet-a0-base"]["cached"] is False
    assert by_name["backbone-mobilenet_v2"]["digest"] == "on first use"


def test_on_a_narrow_terminal_names_and_paths_are_whole(cli, toy_registry, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    table = cli("models").stdout
    assert max(len(line) for line in table.splitlines()) <= 80
    for name in ("backbone-efficientnetv2-b0", "movinet-a0-stream", "toy"):
        assert name in table
    assert "…" not in table and "cached" in table  # whole columns dropped, not cells cut
    assert cli("download", "toy").exit_code == 0
    monkeypatch.setenv("COLUMNS", "60")
    listing = cli("cache", "list").stdout
    path = str(cache.entry_dir("toy") / "toy.keras")
    assert len(path) > 30 and "…" not in listing
    folded = "".join(line.rstrip().rsplit(" ", 1)[-1] for line in listing.splitlines()[2:])
    assert path in folded


def test_models_counts_the_classes_of_inline_labels(cli, server, tmp_path, monkeypatch):
    registry = tmp_path / "inline.toml"
    registry.write_text(f'[models.inline]\nkind = "savedmodel"\nurl = "{server.url("/m")}"\nlabels = ["a", "b", "c"]\n')
    monkeypatch.setenv("VAREC_REGISTRY", str(registry))
    rows = {r["name"]: r for r in json.loads(cli("models", "--json").stdout)}
    assert rows["inline"]["classes"] == 3


def test_a_cached_copy_edited_since_it_was_verified_is_listed_as_changed(cli, toy_registry, server):
    assert cli("download", "toy").exit_code == 0
    path = cache.entry_dir("toy") / "toy.keras"
    with path.open("ab") as handle:
        handle.write(b"\0")
    rows = {r["name"]: r for r in json.loads(cli("models", "--json").stdout)}
    assert rows["toy"]["cached"] is False and rows["toy"]["changed_on_disk"] is True
    assert re.search(r"toy\s.*\schanged\s", cli("models").stdout)
    assert "changed since it was verified" in cli("cache", "list").stdout
    used = cli("info", "toy")
    assert used.exit_code == 1 and "changed after it was verified" in used.stderr  # what the listing warned of
    assert cli("download", "--force", "toy").exit_code == 0
    assert not any(r["changed_on_disk"] for r in json.loads(cli("models", "--json").stdout))


def test_offline_a_damaged_cached_copy_is_called_damaged_not_missing(cli, toy_registry, server, monkeypatch):
    """Offline, a cached copy changed since it was verified was said to be "not in the cache"."""
    assert cli("download", "toy").exit_code == 0
    published = toy_registry.read_text(encoding="utf-8").replace(server.url("/toy.keras"), "https://models.example.org/toy.keras")
    toy_registry.write_text(published, encoding="utf-8")  # as published: offline, nothing to fetch it from
    path = cache.entry_dir("toy") / "toy.keras"
    with path.open("ab") as handle:
        handle.write(b"\0")
    monkeypatch.setenv("VAREC_OFFLINE", "1")
    line = one_error_line(cli("info", "toy"))
    assert line.startswith(f"error: the cached toy at {path} changed after it was verified (expected sha256 ")
    assert line.endswith("fetch it again with `varec download --force toy` (which needs the network: unset VAREC_OFFLINE first)")
    assert "not in the cache" not in line
    (cache.models_dir() / "index.json").write_text("{ damaged")  # offline, what is wrong, and the repair
    line = one_error_line(cli("info", "toy"))
    assert line.startswith(f"error: cache index {cache.models_dir() / 'index.json'} is unreadable (") and line.endswith(
        "remove it or run `varec cache clear`"), line


def test_download_then_cache_list_and_clear(cli, toy_registry, server):
    import os

    umask = os.umask(0o022)
    try:
        result = cli("download", "toy")
    finally:
        os.umask(umask)
    assert result.exit_code == 0, result.stderr
    path = cache.entry_dir("toy") / "toy.keras"
    # readable as the umask allows (mkstemp alone would leave them 0600): a shared cache works
    assert path.stat().st_mode & 0o777 == 0o644 and cache.index_path().stat().st_mode & 0o777 == 0o644
    assert str(path) in result.stdout and "published sha256" in result.stdout
    assert "downloading toy" in result.stderr
    assert path.read_bytes() == KERAS
    rows = {r["name"]: r for r in json.loads(cli("models", "--json").stdout)}
    assert rows["toy"]["cached"] is True and rows["toy"]["path"] == str(path)

    # --force fetches again; without it the cache answers
    assert cli("download", "toy").exit_code == 0
    assert len(server.requests_for("/toy.keras")) == 1
    assert cli("download", "toy", "--force").exit_code == 0
    assert len(server.requests_for("/toy.keras")) == 2

    listing = cli("cache", "list")
    assert listing.exit_code == 0 and "toy" in listing.stdout and "published sha256" in listing.stdout
    assert str(path) in listing.stdout  # whole, in its column
    narrow = cli("cache", "list", env={"COLUMNS": "60"})  # too narrow for the path: on a line of its own
    assert "published sha256" in narrow.stdout and f"toy: {path}" in narrow.stdout.splitlines()

    cleared = cli("cache", "clear", "toy")
    assert cleared.exit_code == 0 and "removed toy" in cleared.stderr
    assert not path.exists() and cache.get_record("toy") is None
    assert "the cache is empty" in cli("cache", "list").stderr
    assert "not cached" in cli("cache", "clear", "toy").stderr


def test_a_name_whose_cache_folder_cannot_be_made_fails_alone_in_one_line(cli, toy_registry, server):
    """A cache that cannot take a name's download (read-only, or as here a file where its folder
    belongs) after its lock was taken: one error line naming the way out, and the other names of
    the same command are still fetched and listed."""
    cache.models_dir().mkdir(parents=True)
    (cache.models_dir() / "toy.lock").touch()  # left by an earlier fetch, as every fetch leaves one
    cache.entry_dir("toy").write_bytes(b"")
    server.files["/gone.keras"] = KERAS
    result = cli("download", "toy", "gone")
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(cache.entry_dir("toy")) in errors[0] and "VAREC_CACHE_DIR sets where the cache is" in errors[0]
    assert str(cache.entry_dir("gone") / "gone.keras") in result.stdout


def test_a_name_given_twice_is_fetched_and_listed_once(cli, toy_registry, server):
    result = cli("download", "toy", "toy")
    assert result.exit_code == 0, result.output
    path = cache.entry_dir("toy") / "toy.keras"
    assert [line.split()[:2] for line in result.stdout.splitlines()] == [["toy", str(path)]], result.stdout
    assert result.stderr.count("downloading toy") == 1
    assert len(server.requests_for("/toy.keras")) == 1
    assert path.read_bytes() == KERAS
    forced = cli("download", "--force", "toy", "toy")  # fetched again: once
    assert forced.exit_code == 0 and len(forced.stdout.splitlines()) == 1, forced.output
    assert len(server.requests_for("/toy.keras")) == 2


def test_on_a_terminal_the_result_line_comes_after_the_progress_bar(toy_registry, server):
    """With stdout and stderr on one terminal, a line printed while the bar is live is redrawn over."""
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "varec_cli", "download", "toy"], stdin=subprocess.DEVNULL,
                            stdout=follower, stderr=follower, env=env)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0, shown
    text = shown.decode("utf-8", "replace")
    result_at = text.find("published sha256")
    bar_done = text.rfind("\x1b[?25h")  # the bar shows the cursor again when it stops
    assert bar_done != -1, text  # a live bar was drawn
    assert result_at > bar_done, text


def test_a_cached_model_is_served_while_another_process_holds_its_lock(cli, toy_registry):
    """Reading a verified copy takes no lock, so a read-only or shared cache serves what it holds."""
    import threading

    from varec_cli.weights.resolve import ensure_cached

    assert cli("download", "toy").exit_code == 0
    got = []
    with cache.entry_lock("toy"):  # another process busy with toy (flock: a second open conflicts)
        reader = threading.Thread(target=lambda: got.append(ensure_cached("toy")), daemon=True)
        reader.start()
        reader.join(10)
        assert got == [cache.entry_dir("toy") / "toy.keras"]


def test_a_download_that_waits_for_another_process_says_so(cli, toy_registry):
    import threading
    import time

    result = []
    with cache.entry_lock("toy"):  # another process fetching toy
        runner = threading.Thread(target=lambda: result.append(cli("download", "toy")), daemon=True)
        runner.start()
        time.sleep(1.0)
        assert runner.is_alive()  # it waits for the lock
    runner.join(30)
    assert result and result[0].exit_code == 0, result
    assert "waiting for another varec process that is fetching toy" in result[0].stderr


def test_clearing_the_cache_waits_for_a_fetch_in_progress(cli, toy_registry):
    """Else the fetch fails half-way with a misleading "cannot write" once its folder is gone."""
    import threading
    import time

    assert cli("download", "toy").exit_code == 0
    result = []
    with cache.entry_lock("toy"):  # another process fetching toy (again)
        clearer = threading.Thread(target=lambda: result.append(cli("cache", "clear")), daemon=True)
        clearer.start()
        time.sleep(1.0)
        assert clearer.is_alive() and cache.entry_dir("toy").is_dir()
    clearer.join(30)
    assert result and result[0].exit_code == 0 and not cache.models_dir().exists()


def test_cache_dir_and_clear_all(cli, toy_registry, isolated_env):
    result = cli("cache", "dir")
    assert result.exit_code == 0 and result.stdout.strip() == str(isolated_env / "cache")
    assert cli("download", "toy").exit_code == 0
    cleared = cli("cache", "clear")
    assert cleared.exit_code == 0 and "removed 1" in cleared.stderr
    assert not cache.models_dir().exists()


@pytest.mark.parametrize("damage", [
    "{broken", "[]", '{"entries": {"toy": {"path": 5, "kind": "keras"}}}', '{"entries": {"toy": "x"}}',
    '{"entries": {"toy": {"path": "toy/toy.keras", "kind": "keras", "verified": null}}}',
    '{"entries": {"toy": {"path": "toy/toy.keras", "kind": "keras", "bytes": "x"}}}',
    '{"entries": {"toy": {"path": "toy/toy.keras", "kind": "keras", "content_bytes": -1}}}',
])
def test_a_damaged_cache_index_is_one_line_and_cache_clear_repairs_it(cli, toy_registry, damage):
    assert cli("download", "toy").exit_code == 0
    cache.index_path().write_text(damage, encoding="utf-8")
    for command in (["cache", "list"], ["models"], ["download", "toy"]):
        result = cli(*command)
        assert result.exit_code == 1 and "`varec cache clear`" in one_error_line(result), command
    cleared = cli("cache", "clear")
    assert cleared.exit_code == 0, cleared.stderr
    assert cli("download", "toy").exit_code == 0 and cli("cache", "list").exit_code == 0


def test_training_features_are_listed_and_cleared_with_the_cache(cli, toy_registry, tmp_path):
    import numpy as np

    from varec_cli.training.loader import FeatureCache

    video = tmp_path / "clip.avi"
    video.write_bytes(b"stand-in: only its identity keys the entry")
    features = FeatureCache(cache.root(), backbone="scratch", weights="w", frames=4, size=(32, 32), precision="float32")
    features.put(video, np.zeros((4, 8), np.float32), 1.0)
    listing = cli("cache", "list")
    assert listing.exit_code == 0 and "(features)" in listing.stdout and "1 training feature set" in listing.stdout
    assert cli("download", "toy").exit_code == 0
    only = cli("cache", "clear", "(features)")
    assert only.exit_code == 0 and "removed (features)" in only.stderr
    assert not cache.features_dir().exists() and cache.entry_dir("toy").exists()
    assert "no training features; nothing to remove" in cli("cache", "clear", "(features)").stderr
    features.put(video, np.zeros((4, 8), np.float32), 1.0)
    everything = cli("cache", "clear")
    assert "removed 1 cached model and the training features from" in everything.stderr
    assert not cache.features_dir().exists()


def test_messages_to_a_log_are_not_wrapped_mid_path(cli, toy_registry, tmp_path, monkeypatch):
    deep = tmp_path / ("a-rather-long-folder-name-for-the-cache-" * 3) / "of-messages"
    monkeypatch.setenv("VAREC_CACHE_DIR", str(deep))
    assert cli("download", "toy").exit_code == 0
    cleared = cli("cache", "clear")
    assert f"removed 1 cached model from {deep}\n" in cleared.stderr  # one line, as greppable as it was


def test_cache_clear_never_reaches_outside_the_cache(cli, toy_registry, isolated_env, tmp_path):
    assert cli("download", "toy").exit_code == 0
    cache_root = isolated_env / "cache"
    precious = cache_root.parent / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("a user's file")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for name in ("../../precious", str(outside), "..", "../models", "index.json", "toy.lock", "toy/../..", "toy\n"):
        result = cli("cache", "clear", name)
        assert result.exit_code == 1, (name, result.stderr)
        assert "is not a model name" in one_error_line(result)
    assert (precious / "keep.txt").read_text() == "a user's file" and outside.is_dir()
    assert cache.get_record("toy") is not None and (cache.entry_dir("toy") / "toy.keras").is_file()
    # a mistyped name leaves no lock file behind
    assert cli("cache", "clear", "toyy").exit_code == 1
    assert not (cache.models_dir() / "toyy.lock").exists()


def test_registry_names_that_would_collide_with_the_cache_are_refused(cli, tmp_path, monkeypatch):
    for name in ("index.json", "x.lock", "m" * 201):  # a name too long for its lock file's name
        registry = tmp_path / f"{name}.toml"
        registry.write_text(f'[models."{name}"]\nurl = "http://127.0.0.1:9/x.keras"\n', encoding="utf-8")
        monkeypatch.setenv("VAREC_REGISTRY", str(registry))
        result = cli("models")
        assert result.exit_code == 1 and "is not a model name" in one_error_line(result)


def test_user_errors_are_one_line_exit_1(cli, toy_registry, server, monkeypatch):
    unknown = cli("download", "toyy")
    assert unknown.exit_code == 1
    assert "unknown model 'toyy'; did you mean toy" in one_error_line(unknown)

    missing = cli("download", "gone")
    assert missing.exit_code == 1
    line = one_error_line(missing)
    assert server.url("/gone.keras") in line and "HTTP 404" in line and "give its path to --model" in line
    assert "gone" not in cli("cache", "list").stdout  # a failed download leaves nothing behind
    assert not cache.entry_dir("gone").exists()

    assert cli("cache", "clear", "nothing-like-it").exit_code == 1

    not_a_folder = toy_registry.parent / "cache-file"
    not_a_folder.write_text("a file where the cache should be")
    with monkeypatch.context() as m:
        m.setenv("VAREC_CACHE_DIR", str(not_a_folder))
        blocked = cli("download", "toy")
        listing = cli("models")
    assert blocked.exit_code == 1 and str(not_a_folder) in one_error_line(blocked)
    assert listing.exit_code == 1 and "point VAREC_CACHE_DIR at a folder" in one_error_line(listing)

    monkeypatch.setenv("VAREC_OFFLINE", "1")
    offline = cli("download", "toy")
    assert offline.exit_code == 1 and "offline mode" in one_error_line(offline)
    assert server.requests_for("/toy.keras") == []

    monkeypatch.delenv("VAREC_OFFLINE")
    both = cli("download", "gone", "toy")  # one failure does not stop the others
    assert both.exit_code == 1 and cache.entry_dir("toy").joinpath("toy.keras").exists()
    errors = [line for line in both.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "HTTP 404" in errors[0] and both.stdout.startswith("toy ")


def test_usage_errors_exit_2(cli):
    assert cli("download").exit_code == 2
    assert cli("download", "toy", "--all").exit_code == 2
    assert cli("cache", "frob").exit_code == 2
    assert cli("cache", "dir", "toy").exit_code == 2


def _mirror_registry(files: dict[str, tuple[bytes, str]], server, tmp_path, monkeypatch) -> None:
    """Serve each entry's stand-in bytes locally and point VAREC_REGISTRY at a registry naming them
    (name -> (bytes, extra TOML lines)); the shipped entries' other fields still apply."""
    lines = []
    for name, (data, extra) in files.items():
        server.files[f"/{name}"] = data
        lines.append(f'[models.{name}]\nurl = "{server.url("/" + name)}"\nbytes = {len(data)}\n{extra}\n')
    registry = tmp_path / "mirror.toml"
    registry.write_text("\n".join(lines), encoding="utf-8")
    monkeypatch.setenv("VAREC_REGISTRY", str(registry))


def test_download_all_shipped_entries_from_local_stand_ins(cli, server, tmp_path, monkeypatch):
    """Every shipped entry's code path, with each URL pointed at a local file of the same format."""
    shipped = load_registry(user_path=False)
    files = {}
    for name in shipped.names():
        entry = shipped.get(name)
        if entry.kind == "backbone":
            data = fake_h5(40_000, seed=len(name))
            files[name] = (data, f'md5 = "{md5(data)}"' if entry.md5 else "")  # stand-in for the published digest
        elif entry.kind == "savedmodel":
            files[name] = (fake_savedmodel_tar(), "")
        else:
            files[name] = (labels_text(600), "")
    _mirror_registry(files, server, tmp_path, monkeypatch)

    result = cli("download", "--all")
    assert result.exit_code == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(cli("models", "--json").stdout)}
    assert all(r["cached"] for r in rows.values())
    meta = json.loads((cache.entry_dir("movinet-a2-stream") / "savedmodel" / "varec-model.json").read_text())
    assert len(meta["labels"]) == 600 and meta["size"] == [224, 224] and meta["stream"] is True
    assert rows["backbone-resnet50"]["digest"] == "published md5"
    assert rows["backbone-mobilenet_v2"]["digest"] == "recorded"
    # the labels file is fetched once and shared by the four MoViNets
    assert len(server.requests_for("/kinetics600-labels")) == 1


def test_a_savedmodel_download_announces_the_size_of_the_model_not_of_its_label_list(
    cli, server, tmp_path, monkeypatch
):
    from varec_cli.text import human_bytes

    labels = load_registry(user_path=False).get("movinet-a2-stream").labels
    files = {"movinet-a2-stream": (fake_savedmodel_tar(), ""), labels: (labels_text(600), "")}
    _mirror_registry(files, server, tmp_path, monkeypatch)

    result = cli("download", "movinet-a2-stream")
    assert result.exit_code == 0, result.stderr
    size = human_bytes(len(server.files["/movinet-a2-stream"]))
    assert human_bytes(len(labels_text(600))) != size
    assert f"downloading movinet-a2-stream ({size})" in result.stderr


def test_after_a_mirror_whose_file_was_refused_the_next_ones_size_is_said(cli, server, tmp_path, monkeypatch):
    from varec_cli.text import human_bytes

    server.files["/page"] = b"<html>a sign-in page, not a model</html>"
    server.files["/toy.keras"] = KERAS
    registry = tmp_path / "mirrors.toml"
    registry.write_text(f'[models.toy]\nurls = ["{server.url("/page")}", "{server.url("/toy.keras")}"]\n', encoding="utf-8")
    monkeypatch.setenv("VAREC_REGISTRY", str(registry))
    result = cli("download", "toy")
    assert result.exit_code == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("downloading toy")]
    assert said[-1] == f"downloading toy ({human_bytes(len(KERAS))}) ...", result.stderr


def test_a_registry_name_and_its_cached_copy_are_one_model(cli, toy_registry, tmp_path):
    """evaluate compares the models it is given; the same model under two spellings would be run and
    reported twice. A name is its cached copy once downloaded, and a file is itself however spelled."""
    from varec_cli.errors import VarecError
    from varec_cli.evaluate_run import evaluate_models
    from varec_cli.weights.resolve import repeated_model

    assert repeated_model(["toy", "gone"]) is None
    assert cli("download", "toy").exit_code == 0
    cached = cache.entry_dir("toy") / "toy.keras"
    assert repeated_model(["toy", str(cached)]) == str(cached)
    assert repeated_model([str(cached), f"{cached.parent}/./{cached.name}", "toy"]) == f"{cached.parent}/./{cached.name}"
    other = tmp_path / "other.keras"
    other.write_bytes(cached.read_bytes())  # the same bytes in another file: another model
    assert repeated_model(["toy", str(other)]) is None
    with pytest.raises(VarecError, match="toy is given twice"):  # library callers get the rule too
        evaluate_models("no-such-dataset", [str(cached), "toy"])
    result = cli("evaluate", "--dataset", "no-such-dataset", "-m", "toy", "-m", str(cached))
    assert result.exit_code == 2 and f"{cached} is given twice" in result.stderr


def test_a_name_too_long_for_a_file_is_one_error_line(cli, tmp_path):
    long_name = "a" * 300  # over the 255 bytes a file name may have
    for args in (("info", long_name), ("predict", long_name), ("annotate", long_name + ".mp4", "-o", tmp_path / "o.mp4")):
        result = cli(*args)
        assert result.exit_code == 1 and "file name too long" in one_error_line(result).lower(), result.stderr[-300:]
    from varec_cli.weights.resolve import repeated_model

    # empty models are no model given twice: opening them says they are empty
    assert repeated_model(["", ""]) is None and repeated_model([long_name, long_name]) == long_name
    empty = cli("evaluate", "--dataset", tmp_path, "-m", "", "-m", "")
    assert empty.exit_code == 1 and "given twice" not in empty.stderr


def test_a_loop_of_symbolic_links_is_one_error_line(cli, tmp_path):
    (tmp_path / "loop1.mp4").symlink_to(tmp_path / "loop2.mp4")
    (tmp_path / "loop2.mp4").symlink_to(tmp_path / "loop1.mp4")
    video = tmp_path / "v.avi"
    video.write_bytes(b"")  # refused later: the output path is checked first
    for args in (("annotate", video, "-o", tmp_path / "loop1.mp4"), ("stream", "-s", video, "--no-display", "-o", tmp_path / "loop1.mp4")):
        result = cli(*args, "-m", tmp_path / "no-model.keras")
        assert result.exit_code == 1 and "loop1.mp4: symbolic links that loop" in one_error_line(result), result.stderr[-300:]


def test_option_values_past_what_the_machine_holds_are_refused(cli, tmp_path):
    from varec_cli.errors import VideoError
    from varec_cli.stream import parse_source

    assert cli("predict", tmp_path / "v.avi", "--clips", "99999999999999").exit_code == 2  # not a memory fill
    assert cli("evaluate", "-d", tmp_path, "-m", "m.keras", "--clips", "101").exit_code == 2
    with pytest.raises(VideoError, match="no such camera"):
        parse_source("2147483648")  # past a C int: OpenCV would raise its own error
    assert parse_source("2147483647").kind == "camera"
    empty = cli("annotate", tmp_path / "v.avi", "-o", tmp_path / "o.mp4", "--timeline", "")
    assert empty.exit_code == 2 and "--timeline" in empty.stderr


def test_a_temp_file_beside_an_output_named_near_the_limit_fits(tmp_path):
    from varec_cli.files import temp_file

    long_stem = "é" * 124  # 248 bytes: a valid name, but not with a temp prefix and suffix added
    output = tmp_path / f"{long_stem}.mp4"
    output.touch()
    temp = temp_file(tmp_path, prefix=f".{long_stem}.", suffix=".mp4")
    assert temp.exists() and len(os.fsencode(temp.name)) <= 255 and temp.name.endswith(".mp4")


def test_cache_clear_refuses_to_delete_files_varec_did_not_put_there(cli, tmp_path, monkeypatch):
    """VAREC_CACHE_DIR=. in a project, or `train -o` into the cache: `cache clear` deleted the user's own
    files with the cache (and said it removed 0 models)."""
    from varec_cli.weights import cache

    (cache.models_dir()).mkdir(parents=True)
    cache.features_dir().mkdir(parents=True)
    mine = cache.models_dir() / "my-best.keras"
    mine.write_bytes(b"months of training")
    notes = cache.features_dir() / "notes.txt"
    notes.write_text("x")
    result = cli("cache", "clear")
    assert result.exit_code == 1 and one_error_line(result).startswith("error: the cache holds files varec did not put there")
    assert "my-best.keras" in result.stderr and "notes.txt" in result.stderr
    assert mine.read_bytes() == b"months of training" and notes.exists()
    by_name = cli("cache", "clear", "my-best.keras")  # a file of that name is no cached entry
    assert by_name.exit_code == 1 and mine.exists()
    mine.unlink(), notes.unlink()
    project = cache.models_dir() / "bert-finetuned"  # VAREC_CACHE_DIR=. in a project with its own models/
    project.mkdir()
    (project / "weights.h5").write_bytes(b"weeks of training")
    (cache.models_dir() / "half-fetched").mkdir()  # a fetch killed before it was recorded: varec's
    (cache.models_dir() / "half-fetched" / ".download-0123abcd.part").write_bytes(b"x")
    result = cli("cache", "clear")
    assert result.exit_code == 1 and str(project) in one_error_line(result) and "half-fetched" not in result.stderr
    assert (project / "weights.h5").read_bytes() == b"weeks of training"
    shutil.rmtree(project)
    assert cli("cache", "clear").exit_code == 0


def test_cache_clear_empties_parts_of_the_cache_linked_to_another_disk(cli, toy_registry, tmp_path):
    """models/ (or features/, compiled/) as a link to a folder on another disk: `cache clear` renamed the
    link and deleted nothing, saying it had removed the models; now it empties the linked folder and
    keeps the link, and varec goes on using it."""
    import numpy as np

    from varec_cli.training.loader import FeatureCache

    cache.root().mkdir(parents=True, exist_ok=True)
    disk = tmp_path / "big-disk"
    for part in ("models", "features", "compiled"):
        (disk / part).mkdir(parents=True)
        (cache.root() / part).symlink_to(disk / part, target_is_directory=True)
    assert cli("download", "toy").exit_code == 0
    assert (disk / "models" / "toy" / "toy.keras").is_file()
    video = tmp_path / "clip.avi"
    video.write_bytes(b"stand-in: only its identity keys the entry")
    FeatureCache(cache.root(), backbone="scratch", weights="w", frames=4, size=(32, 32), precision="float32").put(
        video, np.zeros((4, 8), np.float32), 1.0)
    (disk / "compiled" / f"m-{'0' * 24}.json").write_text('{"model": "m.keras"}')  # named as varec names them
    cleared = cli("cache", "clear")
    assert cleared.exit_code == 0 and "removed 1 cached model" in cleared.stderr
    for part in ("models", "features", "compiled"):
        assert (cache.root() / part).is_symlink(), part
        assert list((disk / part).iterdir()) == [], (part, list((disk / part).iterdir()))
    assert [p.name for p in cache.root().iterdir()] != [] and not any(p.name.startswith(".") for p in cache.root().iterdir())
    assert cli("download", "toy").exit_code == 0 and (disk / "models" / "toy" / "toy.keras").is_file()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write anywhere")
def test_clearing_a_cache_this_user_may_not_change_is_one_line_saying_so(cli, toy_registry):
    """A cache made by another user: `cache clear` said `error: .../features -> .../.features-trash-...:
    Permission denied`, the inner workings of a rename."""
    assert cli("download", "toy").exit_code == 0
    models = cache.models_dir()
    for folder in (cache.root(), models):
        folder.chmod(0o555)
    try:
        for args in (("clear",), ("clear", "toy")):
            line = one_error_line(cli("cache", *args))
            assert line.startswith(f"error: cannot clear the cache: {models} cannot be removed (Permission denied); "), line
            assert line.endswith(f"clearing needs write access to all of {cache.root()}, and what another user put "
                                 "there (with sudo, say) only they can remove (VAREC_CACHE_DIR sets where the cache is)")
    finally:
        for folder in (cache.root(), models):
            folder.chmod(0o755)
    assert (cache.entry_dir("toy") / "toy.keras").is_file()


def test_what_a_killed_cache_clear_left_hidden_is_deleted_by_the_next(cli, toy_registry):
    """`cache clear` renames models/ aside, then deletes it: killed in between, the renamed tree stayed on
    the disk, hidden, for good."""
    assert cli("download", "toy").exit_code == 0
    left = cache.root() / ".models-trash-4242-1"
    cache.models_dir().rename(left)  # as a clear killed before deleting it leaves it
    assert cli("download", "toy").exit_code == 0
    assert cli("cache", "clear").exit_code == 0
    assert [p.name for p in cache.root().iterdir()] == []



@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may delete anything")
def test_what_a_clear_cannot_delete_stays_in_sight_and_does_not_block_the_next(cli, toy_registry, server):
    """A file this user may not delete (another's, put there with sudo) stopped `cache clear` with its bare
    name, after the whole cache had been moved aside out of sight; every later clear then failed on it."""
    assert cli("download", "toy").exit_code == 0
    stuck = cache.entry_dir("toy") / "theirs"  # in a cached model's folder, say by a `sudo varec download`
    stuck.mkdir()
    (stuck / "w.h5").write_bytes(b"x")
    stuck.chmod(0o555)
    try:
        line = one_error_line(cli("cache", "clear"))
        assert line.startswith(f"error: cannot clear the cache: {stuck / 'w.h5'} cannot be removed (Permission denied)"), line
        assert (stuck / "w.h5").is_file()  # in sight, where it was
        assert not any(p.name.startswith(".") and "trash" in p.name for p in cache.root().iterdir())
    finally:
        stuck.chmod(0o755)
    assert cli("download", "toy").exit_code == 0
    cleared = cli("cache", "clear")
    assert cleared.exit_code == 0, cleared.output
    assert not cache.models_dir().exists()


def test_cache_clear_deletes_nothing_varec_did_not_put_in_its_folders(cli, toy_registry, tmp_path):
    """features/ or compiled/ linked to a folder that holds someone's files (or, with VAREC_CACHE_DIR=.,
    a project's own features/ folder): clearing emptied it, their files and folders with it."""
    cache.root().mkdir(parents=True, exist_ok=True)
    shared = tmp_path / "shared"
    (shared / "photos").mkdir(parents=True)
    (shared / "thesis.docx").write_text("mine")
    project = tmp_path / "project-features"
    (project / "experiments").mkdir(parents=True)
    (cache.root() / "compiled").symlink_to(shared, target_is_directory=True)
    (cache.root() / "features").symlink_to(project, target_is_directory=True)
    (tmp_path / "gone").mkdir()
    assert cli("download", "toy").exit_code == 0
    for args in (("clear",), ("clear", "(compiled)"), ("clear", "(features)")):
        line = one_error_line(cli("cache", *args))
        assert line.startswith("error: the cache holds files varec did not put there ("), (args, line)
    assert (shared / "thesis.docx").read_text() == "mine" and (shared / "photos").is_dir()
    assert (project / "experiments").is_dir() and (cache.entry_dir("toy") / "toy.keras").is_file()
    (shared / "package.json").write_text("{}")  # hidden, or .json, is not varec's for that
    (shared / ".git").mkdir()
    for folder in (shared / "photos", project / "experiments"):
        shutil.rmtree(folder)
    (project / ".env").write_text("SECRET=1")
    for args in (("clear",), ("clear", "(compiled)"), ("clear", "(features)")):
        line = one_error_line(cli("cache", *args))
        assert line.startswith("error: the cache holds files varec did not put there ("), (args, line)
    assert (shared / "package.json").exists() and (shared / ".git").is_dir() and (project / ".env").exists()
    (cache.root() / "compiled").unlink()
    (cache.root() / "compiled").symlink_to(tmp_path / "nowhere", target_is_directory=True)  # a disk not there
    (cache.root() / "features").unlink()
    (cache.root() / "features").symlink_to(cache.models_dir(), target_is_directory=True)  # two parts, one folder
    line = one_error_line(cli("cache", "clear"))
    assert line.startswith(f"error: {cache.root() / 'compiled'}, where the cache keeps its compiled graphs, is a symbolic "
                           f"link to {tmp_path / 'nowhere'}, which does not exist: make that folder"), line
    (cache.root() / "compiled").unlink()
    line = one_error_line(cli("cache", "clear"))
    assert line.startswith(f"error: {cache.root() / 'features'} and {cache.models_dir()} lead to one folder"), line
    (cache.root() / "features").unlink()
    (cache.root() / "features").symlink_to(cache.root(), target_is_directory=True)
    line = one_error_line(cli("cache", "clear"))
    assert line.startswith(f"error: {cache.root() / 'features'} leads to {cache.root().resolve()}, the cache itself"), line
    assert (cache.entry_dir("toy") / "toy.keras").is_file()
    (cache.root() / "features").unlink()
    assert cli("cache", "clear").exit_code == 0


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may move anything")
def test_a_linked_models_folder_that_cannot_be_emptied_whole_is_left_whole(cli, toy_registry, tmp_path):
    """models/ linked to another disk, holding a folder this user may not move: clearing moved the rest
    into a hidden trash folder and stopped, the models out of sight (and deleted by the next clear)."""
    cache.root().mkdir(parents=True, exist_ok=True)
    (tmp_path / "disk" / "models").mkdir(parents=True)
    cache.models_dir().symlink_to(tmp_path / "disk" / "models", target_is_directory=True)
    assert cli("download", "toy").exit_code == 0
    stuck = tmp_path / "disk" / "models" / "stuck"
    stuck.mkdir()
    stuck.chmod(0o555)  # a folder moves to another parent only when it may be written (its `..`)
    try:
        line = one_error_line(cli("cache", "clear"))
        assert line.startswith("error: cannot clear the cache: "), line
        names = {p.name for p in (tmp_path / "disk" / "models").iterdir()}
        assert {"index.json", "stuck", "toy"} <= names and not any(name.startswith(".") for name in names), names
        assert "toy" in cli("cache", "list").stdout
    finally:
        stuck.chmod(0o755)
    cache.models_dir().unlink()
    cache.models_dir().symlink_to(tmp_path / "not-mounted", target_is_directory=True)
    line = one_error_line(cli("download", "toy"))  # said as it is, not "File exists"
    assert f"{cache.models_dir()} is a symbolic link to {tmp_path / 'not-mounted'}, which does not exist" in line, line


def test_a_project_sharing_the_cache_folder_keeps_its_own_models_index_and_locks(cli, toy_registry):
    """VAREC_CACHE_DIR=. in a project with a models/ of its own: its index.json (no varec index) made
    every folder count as varec's and `cache clear` deleted them all; `cache clear NAME` deleted any
    folder of that name; a `Pipfile.lock` went as a lock file."""
    assert cli("download", "toy").exit_code == 0
    models = cache.models_dir()
    for name in ("resnet", "bert"):
        (models / name).mkdir()
        (models / name / "weights.h5").write_bytes(b"weeks of training")
    (models / "lost+found").mkdir()  # a volume mounted there has one: neither theirs nor varec's to delete
    theirs = models / "index.json"
    ours = theirs.read_text(encoding="utf-8")
    theirs.write_text('{"resnet": {"epochs": 10}}', encoding="utf-8")
    line = one_error_line(cli("cache", "clear"))
    assert line.startswith("error: the cache holds files varec did not put there (") and str(models / "bert") in line
    assert str(theirs) in line and "lost+found" not in line and "toy" not in line
    assert (models / "bert" / "weights.h5").exists() and (models / "toy" / "toy.keras").exists() and theirs.exists()
    assert one_error_line(cli("cache", "list")) == (
        f"error: {theirs} is not a varec cache index but someone's file where varec keeps its index: move it out of "
        f"{cache.root()}, or point VAREC_CACHE_DIR at a folder of varec's own"
    )
    theirs.write_text(ours, encoding="utf-8")
    line = one_error_line(cli("cache", "clear", "resnet"))
    assert line == (f"error: {models / 'resnet'} is not a cached model varec fetched (the index does not record it, "
                    f"and it holds files varec did not put there): not removed; move it out of {cache.root()} if it is yours")
    assert (models / "resnet" / "weights.h5").exists()
    for name in ("resnet", "bert"):
        shutil.rmtree(models / name)
    (models / "Pipfile.lock").write_text("{}")
    assert str(models / "Pipfile.lock") in one_error_line(cli("cache", "clear"))
    (models / "Pipfile.lock").unlink()
    (models / "index.json").write_text("{ damaged")  # a damaged index: varec's own folders are marked, and go
    cleared = cli("cache", "clear")
    assert cleared.exit_code == 0, cleared.output
    assert not models.exists() or [p.name for p in models.iterdir()] == []
