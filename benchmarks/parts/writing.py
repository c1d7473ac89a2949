"""Part 7: writing the output video (`varec annotate -o`, `varec stream -o`), by encoder."""

from __future__ import annotations

from pathlib import Path

from harness import Context, PartResult, interleaved, part, throughput_rows
from parts.clips import clip_720p

BASELINE = "OpenCV mp4v (.mp4 before)"
SIZES = {"1280x720": (720, 1280), "320x240": (240, 320)}


def _frames(path: Path, limit: int | None) -> list:
    from varec_cli.video.reader import iter_frames

    frames = []
    for frame in iter_frames(path):
        frames.append(frame)
        if limit is not None and len(frames) >= limit:
            break
    return frames


def _writer(encoder_open, output: Path, frames: list, fps: float):
    """One whole file: open the encoder, write every frame, close (flush, index)."""

    def write() -> None:
        height, width = frames[0].shape[:2]
        encoder = encoder_open(output, fps, height, width)
        for frame in frames:
            encoder.write(frame)
        encoder.close()

    return write


@part(
    "writing",
    title="Writing the output video",
    order=7,
    description="""
Encoding the frames `varec annotate` and `varec stream -o` write, whole files from frames held in
memory (decoding and drawing excluded), with the encoders varec uses: **varec .mp4 (PyAV x264)**, what
an `.mp4` output is now (x264's `superfast` preset, CRF 20, from PyAV's FFmpeg); **OpenCV mp4v (.mp4
before)**, OpenCV's MPEG-4 Part 2, what an `.mp4` output was before and still is where PyAV has no x264
(the baseline); **OpenCV MJPG (.avi)**, an `.avi` output. The frames are those of `bigbuckbunny.mp4`
(720p H.264), and the same resized to 320x240. Cells are frames per second; the ratio is how many times
faster than the baseline (median of per-round ratios; below 1: slower). The notes give each file's size.
""",
)
def run(ctx: Context) -> PartResult:
    import cv2

    from varec_cli.video.writer import _AvEncoder, _OpenCvEncoder

    from varec_cli.video.writer import pyav_encodes

    if not pyav_encodes("h264"):
        from harness import Skipped

        raise Skipped("this PyAV's FFmpeg has no libx264: varec writes .mp4 with OpenCV's encoders here")
    result = PartResult(case_columns=["frames"])
    source = clip_720p(ctx)
    full = _frames(source, 48 if ctx.quick else None)
    out_dir = ctx.work_dir / "writing"
    out_dir.mkdir(parents=True, exist_ok=True)
    encoders = {
        BASELINE: (".mp4", lambda path, fps, h, w: _OpenCvEncoder.open(path, "mp4v", fps, h, w, quiet=False)),
        "varec .mp4 (PyAV x264)": (".mp4", lambda path, fps, h, w: _AvEncoder.open(path, "h264", fps, h, w, quiet=False)),
        "OpenCV MJPG (.avi)": (".avi", lambda path, fps, h, w: _OpenCvEncoder.open(path, "MJPG", fps, h, w, quiet=False)),
    }
    for label, (height, width) in SIZES.items():
        frames = full if full[0].shape[:2] == (height, width) else [
            cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in full
        ]
        ctx.log(f"  {label}: {len(frames)} frames")
        candidates, outputs = {}, {}
        for name, (suffix, opener) in encoders.items():
            outputs[name] = out_dir / f"{label}-{name.split()[1]}{suffix}"
            candidates[name] = _writer(opener, outputs[name], frames, 25.0)
        times = interleaved(candidates, ctx.repeats)
        case = f"{source.name} frames at {label}"
        rows = throughput_rows("encoding", case, times, BASELINE, items=len(frames), unit="frames/s")
        for row in rows:
            row.details["frames"] = len(frames)
            row.details["file_mb"] = round(outputs[row.candidate].stat().st_size / 1e6, 2)
        result.rows.extend(rows)
        sizes = ", ".join(f"{row.candidate} {row.details['file_mb']:g} MB" for row in rows)
        result.notes.append(f"**{case}** ({len(frames)} frames, 25 fps): file sizes {sizes}.")
    return result
