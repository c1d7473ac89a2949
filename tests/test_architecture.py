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


def test_a_saved_model_file_is_readable_as_the_umask_allows(tmp_path):
    """Saved through a temp file and a rename, yet not left private (0600) the way mkstemp makes files:
    others on a shared machine, or workers under another account, must be able to load it."""
    import os

    from varec_cli.models.architecture import build_model
    from varec_cli.models.modelfile import ModelMetadata, save_model

    model = build_model(2, backbone="scratch", rnn="gru", frames=2, size=16, units=4)
    metadata = ModelMetadata(labels=["a", "b"], frames=2, size=(16, 16), backbone="scratch", preprocessing="unit",
                             rnn="gru", feature_dim=128)
    for umask, mode in ((0o022, 0o644), (0o027, 0o640)):
        previous = os.umask(umask)
        try:
            path = save_model(model, tmp_path / f"m{mode:o}.keras", metadata)
        finally:
            os.umask(previous)
        assert path.stat().st_mode & 0o777 == mode
