"""Clip inference through the frozen-graph cache (models/tf_frozen.py): same predictions as the Keras
model, invalidated when the model file changes, rebuilt when damaged, visible in `varec cache`."""

import os

import numpy as np
import pytest

from varec_cli.models.classifier import load_classifier
from varec_cli.weights import cache


def _save_tiny(path, seed):
    from varec_cli.models.architecture import build_model
    from varec_cli.models.modelfile import ModelMetadata, save_model
    from varec_cli.runtime import import_keras

    import_keras().utils.set_random_seed(seed)
    model = build_model(3, backbone="scratch", rnn="lstm", frames=4, size=32, units=8)
    metadata = ModelMetadata(
        labels=["a", "b", "c"], frames=4, size=(32, 32), backbone="scratch", preprocessing="unit", rnn="lstm",
        feature_dim=128,
    )
    return save_model(model, path, metadata)


def _keras_reference(path, clips):
    """What the whole Keras model (TimeDistributed, no freezing) says about `clips`."""
    from varec_cli.models.modelfile import load_model

    model, _ = load_model(path)
    return np.asarray(model.predict_on_batch(clips.astype(np.float32)))


@pytest.fixture
def clips():
    return np.random.default_rng(1).integers(0, 256, (3, 4, 32, 32, 3), dtype=np.uint8)


def _graphs():
    return sorted(p.name for p in cache.compiled_dir().glob("*.tfgraph")) if cache.compiled_dir().exists() else []


def test_second_load_is_served_from_the_cache_without_building_the_keras_model(tmp_path, clips):
    path = _save_tiny(tmp_path / "m.keras", seed=1)
    first = load_classifier(path)
    assert first.model is not None  # nothing cached yet: the Keras model is built at load
    got_first = first.predict_clips(clips)
    assert len(_graphs()) == 1

    second = load_classifier(path)
    got_second = second.predict_clips(clips)
    assert second._model is None  # the cached frozen graph answered
    expected = _keras_reference(path, clips)
    np.testing.assert_allclose(got_first, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got_second, expected, rtol=1e-4, atol=1e-6)


def test_a_rewritten_model_file_is_never_answered_by_the_old_graph(tmp_path, clips):
    path = tmp_path / "m.keras"
    _save_tiny(path, seed=1)
    old = load_classifier(path).predict_clips(clips)
    before = _graphs()
    stat = path.stat()
    _save_tiny(path, seed=2)  # new weights, same path, same size (same architecture)
    # ... and the old modification time, as `cp -p`, `rsync -t` or an archive would leave it
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    new = load_classifier(path).predict_clips(clips)
    np.testing.assert_allclose(new, _keras_reference(path, clips), rtol=1e-4, atol=1e-6)
    assert not np.allclose(new, old)
    assert len(_graphs()) == 1 and _graphs() != before  # the stale entry was replaced, not kept


def test_graphs_of_deleted_model_files_go_when_the_next_graph_is_written(tmp_path, clips):
    gone = _save_tiny(tmp_path / "gone.keras", seed=8)
    load_classifier(gone).predict_clips(clips)
    gone.unlink()
    kept = _save_tiny(tmp_path / "kept.keras", seed=9)
    load_classifier(kept).predict_clips(clips)
    assert [name.split("-")[0] for name in _graphs()] == ["kept"]


def test_a_damaged_cache_entry_is_rebuilt(tmp_path, clips):
    path = _save_tiny(tmp_path / "m.keras", seed=3)
    expected = load_classifier(path).predict_clips(clips)
    (graph,) = cache.compiled_dir().glob("*.tfgraph")
    graph.write_bytes(b"not a graph")
    again = load_classifier(path)
    np.testing.assert_allclose(again.predict_clips(clips), expected, rtol=1e-5, atol=1e-7)
    assert graph.read_bytes() != b"not a graph"
    np.testing.assert_allclose(load_classifier(path).predict_clips(clips), expected, rtol=1e-5, atol=1e-7)

    # Flipped bytes that still parse as a graph (a bad disk, a botched copy) would answer wrongly.
    good = graph.read_bytes()
    middle = len(good) // 2
    damaged = good[:middle] + bytes(b ^ 0x5A for b in good[middle:middle + 2000]) + good[middle + 2000:]
    graph.write_bytes(damaged)
    np.testing.assert_allclose(load_classifier(path).predict_clips(clips), expected, rtol=1e-5, atol=1e-7)
    assert graph.read_bytes() != damaged  # made again


def test_two_cached_models_in_one_process_keep_their_own_graphs(tmp_path, clips):
    """Graphs frozen in separate runs carry generated names that can collide; each loaded one must
    still run its own weights."""
    paths = [_save_tiny(tmp_path / f"m{i}.keras", seed=10 + i) for i in range(2)]
    for path in paths:
        load_classifier(path).predict_clips(clips)  # fill the cache
    cached = [load_classifier(path) for path in paths]
    for classifier, path in zip(cached, paths):
        np.testing.assert_allclose(classifier.predict_clips(clips), _keras_reference(path, clips), rtol=1e-4, atol=1e-6)


def test_cache_list_shows_and_clear_removes_compiled_graphs(tmp_path, clips, cli):
    path = _save_tiny(tmp_path / "m.keras", seed=4)
    load_classifier(path).predict_clips(clips)
    listing = cli("cache", "list")
    assert listing.exit_code == 0 and "1 compiled graph" in listing.stdout
    cleared = cli("cache", "clear")
    assert cleared.exit_code == 0 and "compiled graphs" in cleared.stderr
    assert _graphs() == []
    assert "the cache is empty" in cli("cache", "list").stderr
    load_classifier(path).predict_clips(clips)
    only = cli("cache", "clear", cache.COMPILED_NAME)
    assert only.exit_code == 0 and _graphs() == []
    assert "nothing to remove" in cli("cache", "clear", cache.COMPILED_NAME).stderr


