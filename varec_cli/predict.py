"""Classifying whole video files."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from varec_cli.errors import VarecError, VideoError
from varec_cli.models.classifier import Classifier
from varec_cli.video import VIDEO_EXTENSIONS


@dataclass
class VideoPrediction:
    video: Path
    model: str
    predictions: list[tuple[str, float]]  # (label, probability), best first
    frames: int  # frames in the video
    seconds: float  # duration of the video
    probabilities: np.ndarray = field(repr=False, default=None)

    def to_json(self) -> dict:
        return {
            "video": str(self.video),
            "model": self.model,
            "predictions": [{"label": label, "score": round(score, 6)} for label, score in self.predictions],
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
        }


def collect_videos(arguments: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; directories expanded to the video files inside them (recursive, sorted).

    A missing path is kept, so that it fails alone with its own error line.
    """
    videos: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
            if not found:
                raise VideoError(f"{path}: no video files in this directory")
            videos.extend(found)
        else:
            videos.append(path)
    return videos


def classify_video(classifier: Classifier, video: str | os.PathLike, *, top_k: int = 5, clips: int = 1):
    """Average the probabilities of `clips` temporal views of the whole video (no augmentation)."""
    from varec_cli.video.reader import probe_video, read_clips

    if clips < 1:
        raise VarecError("--clips must be at least 1")
    spec = classifier.spec
    num_frames = spec.frames_for(probe_video(video).duration) if spec.fps else spec.frames
    sampled = read_clips(video, num_frames, spec.size, views=clips)
    probabilities = classifier.predict_clips(sampled.frames).mean(axis=0)
    return VideoPrediction(
        video=Path(video),
        model=classifier.name,
        predictions=classifier.top_k(probabilities, top_k),
        frames=sampled.frame_count,
        seconds=sampled.duration,
        probabilities=probabilities,
    )


def classify_videos(
    classifier: Classifier, videos: Iterable[Path], *, top_k: int = 5, clips: int = 1
) -> Iterator[tuple[Path, VideoPrediction | VarecError]]:
    """Classify each video; a bad video yields its error and the others go on."""
    for video in videos:
        try:
            yield video, classify_video(classifier, video, top_k=top_k, clips=clips)
        except VarecError as exc:
            yield video, exc
