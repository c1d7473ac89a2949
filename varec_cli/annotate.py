"""Annotating a video: classify sliding windows, burn the label of each frame into a copy of it.

Two decoding passes, constant memory whatever the video's length:

1. *Analysis.* Frames are grabbed in order; only the frames some window samples (and, for the last
   window, its samples for the header's count and a grid between them) are decoded to pixels and shrunk to the
   model's size. A window is classified (in batches) as soon as its last frame has gone by, and frames
   older than one window are dropped. The frames are counted here: the header's count is only a hint.
2. *Writing.* Every frame is decoded again, gets its label box drawn and goes to the output's temp
   file, renamed onto the output at the end (see video.writer.AtomicVideoWriter).

Windows are `[start, end)` frame ranges: `start = 0, stride, 2*stride, ...` while the window fits,
plus one window ending on the last frame when the grid does not; a video shorter than a window is one
window. Each window's frames are sampled with `video.reader.sample_frame_indices`. A frame's
probabilities are the mean of the probabilities of all windows covering it. `window=0` classifies the
whole video once, exactly as `varec predict` does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from varec_cli.errors import VarecError, VideoError
from varec_cli.files import write_atomically
from varec_cli.models.classifier import Classifier
from varec_cli.video.display import display_unavailable
from varec_cli.video.overlay import Box
from varec_cli.video.writer import DEFAULT_FPS, AtomicVideoWriter

DEFAULT_WINDOW_SECONDS = 2.0  # when the model knows neither its clip span nor its frame rate
BATCH_WINDOWS = 8  # windows classified per model call

ProgressCallback = Callable[[str, int, "int | None"], None]  # (stage, frames done, frames expected)
WarningCallback = Callable[[str], None]


@dataclass(frozen=True)
class WindowResult:
    start: int  # first frame
    end: int  # one past the last frame
    probabilities: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Segment:
    """A run of frames with the same top label; `score` is that label's mean probability over it."""

    start: float  # seconds
    end: float
    label: str
    score: float

    def to_json(self) -> dict:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "label": self.label, "score": round(self.score, 4)}


@dataclass
class Annotation:
    video: Path
    output: Path
    model: str
    frames: int  # frames written (= frames in the input)
    fps: float  # the input's frame rate, also the output's
    height: int
    width: int
    codec: str
    window_frames: int | None  # None: the whole video as one window
    stride_frames: int | None
    windows: list[WindowResult]
    segments: list[Segment]
    label_box: Box  # the union of the boxes drawn on all frames
    header_frames: int  # what the container header claimed
    timeline: Path | None = None
    warnings: list[str] = field(default_factory=list)
    audio: str | None = None  # the video's sound as written: its codec, "aac (from pcm_s16le)" where encoded
    audio_left_out: bool = False  # the video has sound that the output's format does not take (.avi)

    @property
    def seconds(self) -> float:
        return self.frames / self.fps if self.fps > 0 else 0.0


def default_window_seconds(classifier: Classifier) -> float:
    """The model's clip span: `clip_seconds` from its file, else frames / fps, else 2 s."""
    spec = classifier.spec
    if spec.clip_seconds and spec.clip_seconds > 0:
        return float(spec.clip_seconds)
    if spec.fps and spec.fps > 0:
        return spec.frames / spec.fps
    return DEFAULT_WINDOW_SECONDS


def window_and_stride_frames(
    classifier: Classifier, fps: float, window: float | None = None, stride: float | None = None
) -> tuple[int | None, int | None]:
    """(window, stride) in frames of a video at `fps`; (None, None) for `window == 0` (whole video)."""
    if window is not None and window < 0:
        raise VarecError("--window must be 0 (the whole video) or a positive number of seconds")
    if stride is not None and stride <= 0:
        raise VarecError("--stride must be a positive number of seconds")
    if window == 0:
        return None, None
    window_s = default_window_seconds(classifier) if window is None else float(window)
    stride_s = window_s / 2 if stride is None else float(stride)
    if stride_s > window_s + 1e-9:
        raise VarecError(
            f"--stride ({stride_s:g} s) is longer than the window ({window_s:g} s): some frames would have no window"
        )
    # Longer than any video is the whole video; capped where frame arithmetic stays in int32/int64.
    window_frames = max(1, int(round(min(2**31 - 1, window_s * fps))))  # min first: window_s * fps may be inf
    stride_frames = max(1, min(window_frames, int(round(min(2**31 - 1, stride_s * fps)))))
    return window_frames, stride_frames


