"""Classifying whole video files."""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from varec_cli.errors import VarecError, VideoError
from varec_cli.models.classifier import Classifier
from varec_cli.text import counted
from varec_cli.video import find_videos
from varec_cli.video.reader import check_video_file


@dataclass
class VideoPrediction:
    video: Path
    model: str
    predictions: list[tuple[str, float]]  # (label, probability), best first
    frames: int  # frames in the video
    seconds: float | None  # duration of the video; None where it states no believable frame rate
    probabilities: np.ndarray = field(repr=False, default=None)
    warning: str | None = None  # something the user should know about this result

    def to_json(self) -> dict:
        record = {
            "video": str(self.video),
            "model": self.model,
            "predictions": [{"label": label, "score": round(score, 6)} for label, score in self.predictions],
            "frames": self.frames,
            "seconds": None if self.seconds is None else round(self.seconds, 3),
        }
        if self.warning:
            record["warning"] = self.warning
        return record


def collect_videos(arguments: Iterable[str | os.PathLike]) -> tuple[list[Path], list[VideoError], list[str]]:
    """Files as given; directories expanded to the video files inside them (recursive, sorted).

    A missing path, a URL and a directory without videos are errors of their own (returned beside the
    videos): each is told on its own line, the others are still classified, and when nothing is left
    no model is fetched or loaded for nothing. A folder inside a directory that cannot be read (a
    disk's lost+found) is a warning: the videos found are what was asked for.
    """
    videos: list[Path] = []
    problems: list[VideoError] = []
    warnings: list[str] = []
    for argument in arguments:
        if not str(argument).strip():  # Path("") is the working folder: not searched for a script's unset "$CLIP"
            problems.append(VideoError("an empty video name: give a video file or a folder"))
            continue
        path = Path(argument)
        if not path.exists() and re.match(r"[a-zA-Z][a-zA-Z0-9+.-]+://", str(argument)):  # a scheme, not C://
            problems.append(VideoError(
                f"{argument}: predict reads video files; download it first, or label it live with "
                f"`varec stream --source {argument}`"
            ))
            continue
        if path.is_dir():
            unreadable: list[tuple[Path, str]] = []
            found = find_videos(path, unreadable)
            if unreadable and unreadable[0][0] == path:  # the folder given: an error, as a missing file is
                problems.append(VideoError(f"{path}: cannot read this folder ({unreadable[0][1]})"))
                continue
            warnings.extend(f"{folder}: cannot read this folder ({why}); the videos in it are left out" for folder, why in unreadable)
            if not found:
                left_out = [p for p in path.rglob("*") if p.suffix.lower() in (".ts", ".mts") and p.is_file()]
                problems.append(VideoError(f"{path}: no video files in this directory" + (
                    f", as far as it could be read ({counted(len(unreadable), 'folder')} in it could not)" if unreadable else ""
                ) + (
                    f" ({len(left_out)} .ts/.mts file{'s' if len(left_out) > 1 else ''} left out: folder searches "
                    "skip that extension, which TypeScript sources share; give such videos one by one)"
                    if left_out else ""
                )))
            videos.extend(found)
        else:
            try:
                check_video_file(path)  # missing, a pipe, empty: told before any model is loaded
            except VideoError as problem:
                problems.append(problem)
                continue
            videos.append(path)
    return videos, problems, warnings


class ClipPrefetcher:
    """Decodes the clips of `videos` in a background thread, in order, up to `ahead` videos ahead:
    decoding overlaps model loading and inference (OpenCV releases the GIL while it decodes)."""

    def __init__(self, videos: Iterable[Path], frames: int, size: tuple[int, int], views: int, ahead: int = 2):
        self.frames, self.size, self.views = frames, tuple(size), views
        self._queue: queue.Queue = queue.Queue(maxsize=ahead)
        thread = threading.Thread(target=self._decode, args=(list(videos),), name="varec-decode", daemon=True)
        thread.start()

    def _decode(self, videos: list[Path]) -> None:
        from varec_cli.video.reader import read_clips

        for video in videos:
            try:
                item = read_clips(video, self.frames, self.size, views=self.views)
            except Exception as exc:  # handed to the consumer, raised there
                item = exc
            self._queue.put((video, item))

    def take(self, video: Path):
        """The clips of the next video, which must be `video`; its error if decoding failed."""
        decoded, item = self._queue.get()
        if decoded != video:
            raise RuntimeError(f"clips asked for {video} out of order (next is {decoded})")
        if isinstance(item, Exception):
            raise item
        return item


def prefetch_clips(model: str | os.PathLike | None, videos: list[Path], clips: int = 1) -> ClipPrefetcher | None:
    """Start decoding `videos` for `model` (a --model value: a model file, or a registry name already
    in the cache; clip spec read without Keras), or None when that is not a readable varec model file
    on this machine (opening the model will fetch it, or say why it cannot)."""
    from varec_cli.models.modelfile import read_metadata
    from varec_cli.weights.resolve import local_model_path

    if model is None or clips < 1 or (path := local_model_path(model)) is None:
        return None
    try:
        metadata = read_metadata(path)
    except VarecError:
        return None
    return ClipPrefetcher(videos, metadata.frames, metadata.size, clips)


def classify_video(
    classifier: Classifier,
    video: str | os.PathLike,
    *,
    top_k: int = 5,
    clips: int = 1,
    prefetched: ClipPrefetcher | None = None,
):
    """Average the probabilities of `clips` temporal views of the whole video (no augmentation)."""
    from varec_cli.video.reader import cut_short_warning, probe_video, read_clips

    if clips < 1:
        raise VarecError("--clips must be at least 1")
    spec = classifier.spec
    if prefetched is not None:
        sampled = prefetched.take(video)
        if sampled.frames.shape[1:4] != (spec.frames, *spec.size) or len(sampled.frames) != clips:
            sampled = read_clips(video, spec.frames, spec.size, views=clips)
    else:
        num_frames = spec.frames_for(probe_video(video).duration) if spec.fps else spec.frames
        sampled = read_clips(video, num_frames, spec.size, views=clips)
    probabilities = classifier.predict_clips(sampled.frames).mean(axis=0)
    return VideoPrediction(
        video=Path(video),
        model=classifier.name,
        predictions=classifier.top_k(probabilities, top_k),
        frames=sampled.frame_count,
        seconds=sampled.duration if sampled.fps > 0 else None,
        probabilities=probabilities,
        warning=cut_short_warning(video, sampled.frame_count, sampled.fps, "classified from", stated=sampled.stated),
    )


def classify_videos(
    classifier: Classifier,
    videos: Iterable[Path],
    *,
    top_k: int = 5,
    clips: int = 1,
    prefetched: ClipPrefetcher | None = None,
) -> Iterator[tuple[Path, VideoPrediction | VarecError]]:
    """Classify each video; a bad video yields its error and the others go on. `prefetched`, if
    given, decodes exactly these videos in this order (see prefetch_clips)."""
    for video in videos:
        try:
            yield video, classify_video(classifier, video, top_k=top_k, clips=clips, prefetched=prefetched)
        except VarecError as exc:
            yield video, exc
