import numpy as np
import pytest
from synthetic import write_motion_video

from varec_cli.errors import VideoError
from varec_cli.models.classifier import load_classifier
from varec_cli.predict import ClipPrefetcher, classify_videos, prefetch_clips


def test_prefetched_clips_are_the_clips_and_errors_stay_per_video(tiny_model, tmp_path):
    videos = [write_motion_video(tmp_path / f"v{i}.avi", "right", seed=i) for i in range(2)]
    videos.insert(1, tmp_path / "missing.avi")
    classifier = load_classifier(tiny_model)
    prefetched = prefetch_clips(tiny_model, videos, clips=2)
    assert prefetched is not None and prefetched.frames == 6 and prefetched.size == (32, 32)
    with_prefetch = list(classify_videos(classifier, videos, clips=2, prefetched=prefetched))
    without = list(classify_videos(classifier, videos, clips=2))
    assert [v for v, _ in with_prefetch] == videos
    assert isinstance(with_prefetch[1][1], VideoError) and "missing.avi" in str(with_prefetch[1][1])
    for (_, a), (_, b) in ((with_prefetch[0], without[0]), (with_prefetch[2], without[2])):
        np.testing.assert_allclose(a.probabilities, b.probabilities, rtol=1e-5)


def test_no_prefetch_without_a_readable_model(tmp_path):
    assert prefetch_clips(None, [tmp_path / "a.avi"]) is None
    (tmp_path / "m.keras").write_text("not a model")
    assert prefetch_clips(tmp_path / "m.keras", [tmp_path / "a.avi"]) is None


def test_clips_must_be_taken_in_order(tmp_path):
    videos = [write_motion_video(tmp_path / f"v{i}.avi", "left", seed=i) for i in range(2)]
    prefetched = ClipPrefetcher(videos, 4, (16, 16), 1)
    with pytest.raises(RuntimeError):
        prefetched.take(videos[1])


def test_a_registry_name_already_in_the_cache_is_prefetched_without_the_network(tiny_model, server, tmp_path,
                                                                               monkeypatch):
    from http_server import sha256

    from varec_cli.weights.resolve import resolve_model_path

    data = tiny_model.read_bytes()
    server.files["/mine.keras"] = data
    registry = tmp_path / "models.toml"
    registry.write_text(f'[models.mine]\nurl = "{server.url("/mine.keras")}"\nsha256 = "{sha256(data)}"\n')
    monkeypatch.setenv("VAREC_REGISTRY", str(registry))
    video = write_motion_video(tmp_path / "v.avi", "right")
    assert prefetch_clips("mine", [video]) is None  # not downloaded yet: nothing fetched for it here
    assert server.requests_for("/mine.keras") == []
    resolve_model_path("mine")
    monkeypatch.setenv("VAREC_OFFLINE", "1")
    prefetched = prefetch_clips("mine", [video])
    assert prefetched is not None and (prefetched.frames, prefetched.size) == (6, (32, 32))
    assert prefetched.take(video).frames.shape == (1, 6, 32, 32, 3)
    assert len(server.requests_for("/mine.keras")) == 1