def check_paths(video: str | os.PathLike, output: str | os.PathLike, timeline: str | os.PathLike | None = None):
    """Every check that can fail before any decoding: output extension, self-overwrite, writable
    directories, the input is a video whose frames can be encoded. Returns the input's VideoInfo."""
    from varec_cli.video.reader import probe_video
    from varec_cli.video.writer import check_encodable, check_output_path, check_writable_file, same_file

    check_output_path(output, video)
    if timeline is not None:
        if same_file(Path(timeline), Path(output)):
            raise VarecError(f"{timeline}: the timeline and the output video are the same file")
        check_writable_file(timeline, video, what="the timeline")
    info = probe_video(video)
    check_encodable(video, info.height, info.width)
    return info


# --- pass 1: windows -------------------------------------------------------------------------------


def _nearest(store: dict[int, np.ndarray], index: int) -> np.ndarray:
    if index in store:
        return store[index]
    keys = np.fromiter(store, dtype=np.int64)
    return store[int(keys[np.abs(keys - index).argmin()])]


def clip_frames(classifier: Classifier, window_frames: int, fps: float) -> int:
    """Frames sampled from a window, as `varec predict` samples a video of that length: the model's
    fixed count, or for models that take frames at a rate (ClipSpec.fps) that rate over the window."""
    return classifier.spec.frames_for(window_frames / fps)


