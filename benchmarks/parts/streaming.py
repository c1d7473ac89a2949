"""Part 4: streaming. varec's ring-buffer session against re-running the whole window per frame, and
against the frame encoder's own compiled single-frame throughput (the ceiling)."""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from pathlib import Path

import numpy as np

from harness import Context, PartResult, Row, Target, interleaved, median, paired_ratio, part, run_python, spread
from harness import save_random_model, throughput_rows
from parts.clips import clip_720p, describe

FPS = 25.0
TARGET = 0.8
MODELS = {  # name: how it is built; clip_seconds as `varec train` records it (spaces the ring buffer's reads)
    "scratch": {"backbone": "scratch", "frames": 6, "size": 32, "units": 16, "classes": 3, "clip_seconds": 1.0},
    "mobilenet_v2": {
        "backbone": "mobilenet_v2", "frames": 16, "size": 224, "units": 256, "classes": 101, "clip_seconds": 2.0,
    },
}
FRAMES_PER_ROUND = {  # (per-frame candidates, whole-window re-run); quick halves them
    "scratch": (200, 60),
    "mobilenet_v2": (40, 4),
}
# The ceiling and the ring buffer are timed together, in alternating blocks of this many frames (see
# paired_blocks): both then see the same moments of a noisy machine.
PAIRED_BLOCK = {"scratch": 20, "mobilenet_v2": 4}
REALTIME_SECONDS = {"scratch": 1.6, "mobilenet_v2": 2.8}  # --max-seconds of the paced run: past the window fill

CEIL = "encoder alone, compiled (ceiling)"
RING = "ring buffer (session.push)"
WHOLE = "whole window re-run, compiled"
HEAD = "GRU head alone, compiled"
EAGER = "encoder eager `model(x)`"
PREDICT = "encoder `model.predict(x)`"
DECODE = "720p decode + resize alone"
LOOP = "run_stream: 720p file, decode + resize + push"
CLI = "`varec stream --no-display` (own process)"
REALTIME = "run_stream --realtime (25 fps, paced)"


def describe_model(spec: dict) -> str:
    return (
        f"{spec['backbone']} + GRU({spec['units']}), {spec['frames']} frames of {spec['size']} px, "
        f"clip_seconds {spec['clip_seconds']:g}"
    )


def build_models(ctx: Context) -> dict[str, Path]:
    """The benchmark's stream models (random weights), saved as varec model files once."""
    out = ctx.work_dir / "models"
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, spec in MODELS.items():
        path = out / f"stream-{name}-{spec['frames']}x{spec['size']}.keras"
        paths[name] = path
        if path.exists():
            continue
        ctx.log(f"  building {path.name} (random weights)")
        save_random_model(
            path, spec["backbone"], spec["frames"], spec["size"], spec["classes"], units=spec["units"],
            clip_seconds=spec["clip_seconds"],
        )
    return paths


def model_frames(clip: Path, size: int, count: int = 64) -> list[np.ndarray]:
    """The clip's first `count` frames as the model takes them (RGB, size x size), via varec's
    to_model_frame."""
    import cv2

    from varec_cli.video.reader import to_model_frame

    cap = cv2.VideoCapture(str(clip))
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(to_model_frame(frame, (size, size)))
    cap.release()
    if not frames:
        raise RuntimeError(f"{clip}: no frame decoded")
    return frames


SUMMARY_SPEED = re.compile(r"speed\s+([\d.]+) frames/s")
SUMMARY_LATENCY = re.compile(r"latency\s+([\d.]+) ms")


def parse_summary(text: str) -> tuple[float, float | None]:
    """(frames/s, latency ms or None) from `varec stream`'s summary on stderr."""
    speed = SUMMARY_SPEED.search(text)
    if speed is None:
        raise ValueError(f"no speed line in the summary:\n{text[-1000:]}")
    latency = SUMMARY_LATENCY.search(text)
    return float(speed.group(1)), float(latency.group(1)) if latency else None


