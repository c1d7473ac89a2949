import numpy as np

from varec_cli.models.classifier import load_classifier


def test_predict_clips_matches_the_whole_model(tiny_model):
    """predict_clips runs the frame encoder over all frames at once, then the head: it must give
    what the whole (TimeDistributed) model gives, clip by clip and in order."""
    classifier = load_classifier(tiny_model)
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (11, 6, 32, 32, 3), dtype=np.uint8)  # more than one batch of 8
    expected = np.asarray(classifier.model.predict_on_batch(clips.astype(np.float32)))
    got = classifier.predict_clips(clips)
    assert got.shape == (11, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
