import numpy as np

from varec_cli.models.architecture import (
    assemble_model,
    assemble_training_model,
    build_frame_encoder,
    build_sequence_head,
)


def test_training_model_computes_what_the_saved_model_computes():
    """Training folds frames into the batch; the file keeps TimeDistributed. Same weights, same
    function, frame order included."""
    encoder = build_frame_encoder("scratch", 32)
    head = build_sequence_head(6, int(encoder.output_shape[-1]), 3, rnn="lstm", units=16)
    saved = assemble_model(encoder, head, 6, 32)
    training = assemble_training_model(encoder, head, 6, 32)
    assert [w.path for w in saved.weights] == [w.path for w in training.weights]
    clips = np.random.default_rng(0).integers(0, 256, (3, 6, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(training.predict_on_batch(clips), saved.predict_on_batch(clips), atol=1e-6)
    reversed_clips = clips[:, ::-1]
    assert not np.allclose(training.predict_on_batch(reversed_clips), training.predict_on_batch(clips), atol=1e-6)
