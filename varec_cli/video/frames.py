"""Every frame of a video file, in order, for whatever goes through all of them (annotate, stream,
and read_clips' sequential reading): OpenCV's capture where it decodes the file, else one on PyAV's
decoder.

OpenCV's wheels carry an FFmpeg without some decoders PyAV's has: AV1 above all (common in
downloads from video sites and in phone recordings), which OpenCV opens but decodes no frame of.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from varec_cli.errors import VideoError


def open_frame_capture(path: str | Path):
    """A capture of `path` before its first frame, with the part of cv2.VideoCapture's interface the
    commands use: grab(), retrieve() and read() (BGR, turned as the video is meant to be shown),
    get(CAP_PROP_FPS / _FRAME_COUNT / _FRAME_WIDTH / _FRAME_HEIGHT / _SAR_NUM / _SAR_DEN),
    isOpened() and release(). OpenCV's when it decodes the first frame, else PyAV's; VideoError when
    neither can."""
    from varec_cli.video.reader import check_video_file, open_opencv_capture

    path = Path(path)
    check_video_file(path)  # what neither can read fails here, before PyAV is tried (a pipe would block it)
    try:
        cap = open_opencv_capture(path)
    except VideoError as cannot_open:
        fallback = AvFrameCapture.open(path)
        if fallback is None:
            raise cannot_open from None
        return fallback
    if cap.grab():
        return _FirstFrameGrabbed(cap)
    cap.release()
    fallback = AvFrameCapture.open(path)
    if fallback is None:
        raise VideoError(f"{path}: no decodable frame in this video")
    return fallback


class _GrabThenRetrieve:
    """read() as cv2.VideoCapture has it, for the captures below."""

    def read(self):
        if not self.grab():
            return False, None
        return self.retrieve()


class _FirstFrameGrabbed(_GrabThenRetrieve):
    """An OpenCV capture whose first frame open_frame_capture grabbed to see that it decodes: the
    first grab() only reports it."""

    def __init__(self, cap):
        self._cap = cap
        self._pending = True

    def grab(self) -> bool:
        if self._pending:
            self._pending = False
            return True
        return self._cap.grab()

    def retrieve(self):
        return self._cap.retrieve()

    def get(self, prop: int) -> float:
        return self._cap.get(prop)

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoCapture's name
        return self._cap.isOpened()

    def release(self) -> None:
        self._cap.release()


class AvFrameCapture(_GrabThenRetrieve):
    """PyAV's decoder behind cv2.VideoCapture's interface (see open_frame_capture). Converts to BGR
    with swscale, as OpenCV does, and turns frames by the stream's display rotation, as OpenCV does
    by default. A damaged packet's frame is missing, as in OpenCV."""

    def __init__(self, container, stream):
        from av.video.reformatter import VideoReformatter

        from varec_cli.video.reader import set_av_decoder_threads, usable_cores

        self._container = container
        self._stream = stream
        set_av_decoder_threads(stream.codec_context, usable_cores())
        self._frames = self._decode()
        self._frame = None
        self._turns = 0  # the first frame's display rotation, in counterclockwise quarter turns
        self._reformatter = VideoReformatter()

    @classmethod
    def open(cls, path: Path) -> AvFrameCapture | None:
        """A capture whose first frame decodes, or None."""
        from varec_cli.video.reader import open_av_container

        container = open_av_container(path)
        if container is None:
            return None
        if not container.streams.video or container.streams.video[0].codec_context is None:
            container.close()
            return None
        capture = cls(container, container.streams.video[0])
        first = next(capture._frames, None)  # _decode ends, rather than raises, on any decoding error
        if first is None:
            capture.release()
            return None
        capture._turns = _quarter_turns(first)
        capture._frames = _chain_first(first, capture._frames)
        return capture

    def _decode(self):
        from varec_cli.video.reader import decode_av_packet

        context = self._stream.codec_context
        try:
            for packet in self._container.demux(self._stream):
                yield from decode_av_packet(context, packet)  # the last, empty packet drains the decoder
        except Exception:  # noqa: BLE001 - PyAV raises more than FFmpegError on damaged files (IndexError
            return  # on a stream that appears mid-file): the video ends where demuxing fails

    def grab(self) -> bool:
        self._frame = next(self._frames, None) if self._container is not None else None
        return self._frame is not None

    def retrieve(self):
        frame = self._frame
        if frame is None:
            return False, None
        image = self._reformatter.reformat(frame, format="bgr24", threads=1).to_ndarray()
        turns = _quarter_turns(frame)
        return True, np.ascontiguousarray(np.rot90(image, turns)) if turns else image

    def get(self, prop: int) -> float:
        import cv2

        stream = self._stream
        if prop == cv2.CAP_PROP_FPS:  # as read_clips' PyAV reading says, else FFmpeg's guess (IVF)
            from varec_cli.video.reader import av_stated_rate

            return av_stated_rate(stream) or float(stream.guessed_rate or 0.0)
        if prop == cv2.CAP_PROP_FRAME_COUNT:
            return float(stream.frames or 0)
        if prop in (cv2.CAP_PROP_FRAME_WIDTH, cv2.CAP_PROP_FRAME_HEIGHT):
            width, height = stream.codec_context.width, stream.codec_context.height
            if self._turns % 2:
                width, height = height, width
            return float(width if prop == cv2.CAP_PROP_FRAME_WIDTH else height)
        if prop == cv2.CAP_PROP_ORIENTATION_META:  # the display rotation its frames are turned by
            return float(self._turns * 90)
        if prop == cv2.CAP_PROP_ORIENTATION_AUTO:  # turned upright, as OpenCV does by default
            return 1.0
        if prop in (cv2.CAP_PROP_SAR_NUM, cv2.CAP_PROP_SAR_DEN):
            aspect = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
            if not aspect:
                return 0.0
            return float(aspect.numerator if prop == cv2.CAP_PROP_SAR_NUM else aspect.denominator)
        return 0.0

    def isOpened(self) -> bool:  # noqa: N802 - cv2.VideoCapture's name
        return self._container is not None

    def release(self) -> None:
        if self._container is None:
            return
        if getattr(self._frames, "gi_running", False):  # decoding in another thread (a stream's capture
            return  # thread that did not stop in time): closing under it would crash; left to it
        self._frames.close()
        self._container.close()
        self._container = None
        self._frame = None


def _quarter_turns(frame) -> int:
    """Counterclockwise quarter turns that show `frame` upright (its display matrix's rotation)."""
    return (int(getattr(frame, "rotation", 0) or 0) // 90) % 4


def _chain_first(first, rest):
    yield first
    yield from rest