def test_clearing_a_cached_name_drops_its_compiled_graph(tmp_path, clips):
    inside = cache.mark_entry("toy")  # as a fetch makes it
    cached_model = _save_tiny(inside / "toy.keras", seed=5)
    elsewhere = _save_tiny(tmp_path / "mine.keras", seed=6)
    for path in (cached_model, elsewhere):
        load_classifier(path).predict_clips(clips)
    assert len(_graphs()) == 2
    cache.clear("toy")
    assert [name.split("-")[0] for name in _graphs()] == ["mine"]


def test_a_model_file_above_the_size_limit_keeps_the_keras_model(tmp_path, clips, monkeypatch):
    from varec_cli.models import tf_frozen

    path = _save_tiny(tmp_path / "m.keras", seed=7)
    monkeypatch.setattr(tf_frozen, "MAX_MODEL_BYTES", path.stat().st_size - 1)
    classifier = load_classifier(path)
    np.testing.assert_allclose(classifier.predict_clips(clips), _keras_reference(path, clips), rtol=1e-4, atol=1e-6)
    assert _graphs() == [] and load_classifier(path)._model is not None


def test_a_trained_model_file_comes_with_its_compiled_graph(tmp_path, clips, cli):
    """`varec train` freezes what it saved, so the first predict with the new file starts fast."""
    from synthetic import write_ucf101_motion_dataset

    root = write_ucf101_motion_dataset(tmp_path / "data", train_groups=2, test_groups=1, clips=2, count=8, size=32)
    output = tmp_path / "trained.keras"
    result = cli(
        "train", "--dataset", root, "--output", output, "--backbone", "scratch", "--rnn", "gru", "--frames", "4",
        "--size", "32", "--units", "8", "--epochs", "1", "--batch-size", "4",
    )
    assert result.exit_code == 0, result.output
    assert len(_graphs()) == 1
    classifier = load_classifier(output)
    np.testing.assert_allclose(classifier.predict_clips(clips), _keras_reference(output, clips), rtol=1e-4, atol=1e-6)
    assert classifier._model is None


def test_a_cached_graph_that_cannot_run_here_gives_way_to_the_keras_model(tmp_path, clips):
    """A graph traced where a GPU was visible holds cuDNN kernels a CPU-only run lacks: its first
    call fails. The clip must still be classified (by the Keras model), and the entry dropped."""
    from tensorflow.core.framework import function_pb2

    path = _save_tiny(tmp_path / "m.keras", seed=12)
    expected = load_classifier(path).predict_clips(clips)
    (graph,) = cache.compiled_dir().glob("*.tfgraph")
    library = function_pb2.FunctionDefLibrary()
    library.ParseFromString(graph.read_bytes())
    node = next(n for n in library.function[0].node_def if n.op == "Relu")
    node.op = "CudnnRNNV3"  # a GPU-only kernel
    graph.write_bytes(library.SerializeToString())
    import json
    import zlib

    description = graph.with_suffix(".json")  # as if written so: its checksum matches
    info = json.loads(description.read_text())
    description.write_text(json.dumps({**info, "graph_crc32": zlib.crc32(graph.read_bytes())}))

    classifier = load_classifier(path)
    assert classifier._model is None  # the entry loads; only running it fails
    np.testing.assert_allclose(classifier.predict_clips(clips), expected, rtol=1e-5, atol=1e-7)
    assert _graphs() == []
    np.testing.assert_allclose(classifier.predict_clips(clips), expected, rtol=1e-5, atol=1e-7)


def test_a_graph_no_classifier_uses_any_more_leaves_tensorflow(tmp_path, clips):
    """Each loaded graph holds the model's weights inside TensorFlow: loading a model file many times
    in one process (evaluations, a service) must not keep every copy."""
    import gc

    from tensorflow.python.eager import context

    path = _save_tiny(tmp_path / "m.keras", seed=13)
    load_classifier(path).predict_clips(clips)  # cached
    first, second = load_classifier(path), load_classifier(path)
    assert first._clip_function is second._clip_function  # one graph per model file in a process
    name = first._clip_function._name
    first.predict_clips(clips)
    assert context.context().has_function(name)
    del first, second
    gc.collect()
    assert not context.context().has_function(name)


def test_a_graph_that_cannot_be_forgotten_on_disk_is_still_forgotten_here(tmp_path, clips):
    """Discarding is best effort on disk, as caching is: a cache that cannot be changed (here its
    folder is a file) must not turn a fall-back to the Keras model into an error, and this process
    must still let go of the graph: the next classifier of the file builds the Keras model."""
    from varec_cli.models import tf_frozen

    path = _save_tiny(tmp_path / "m.keras", seed=14)
    load_classifier(path).predict_clips(clips)  # frozen and cached
    held = load_classifier(path)  # keeps the loaded graph alive (the process's table holds it weakly)
    assert held._model is None  # served by the cached graph
    identity = tf_frozen.file_identity(path)
    _, description = tf_frozen.entry_paths(identity)
    assert tf_frozen._loaded.get(description.name) is held._clip_function

    cache.compiled_dir().rename(tmp_path / "compiled-aside")
    cache.compiled_dir().write_text("not a folder")  # nothing can be removed from the cache now
    tf_frozen.discard(identity)  # raised NotADirectoryError before
    assert cache.compiled_dir().is_file()
    assert description.name not in tf_frozen._loaded

    after = load_classifier(path)
    assert after._model is not None  # not handed the forgotten graph: the Keras model is built
    np.testing.assert_allclose(after.predict_clips(clips), _keras_reference(path, clips), rtol=1e-4, atol=1e-6)
