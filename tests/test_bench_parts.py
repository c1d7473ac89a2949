"""Pure logic of the training (3) and streaming (4) benchmark parts, without timing anything."""

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def parts(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    for name in [n for n in sys.modules if n == "parts" or n.startswith("parts.")]:
        monkeypatch.delitem(sys.modules, name)
    import harness
    import parts

    return harness, parts


def test_training_and_streaming_are_registered_in_order(parts):
    harness, _ = parts
    assert {"training", "streaming"} <= set(harness.PARTS)
    orders = {name: harness.PARTS[name].order for name in ("clips", "predict", "training", "streaming")}
    assert orders == {"clips": 1, "predict": 2, "training": 3, "streaming": 4}


def test_stream_summary_is_parsed(parts):
    from parts.streaming import parse_summary

    text = (
        "stream bigbuckbunny.mp4: ended (end of the video)\n"
        "  frames      132 captured, 132 processed (0 skipped to stay live), 83 predictions\n"
        "  duration    3.5 s (5.2 s of source time)\n"
        "  speed       37.4 frames/s processed\n"
        "  latency     111 ms on average, capture to label\n"
    )
    assert parse_summary(text) == (37.4, 111.0)
    none = text.replace("111 ms on average, capture to label", "none: no prediction (the video is shorter than the model's window)")
    assert parse_summary(none) == (37.4, None)
    with pytest.raises(ValueError):
        parse_summary("error: something else")


def test_recorded_keeps_every_reported_time(parts):
    from parts.training import recorded

    seen = []
    values = iter([3.0, 1.0, 2.0])
    call = recorded(lambda: next(values), seen)
    assert [call(), call(), call()] == [3.0, 1.0, 2.0] and seen == [3.0, 1.0, 2.0]


def test_the_gpu_training_part_is_skipped_without_a_gpu(parts):
    harness, _ = parts
    from parts import training_gpu

    keras = pytest.importorskip("keras")
    assert harness.PARTS["training-gpu"].order == 6
    if training_gpu.accelerators(keras):
        pytest.skip("this machine has a GPU")
    ctx = harness.Context(repeats=1, quick=True, work_dir=Path("."), options={}, log=print)
    with pytest.raises(harness.Skipped, match="no GPU visible to Keras"):
        harness.PARTS["training-gpu"].run(ctx)


@pytest.mark.parametrize("keyint, expected", [(1000, "has one keyframe"), (20, "has 3 keyframes")])
def test_clips_below_target_are_compared_with_decoding_alone(parts, tmp_path, keyint, expected):
    from synthetic import moving_square_frames, write_av_video

    from varec_cli.video.reader import read_clips

    _, bench = parts
    video = write_av_video(
        tmp_path / "clip.mp4", moving_square_frames("left", count=60), options={"x264-params": f"keyint={keyint}:scenecut=0"}
    )
    assert read_clips(video, 8, (32, 32)).strategy == "av"
    ctx = type("Ctx", (), {"repeats": 1})()
    note = bench.clips._floor_note(ctx, video, 8, "clip.mp4 (8 frames)", 2.31)
    assert note.startswith("**clip.mp4 (8 frames)**, below the read all target (2.31x in its own rounds), " + expected)
    assert "Decoding that alone" in note and "x read all" in note
    near = bench.clips._floor_note(ctx, video, 8, "clip.mp4 (8 frames)", 2.57)
    assert near.startswith("**clip.mp4 (8 frames)**, just above the read all target (2.57x in its own rounds), ")


def test_every_part_registers_its_run_function(parts):
    harness, _ = parts
    assert harness.PARTS and all(p.run.__name__ == "run" for p in harness.PARTS.values())
