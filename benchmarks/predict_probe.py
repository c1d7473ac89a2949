"""Helpers for benchmarks/parts/predict.py, run as subprocesses (each a fresh interpreter).

    python benchmarks/predict_probe.py build OUT_DIR          # the benchmark's models
    python benchmarks/predict_probe.py probe VIDEO MODEL      # `varec predict` step by step

`probe` does what `varec predict VIDEO --model MODEL --json` does, through the same library calls,
timing each step, and prints one JSON line of seconds: cli (importing the command line),
frameworks (TensorFlow + Keras), load (the model file), decode (read_clips), inference (the first
predict_clips call, tracing included), output (top-k and JSON), and inference_again (a second,
warm predict_clips call: the first minus this is the one-off cost).
"""

from __future__ import annotations

import json
import os
import sys
import time

START = time.perf_counter()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODELS = {  # name: (backbone, frames, size)
    "mobilenet_v2": ("mobilenet_v2", 16, 224),
    "scratch": ("scratch", 16, 224),
}
CLASSES = 101  # as UCF101


def build(out_dir: str) -> None:
    from pathlib import Path

    from harness import save_random_model  # the script's folder is on sys.path

    for name, (backbone, frames, size) in MODELS.items():
        path = Path(out_dir) / f"{name}-{frames}x{size}.keras"
        if not path.exists():
            save_random_model(path, backbone, frames, size, CLASSES)


def probe(video: str, model: str) -> None:
    times = {}
    mark = START

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        times[name] = now - mark
        mark = now

    import varec_cli.cli  # noqa: F401
    import varec_cli.commands.predict  # noqa: F401

    lap("cli")
    from varec_cli.runtime import import_keras

    import_keras()
    lap("frameworks")
    from varec_cli.models.classifier import open_classifier

    classifier = open_classifier(model)
    lap("load")
    from varec_cli.video.reader import read_clips

    clips = read_clips(video, classifier.spec.frames, classifier.spec.size)
    lap("decode")
    probabilities = classifier.predict_clips(clips.frames).mean(axis=0)
    lap("inference")
    json.dumps({"predictions": classifier.top_k(probabilities, 5)})
    lap("output")
    classifier.predict_clips(clips.frames)
    lap("inference_again")
    print(json.dumps(times))


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    {"build": build, "probe": probe}[command](*rest)
