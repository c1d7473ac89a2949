"""Runs keras-video-generators' VideoFrameGenerator for benchmarks/parts/clips.py.

Executed by the side virtual environment's Python (keras-video-generators 1.0.14 needs TensorFlow
2.15 and numpy<2), never imported by varec. Protocol on stdin/stdout, one JSON line per reply:
start-up replies {"ready": true, "versions": {...}}; each "run" line makes a fresh generator (its
frame cache would otherwise serve later passes from memory), loads every clip once and replies
{"seconds": float, "clips": int}; "quit" ends.
"""

import json
import sys
import time

protocol = sys.stdout
sys.stdout = sys.stderr  # the generator prints progress; keep the protocol stream clean


def main() -> None:
    config = json.loads(sys.argv[1])
    import cv2
    import keras_video
    import numpy
    import tensorflow

    versions = {
        "keras-video-generators": getattr(keras_video, "__version__", "1.0.14"),
        "tensorflow": tensorflow.__version__,
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "python": sys.version.split()[0],
    }
    reply({"ready": True, "versions": versions})
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command != "run":
            continue
        start = time.perf_counter()
        generator = keras_video.VideoFrameGenerator(
            classes=list(config["classes"]),
            glob_pattern=config["glob_pattern"],
            nb_frames=int(config["nb_frames"]),
            target_shape=tuple(config["target_shape"]),
            batch_size=1,
            shuffle=False,
            use_frame_cache=False,
            transformation=None,
        )
        clips = 0
        for index in range(len(generator)):
            frames, _labels = generator[index]
            clips += len(frames)
        reply({"seconds": time.perf_counter() - start, "clips": clips})


def reply(data: dict) -> None:
    protocol.write(json.dumps(data) + "\n")
    protocol.flush()


if __name__ == "__main__":
    main()