def _analyse_windows(
    video: Path,
    classifier: Classifier,
    window: int,
    stride: int,
    fps: float,
    header_frames: int,
    on_progress: ProgressCallback | None,
) -> tuple[list[WindowResult], int]:
    """Stream the video once; returns the classified windows and the true frame count N. Windows
    start every `stride` frames; one more ends on the last frame when the grid misses it."""
    from varec_cli.video.frames import open_frame_capture
    from varec_cli.video.reader import sample_frame_indices, to_model_frame

    spec = classifier.spec
    frames = clip_frames(classifier, window, fps)
    results: list[WindowResult] = []
    batch: list[tuple[int, int, np.ndarray]] = []

    def flush():
        if batch:
            probabilities = classifier.predict_clips(np.stack([clip for _, _, clip in batch]))
            results.extend(WindowResult(a, b, p) for (a, b, _), p in zip(batch, probabilities))
            batch.clear()

    def finish(start: int, end: int, indices: np.ndarray):
        if batch and len(batch[0][2]) != len(indices):  # a short video's window: another clip length
            flush()
        batch.append((start, end, np.stack([_nearest(store, int(i)) for i in indices])))
        if len(batch) >= BATCH_WINDOWS:
            flush()

    # The last window's samples depend on the true frame count, known only once the frames run out.
    # Within the last window the header announces, convert its samples for that count (exact when
    # the header is right) and a grid of half their spacing (the nearest frames when it claims too
    # many); past the announced end (or without a count), every frame. Never more than a window.
    tail_from = max(0, header_frames - window) if header_frames > 0 else 0
    tail: set[int] = set()
    grid = 1
    if header_frames > 0:
        tail_count = clip_frames(classifier, header_frames - tail_from, fps)
        tail = {int(i) for i in sample_frame_indices(header_frames, tail_count, start=tail_from, end=header_frames)[0]}
        grid = max(1, (header_frames - tail_from) // tail_count // 2)

    def in_tail(index: int) -> bool:
        if index < tail_from:
            return False
        return header_frames <= 0 or index >= header_frames or index in tail or (index - tail_from) % grid == 0

    pending: dict[tuple[int, int], np.ndarray] = {}  # regular windows still collecting frames
    needed: set[int] = set()
    store: dict[int, np.ndarray] = {}  # model-sized RGB frames of the last `window` frames only
    cap = open_frame_capture(video)
    index = 0
    try:
        while cap.grab():
            if index % stride == 0:
                indices = sample_frame_indices(index + window, frames, start=index, end=index + window)[0]
                pending[(index, index + window)] = indices
                needed.update(int(i) for i in indices)
            if index in needed or in_tail(index):
                ok, frame = cap.retrieve()
                if ok and frame is not None:
                    store[index] = to_model_frame(frame, spec.size)
            store.pop(index - window, None)
            done = [key for key in pending if key[1] == index + 1]
            for key in done:
                if store:
                    finish(*key, pending.pop(key))
                else:
                    raise VideoError(f"{video}: no decodable frame in frames {key[0]}-{key[1] - 1}")
            if done:
                needed = {int(i) for indices in pending.values() for i in indices}
            index += 1
            if on_progress is not None:  # the header's count as the total, while it holds
                on_progress("analysing", index, header_frames if header_frames >= index else None)
    finally:
        cap.release()
    total = index
    if on_progress is not None:  # the true count, where the header said another
        on_progress("analysing", total, total)
    if total == 0 or not store:
        raise VideoError(f"{video}: no decodable frame in this video")
    last_end = max((r.end for r in results), default=0)
    last_end = max([last_end] + [b for _, b, _ in batch])
    if last_end < total:  # the window ending on the last frame (the whole video when it is short)
        start = max(0, total - window)
        count = clip_frames(classifier, total - start, fps)
        finish(start, total, sample_frame_indices(total, count, start=start, end=total)[0])
    flush()
    results.sort(key=lambda r: (r.start, r.end))
    return results, total


def _analyse_whole(video: Path, classifier: Classifier, on_progress: ProgressCallback | None):
    from varec_cli.predict import classify_video

    if on_progress is not None:
        on_progress("analysing", 0, None)
    prediction = classify_video(classifier, video, top_k=1)
    if on_progress is not None:
        on_progress("analysing", prediction.frames, prediction.frames)
    return [WindowResult(0, prediction.frames, prediction.probabilities)], prediction.frames


# --- from windows to frames -------------------------------------------------------------------------


def frame_pieces(windows: list[WindowResult], total: int) -> list[tuple[int, int, np.ndarray]]:
    """Split [0, total) where windows start or end; each piece gets the mean of the windows covering it."""
    if not windows:
        return []
    starts = np.array([w.start for w in windows])
    ends = np.array([w.end for w in windows])
    probabilities = np.stack([w.probabilities for w in windows]).astype(np.float64)
    bounds = sorted({0, total, *starts.tolist(), *ends.tolist()})
    bounds = [b for b in bounds if 0 <= b <= total]
    pieces = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        covering = (starts <= a) & (ends > a)
        if not covering.any():  # cannot happen with stride <= window; nearest window, to be safe
            covering = np.zeros(len(windows), bool)
            covering[int(np.abs((starts + ends) / 2 - a).argmin())] = True
        pieces.append((a, b, probabilities[covering].mean(axis=0).astype(np.float32)))
    return pieces


def segments_from_pieces(pieces, labels: list[str], fps: float) -> list[Segment]:
    """Merge consecutive pieces with the same top label; the score is its frame-weighted mean probability."""
    segments: list[Segment] = []
    run = None  # [start, end, label index, weighted sum]
    for a, b, p in pieces:
        best = int(np.argmax(p))
        if run is not None and run[2] == best:
            run[1] = b
            run[3] += float(p[best]) * (b - a)
        else:
            if run is not None:
                segments.append(_segment(run, labels, fps))
            run = [a, b, best, float(p[best]) * (b - a)]
    if run is not None:
        segments.append(_segment(run, labels, fps))
    return segments


def _segment(run, labels, fps) -> Segment:
    a, b, best, weighted = run
    return Segment(start=a / fps, end=b / fps, label=labels[best], score=weighted / max(b - a, 1))


def write_timeline(segments: list[Segment], path: str | os.PathLike) -> Path:
    """`[{"start", "end", "label", "score"}]` as JSON, written to a temp file and renamed."""
    text = json.dumps([s.to_json() for s in segments], indent=2) + "\n"
    return write_atomically(path, text.encode("utf-8"))


# --- pass 2: drawing and writing ---------------------------------------------------------------------


class _Preview:
    """cv2.imshow of each written frame; never fatal: without a display it warns and turns itself off."""

    TITLE = "varec annotate"

    def __init__(self, warn: Callable[[str], None]):
        self.warn = warn
        reason = display_unavailable()
        self.enabled = reason is None
        if reason:
            warn(f"--show: {reason}; writing the video without showing it")

    def show(self, frame: np.ndarray) -> None:
        if not self.enabled:
            return
        import cv2

        try:
            cv2.imshow(self.TITLE, frame)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as exc:
            self.enabled = False
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "cv2.imshow failed"
            self.warn(f"--show: cannot open a window ({reason}); writing the video without showing it")
            return
        if key in (ord("q"), 27):  # q or Esc closes the preview; writing goes on
            self.close()

    def close(self) -> None:
        if self.enabled:
            self.enabled = False
            import cv2

            try:
                cv2.destroyWindow(self.TITLE)
                cv2.waitKey(1)
            except cv2.error:
                pass


def _write_annotated(
    video: Path,
    output: Path,
    classifier: Classifier,
    pieces,
    total: int,
    fps: float,
    size: tuple[int, int],
    *,
    top_k: int,
    font_scale: float | None,
    preview: _Preview | None,
    on_progress: ProgressCallback | None,
    exact: bool = True,
    pixel_aspect: tuple[int, int] = (1, 1),
) -> tuple[AtomicVideoWriter, Box, int]:
    """Draw each frame's piece and write it, with the video's sound where the output takes it; returns
    the writer (its codec and audio), the union of the label boxes and the frames written. `exact`:
    the frames must be the `total` the analysis read (frames are placed by index). Otherwise (one
    piece for the whole video, read by another decoder) the last piece labels any frames past
    `total`, and fewer frames are no error."""
    from varec_cli.video.overlay import draw_predictions
    from varec_cli.video.reader import iter_frames

    label_box = Box(0, 0, 0, 0)
    piece = -1
    lines: list[tuple[str, float]] = []
    frames = iter_frames(video)
    try:
        with AtomicVideoWriter(output, fps, size, audio_from=video, pixel_aspect=pixel_aspect) as writer:
            index = 0
            for frame in frames:
                if index >= total and exact:
                    raise VideoError(f"{video}: more frames on the second reading than on the first ({total})")
                if frame.shape[:2] != size:
                    raise VideoError(f"{video}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, not {size[1]}x{size[0]}")
                while piece < 0 or (pieces[piece][1] <= index and piece + 1 < len(pieces)):  # next piece
                    piece += 1  # its lines computed once
                    lines = classifier.top_k(pieces[piece][2], top_k)
                label_box = label_box.union(draw_predictions(frame, lines, font_scale=font_scale, bars=top_k > 1))
                writer.write(frame)
                if preview is not None:
                    preview.show(frame)
                index += 1
                if on_progress is not None:  # another decoder's count is no total to trust
                    on_progress("writing", index, total if exact else None)
            if index != total and exact:
                raise VideoError(f"{video}: {index} frames on the second reading, {total} on the first")
            if on_progress is not None and not exact:
                on_progress("writing", index, index)
        return writer, label_box, index
    finally:
        frames.close()
        if preview is not None:
            preview.close()


# --- the job ------------------------------------------------------------------------------------------


def annotate_video(
    classifier: Classifier,
    video: str | os.PathLike,
    output: str | os.PathLike,
    *,
    window: float | None = None,
    stride: float | None = None,
    top_k: int = 1,
    font_scale: float | None = None,
    timeline: str | os.PathLike | None = None,
    show: bool = False,
    on_progress: ProgressCallback | None = None,
    on_warning: WarningCallback | None = None,
) -> Annotation:
    """Write `output`: `video` with each frame's predicted action drawn on it (see the module docstring).

    `window`/`stride` are in seconds (None: the model's clip span and half of it; window 0: the whole
    video once). Nothing is written unless everything succeeds. Warnings (no display for `show`, an
    unknown frame rate, odd frame sizes) go to `on_warning` and into the result.
    """
    video, output = Path(video), Path(output)
    if top_k < 1:
        raise VarecError("--top-k must be at least 1")
    if font_scale is not None and font_scale <= 0:
        raise VarecError("--font-scale must be positive")
    info = check_paths(video, output, timeline)
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        if on_warning is not None:
            on_warning(message)

    fps = info.fps
    if fps <= 0:
        fps = DEFAULT_FPS
        warn(f"{video}: the container gives no believable frame rate; assuming {DEFAULT_FPS:g} fps")
    window_frames, stride_frames = window_and_stride_frames(classifier, fps, window, stride)
    size = (info.height, info.width)
    from varec_cli.video.writer import encoded_size, odd_size_warning, square_pixels_warning

    written = encoded_size(*size)  # what the output really is, reported as such below
    if (odd := odd_size_warning(video, *size)) is not None:
        warn(odd)
    if (squeezed := square_pixels_warning(video, *size, info.pixel_aspect, output)) is not None:
        warn(squeezed)

    if window_frames is None:
        windows, total = _analyse_whole(video, classifier, on_progress)
    else:
        windows, total = _analyse_windows(
            video, classifier, window_frames, stride_frames, fps, info.frame_count, on_progress
        )
    pieces = frame_pieces(windows, total)

    preview = _Preview(warn) if show else None
    writer, label_box, frames_written = _write_annotated(
        video, output, classifier, pieces, total, fps, size,
        top_k=min(top_k, len(classifier.labels)), font_scale=font_scale, preview=preview, on_progress=on_progress,
        exact=window_frames is not None, pixel_aspect=info.pixel_aspect,
    )
    if frames_written != total:  # the whole video as one window: predict's decoder counted otherwise
        total = frames_written
        windows = [WindowResult(0, total, windows[0].probabilities)]
        pieces = frame_pieces(windows, total)
    segments = segments_from_pieces(pieces, classifier.labels, fps)
    from varec_cli.video.reader import cut_short_warning

    if (cut_short := cut_short_warning(video, total, fps, "labelled")) is not None:
        warn(cut_short)
    timeline_path = write_timeline(segments, timeline) if timeline is not None else None
    return Annotation(
        video=video, output=output, model=classifier.name, frames=total, fps=fps,
        height=written[0], width=written[1], codec=writer.codec, audio=writer.audio, audio_left_out=writer.audio_left_out,
        window_frames=window_frames, stride_frames=stride_frames, windows=windows, segments=segments,
        label_box=label_box, header_frames=info.frame_count, timeline=timeline_path, warnings=warnings,
    )