def measure_model(ctx: Context, name: str, path: Path, clip: Path):
    """Per-frame seconds per candidate (rounds), latency seconds per candidate (rounds), notes."""
    from varec_cli.models.classifier import load_classifier
    from varec_cli.models.streaming import compiled_call, stream_functions
    from varec_cli.stream import StreamOptions, open_source, run_stream

    spec = MODELS[name]
    classifier = load_classifier(path)
    frames = model_frames(clip, spec["size"])
    per_frame, whole_frames = FRAMES_PER_ROUND[name]
    if ctx.quick:
        per_frame, whole_frames = max(per_frame // 2, 2), max(whole_frames // 2, 2)

    started = time.perf_counter()
    functions = stream_functions(classifier)  # what the first start_stream traces
    trace_stream = time.perf_counter() - started
    window_shape = (1, spec["frames"], spec["size"], spec["size"], 3)
    started = time.perf_counter()
    whole = compiled_call(classifier.model, [window_shape])
    whole(np.zeros(window_shape, np.float32))
    trace_whole = time.perf_counter() - started

    latency: dict[str, list[float]] = {n: [] for n in (CEIL, RING, WHOLE, HEAD, EAGER, PREDICT, LOOP, CLI, REALTIME)}
    cursor = {"i": 0}

    def next_frames(n: int) -> list[np.ndarray]:
        start = cursor["i"]
        cursor["i"] += n
        return [frames[(start + k) % len(frames)] for k in range(n)]

    def timed_block(step, count: int) -> list[float]:
        """Seconds of each of `count` calls of `step` on the next frames."""
        times = []
        for frame in next_frames(count):
            t0 = time.perf_counter()
            step(frame)
            times.append(time.perf_counter() - t0)
        return times

    def per_frame_candidate(label: str, count: int, step):
        def call() -> float:
            mean = float(np.mean(timed_block(step, count)))
            latency[label].append(mean)
            return mean

        return call

    def ceiling(frame):
        functions.encode(frame[None])

    encoder, _ = classifier.halves()

    def eager(frame):  # what a per-frame loop calling the Keras model directly pays
        np.asarray(encoder(frame[None].astype(np.float32), training=False))

    def keras_predict(frame):
        encoder.predict(frame[None], verbose=0)

    features = np.random.default_rng(0).standard_normal((1, spec["frames"], functions.feature_dim), np.float32)

    def head_only(frame):
        functions.head(features)

    session = classifier.start_stream(fps=FPS)
    clock = {"n": 0}

    def push(frame):
        probabilities = session.push(frame, timestamp=clock["n"] / FPS)
        clock["n"] += 1
        return probabilities

    filled = 0
    while push(frames[clock["n"] % len(frames)]) is None:  # until the buffer spans the window
        filled += 1

    def ring(frame):
        if push(frame) is None:
            raise RuntimeError("the ring buffer gave no prediction on a full window")

    window: deque[np.ndarray] = deque(next_frames(spec["frames"]), maxlen=spec["frames"])

    def rerun(frame):
        window.append(frame)
        whole(np.stack(window)[None])

    def decode_only() -> float:
        import cv2

        from varec_cli.video.reader import to_model_frame

        cap = cv2.VideoCapture(str(clip))
        count, started = 0, time.perf_counter()
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            to_model_frame(frame, (spec["size"], spec["size"]))
            count += 1
        cap.release()
        return (time.perf_counter() - started) / count

    def loop() -> float:
        summary = run_stream(classifier, open_source(str(clip)), StreamOptions())
        latency[LOOP].append(summary.latency_ms / 1000)
        return summary.seconds / summary.frames_processed

    def realtime() -> float:
        options = StreamOptions(realtime=True, max_seconds=REALTIME_SECONDS[name])
        summary = run_stream(classifier, open_source(str(clip)), options)
        if summary.latency_ms is None:
            raise RuntimeError("--realtime run gave no prediction")
        latency[REALTIME].append(summary.latency_ms / 1000)
        return summary.seconds

    def cli() -> float:
        done = run_python(["-m", "varec_cli", "stream", "--source", str(clip), "--model", str(path), "--no-display"])
        if done.returncode != 0:
            raise RuntimeError(f"varec stream failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        fps, latency_ms = parse_summary(done.stderr)
        if latency_ms is not None:
            latency[CLI].append(latency_ms / 1000)
        return 1.0 / fps

    block = min(PAIRED_BLOCK[name], per_frame)
    ring_rounds: list[float] = []

    def paired_blocks() -> float:
        """The ceiling and the ring buffer, `per_frame` frames each, in alternating blocks of `block`
        frames, which of the two goes first alternating too (after one untimed call of each).

        Each round's two means then come from the same stretch of time, and neither absorbs alone
        the after-effects of the candidate before it. Measured in-process, five rounds a run: scratch
        (three runs) 0.82, 0.82 and 0.83 paired, single rounds 0.80-0.84, against 0.82, 0.80 and 0.81
        timed apart, single rounds 0.76-0.83; mobilenet_v2 0.94 both ways. Timed apart among the other
        candidates, as this part did before, mobilenet_v2 came out at 0.87-0.90. Returns the
        ceiling's mean; the ring buffer's goes to ring_rounds."""
        spent: dict[str, list[float]] = {CEIL: [], RING: []}
        for frame in next_frames(1):  # untimed: whatever ran before this round hits neither
            ceiling(frame)
            ring(frame)
        first = len(ring_rounds) % 2  # which of the two opens the round alternates from round to round
        for index in range(max(1, per_frame // block)):
            pair = ((CEIL, ceiling), (RING, ring)) if (index + first) % 2 == 0 else ((RING, ring), (CEIL, ceiling))
            for label, step in pair:
                spent[label].extend(timed_block(step, block))
        means = {label: float(np.mean(values)) for label, values in spent.items()}
        latency[CEIL].append(means[CEIL])
        latency[RING].append(means[RING])
        ring_rounds.append(means[RING])
        return means[CEIL]

    candidates = {
        CEIL: paired_blocks,
        WHOLE: per_frame_candidate(WHOLE, whole_frames, rerun),
        HEAD: per_frame_candidate(HEAD, per_frame, head_only),
        EAGER: per_frame_candidate(EAGER, whole_frames, eager),
        PREDICT: per_frame_candidate(PREDICT, whole_frames, keras_predict),
        DECODE: decode_only,
        LOOP: loop,
        CLI: cli,
        REALTIME: realtime,
    }
    ctx.log(f"  {name}: {describe_model(spec)}, {ctx.repeats} rounds")
    times = interleaved(candidates, ctx.repeats)
    times[RING] = ring_rounds[len(ring_rounds) - ctx.repeats :]  # without the warm-up round's
    for values in latency.values():
        del values[: len(values) - ctx.repeats]  # the warm-up round's
    facts = {"trace_stream_s": trace_stream, "trace_whole_s": trace_whole, "fill_frames": filled + 1}
    return times, latency, facts


@part(
    "streaming",
    title="Streaming: the ring buffer",
    order=4,
    description=f"""
Frame-by-frame classification as `varec stream` does it, one frame at a time, with varec model files
(random weights): a tiny **scratch** model and **mobilenet_v2** at 224 px over 16 frames (see each
table's case). The frames are `bigbuckbunny.mp4` (1280x720 H.264, 25 fps) resized by
`to_model_frame`, pushed at {FPS:g} fps timestamps. The baseline is the ceiling: the frame encoder
alone, compiled (`models/streaming.py: compiled_call`, what every stream step contains, its weights
folded in as constants as the step's are; under XLA where the stream's own calls are, see
docs/stream.md), one frame per call; no streaming path can beat it by more than the head's cost. **{RING}** is
`classifier.start_stream(fps=...)` then `session.push(frame, timestamp)` per frame on a full window:
one compiled call that runs the CNN on the new frame and the GRU over the ring buffer's features.
The two are timed together in each round, in alternating blocks of frames ({PAIRED_BLOCK['scratch']} for scratch,
{PAIRED_BLOCK['mobilenet_v2']} for mobilenet_v2; which of the two goes first alternates too), so that both see the
same moments of a shared machine.
**{WHOLE}** is the naive alternative: the whole model, compiled, on the last N frames for every frame.
**{HEAD}** (the head's share of a step), **{EAGER}** and **{PREDICT}** (the encoder called per frame
the two uncompiled ways many demos do) and **{DECODE}** (`cv2` read + `to_model_frame` of every
frame of the file, what the capture thread does) are context, not streaming paths.
**run_stream** is `varec stream`'s loop in-process over the 720p file (capture thread decoding,
`to_model_frame`, push; every frame, in order), and **`varec stream`** the command itself in its own
process (its summary's frames/s; start-up not counted there). Frames per second: frames ÷ median time
per frame; the ratio is the per-round ratio to the ceiling, median over rounds. Latency: mean time
from having a frame to having its label; for the two file runs it is the summary's capture-to-label
latency, which includes the wait in the two-frame decode queue, and **{REALTIME}** is `run_stream`
pacing the file at its frame rate as a live camera would (the latency a user sees).
""",
)
def run(ctx: Context) -> PartResult:
    result = PartResult()
    # Each compiled_call is a tf.function of its own; tracing eight of them (two models, each with the
    # whole-model baseline) makes TensorFlow warn about retracing, which is expected here.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    clip = clip_720p(ctx)
    clip_label, _ = describe(clip)
    paths = build_models(ctx)
    for name, path in paths.items():
        spec = MODELS[name]
        times, latency, facts = measure_model(ctx, name, path, clip)
        case = describe_model(spec)
        throughput = {k: times[k] for k in (CEIL, RING, WHOLE, HEAD, EAGER, PREDICT, LOOP, CLI, DECODE)}
        rows = throughput_rows(f"frames/s, {name}", case, throughput, CEIL, unit="frames/s")
        result.rows.extend(rows)
        for label, values in latency.items():
            if not values or label in (HEAD, EAGER, PREDICT):
                continue
            ceiling = latency[CEIL]
            ratio = 1.0 if label == CEIL else paired_ratio(values, ceiling[: len(values)])
            result.rows.append(
                Row(f"latency (ms), {name}", case, label, 1000 * median(values), "ms", ratio,
                    None if label == CEIL else CEIL, spread(values))
            )
        ring = next(r for r in rows if r.candidate == RING)
        result.targets.append(
            Target(
                f"streaming >= {TARGET}x the backbone's compiled single-frame throughput ({name})",
                f"{ring.ratio_vs_baseline:.2f}x ({ring.value:.0f} vs {1 / median(times[CEIL]):.0f} frames/s)",
                ring.ratio_vs_baseline >= TARGET,
            )
        )
        loop = next(r for r in rows if r.candidate == LOOP)
        cli = next(r for r in rows if r.candidate == CLI)
        ms = {k: 1000 * median(v) for k, v in times.items()}
        result.notes.append(
            f"**{name}**: a ring-buffer step takes {ms[RING]:.2f} ms, the encoder alone {ms[CEIL]:.2f} ms and "
            f"the GRU head alone {ms[HEAD]:.2f} ms (each compiled call pays TensorFlow's fixed per-call "
            f"dispatch cost; the step pays it once for both); re-running the whole window costs "
            f"{ms[WHOLE]:.1f} ms per frame, {ms[WHOLE] / ms[RING]:.1f}x a ring-buffer step. On the 720p file "
            f"({clip_label}) `run_stream` processes {loop.value:.0f} frames/s in-process and `varec stream` "
            f"{cli.value:.0f} frames/s, with decoding + resizing alone at {1000 / ms[DECODE]:.0f} frames/s in "
            f"the capture thread. The first label comes with frame {facts['fill_frames']} (the window spans "
            f"{spec['clip_seconds']:g} s at {FPS:g} fps). Building the compiled calls at stream start (encoder and step, weights folded in; "
            f"the head alone is built when first needed): "
            f"{facts['trace_stream_s']:.1f} s; the whole-model compiled call traces in "
            f"{facts['trace_whole_s']:.1f} s."
        )
    return result
