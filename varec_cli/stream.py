"""Live classification of a camera, a network stream or a file played as a stream.

Two threads. The capture thread reads frames as the source delivers them and hands them to the
inference loop (the caller's thread) through a `_FrameSlot`:
- live (a camera, a network stream, or a file with `realtime`): the slot keeps only the newest frame,
  so inference never works through a backlog; frames it could not keep up with are skipped for
  inference but still recorded;
- lossless (a file or a pipe, as fast as it decodes): a short blocking queue; every frame is processed
  in order.

The loop turns each frame into model input, pushes it into the classifier's stream session (the
ring buffer of models/streaming.py), smooths the probabilities, and reports a label change through a
callback; it also draws the window and the recording's overlay. Nothing here prints.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from varec_cli.errors import Terminated, VarecError, VideoError, stop_code
from varec_cli.video.quiet import native_messages_silenced
from varec_cli.video.writer import DEFAULT_FPS, stop_signals_deferred

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")
OPEN_TIMEOUT_MS = 5000  # a network stream that has not opened by then fails
READ_TIMEOUT_MS = 5000  # a network stream silent for that long counts as dropped
RECONNECT_DELAYS = (0.5, 1.0, 2.0)  # a dropped live source is reopened after each of these, then given up
LOSSLESS_QUEUE = 2  # frames decoded ahead of inference for a file played as fast as it decodes
WINDOW_TITLE = "varec stream"
NO_LABEL = "..."  # shown below the threshold (the overlay's Hershey font has no ellipsis glyph)


# --- sources -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    kind: str  # "camera" | "network" | "file" | "pipe" (a named pipe, /dev/stdin fed by one: read once, in order)
    target: int | str

    @property
    def live(self) -> bool:
        """A camera or a network stream. A pipe is read like a file: every frame, in order, timed by its
        frame rate (its writer waits while inference catches up); --realtime paces and skips."""
        return self.kind in ("camera", "network")

    def __str__(self) -> str:
        if self.kind == "camera":
            return f"camera {self.target}"
        if self.kind == "network":
            return re.sub(r"(://[^:/@]+:)[^@/]*@", r"\1***@", str(self.target))  # hide a password
        return str(self.target)


def parse_source(text: str | int) -> Source:
    """`0`, `1`, ... → a camera index; rtsp://, http(s):// (and rtmp, udp, tcp, srt) → a network
    stream; a named pipe (or /dev/stdin fed by one) → a pipe, read as it comes; anything else → a
    video file (write `./0` for a file named `0`)."""
    text = str(text).strip()
    if re.fullmatch(r"\d+", text):
        if int(text) >= 2**31:  # OpenCV takes a C int
            raise VideoError(f"camera {text}: no such camera (a camera's index is a small number: 0, 1, ...)")
        return Source("camera", int(text))
    if text.lower().startswith(NETWORK_SCHEMES):
        return Source("network", text)
    if not text:
        raise VideoError("--source is empty")
    from varec_cli.files import special_file_kind

    return Source("pipe" if special_file_kind(text) == "a pipe" else "file", text)


def _open_capture(source: Source):
    """A cv2.VideoCapture of a camera, a network stream or a pipe that is open, or None. (A file is
    opened by video.frames.open_frame_capture, PyAV where OpenCV cannot decode it, and never reopened.)
    A pipe is opened by OpenCV alone, which reads it in one pass: a second reader would find its start
    gone. Opening it waits for a writer, as `cat` does."""
    import cv2

    with native_messages_silenced():
        if source.kind == "camera":
            cap = cv2.VideoCapture(int(source.target))
        elif source.kind == "pipe":  # no timeouts: a pipe's writer may well pause
            cap = cv2.VideoCapture(str(source.target), cv2.CAP_FFMPEG)
        else:
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS]
            cap = cv2.VideoCapture(str(source.target), cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            return None
        if source.kind == "camera":
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver's own queue: as short as it allows
    return cap


def _sane_fps(value: float, live: bool) -> float | None:
    """The source's frame rate, or None where it is not believable: a file or a pipe up to 1000 fps (what
    `predict` and `annotate` accept: high-speed footage), a camera or a stream up to 240 (drivers and
    RTSP servers report clock rates such as 1000 or 90000 instead)."""
    from varec_cli.video.reader import plausible_fps

    return plausible_fps(value, limit=240 if live else 1000) or None


@dataclass
class OpenedSource:
    """A source that opened and delivered its first frame."""

    source: Source
    capture: object  # cv2.VideoCapture
    first_frame: np.ndarray  # BGR
    fps: float | None  # as the source reports it, when plausible
    frame_count: int = 0  # as the source reports it; 0 for a live camera or stream

    @property
    def live(self) -> bool:
        """A camera or a live stream: frames come at the source's pace and are timed by the clock, and
        a failed read is a drop to recover from. A recording served over the network (its header has a
        frame count) is read like a file: it arrives as fast as the network allows, so the clock says
        nothing of its frames' times, and a failed read is its end."""
        return self.source.live and self.frame_count <= 0

    @property
    def size(self) -> tuple[int, int]:
        return self.first_frame.shape[:2]

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None


def open_source(source: Source | str) -> OpenedSource:
    """Open a source and read its first frame, or fail at once with one line (VideoError).

    Called before the model loads, so that a missing camera or a dead URL fails within seconds.
    """
    import cv2

    source = parse_source(source) if not isinstance(source, Source) else source
    if source.kind == "file":
        from varec_cli.files import missing_reason

        path = Path(source.target)
        shown = source.target  # as given: Path would turn ./0, the way to name a file 0, into 0
        if missing_reason(path) == "no such file":  # the rest: check_video_file, in open_frame_capture
            raise VideoError(f"{shown}: no such file (for a camera give its index, e.g. --source 0)")
        from varec_cli.video.frames import open_frame_capture  # PyAV's decoding where OpenCV's fails (AV1)

        try:
            with native_messages_silenced():
                cap = open_frame_capture(path)
        except VideoError as exc:  # named as given (`./0`, not `0`, which reads as a camera)
            message = str(exc)
            raise VideoError(shown + message[len(str(path)):] if message.startswith(str(path)) else message) from None
    else:
        cap = _open_capture(source)
    if cap is None:
        if source.kind == "camera":
            raise VideoError(f"{source}: cannot open it (no such camera, no permission, or it is in use)")
        if source.kind == "pipe":
            raise VideoError(f"{source}: cannot read a video from this pipe")
        raise VideoError(f"{source}: cannot open this stream (unreachable, refused, or not a video stream)")
    with native_messages_silenced():
        ok, frame = cap.read()
    if not ok or frame is None:
        cap.release()
        if source.kind == "pipe":  # an MP4 whose index comes last, say: a pipe cannot go back for it
            raise VideoError(
                f"{source}: no frame came through the pipe (it needs a format that can be read in one pass, "
                "such as MPEG-TS or Matroska: `ffmpeg ... -f mpegts -`)"
            )
        raise VideoError(f"{source}: opened, but gives no frame")
    fps = _sane_fps(cap.get(cv2.CAP_PROP_FPS), source.live)
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    frame_count = int(count) if source.kind == "network" and count and np.isfinite(count) and count > 0 else 0
    if source.kind == "file":
        frame_count = max(int(count or 0), 0)
    return OpenedSource(source, cap, frame, fps, frame_count)


# --- capture thread ------------------------------------------------------------------------------


@dataclass
class CapturedFrame:
    index: int  # 0, 1, 2, ... in capture order
    time: float  # source time in seconds: frame index / fps for files, since the first frame for live sources
    captured_at: float  # time.perf_counter() when it was read
    image: np.ndarray  # BGR, as decoded


class _FrameSlot:
    """Capture → inference hand-over: keep-newest (`lossless=False`) or a short blocking queue."""

    def __init__(self, lossless: bool, stop: threading.Event):
        self.lossless = lossless
        self._stop = stop
        self._items: deque[CapturedFrame] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.skipped = 0  # frames replaced before inference took them

    def put(self, item: CapturedFrame) -> None:
        with self._cond:
            if self.lossless:
                while len(self._items) >= LOSSLESS_QUEUE and not self._stop.is_set():
                    self._cond.wait(0.1)
            elif self._items:
                self._items.popleft()
                self.skipped += 1
            self._items.append(item)
            self._cond.notify_all()

    def get(self, timeout: float) -> CapturedFrame | None:
        """The next frame, or None after `timeout` seconds or once closed and empty."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            return None

    @property
    def finished(self) -> bool:
        with self._cond:
            return self._closed and not self._items

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _CaptureThread(threading.Thread):
    """Reads the source until it ends, `max_seconds` of source time pass, or `stop` is set."""

    def __init__(
        self,
        opened: OpenedSource,
        slot: _FrameSlot,
        stop: threading.Event,
        *,
        fps: float,
        pace: bool,
        max_seconds: float | None,
        on_captured: Callable[[np.ndarray], None] | None,
    ):
        super().__init__(name="varec-capture", daemon=True)
        self.opened = opened
        self.slot = slot
        self.stop = stop
        self.fps = fps
        self.pace = pace
        self.max_seconds = max_seconds
        self.on_captured = on_captured
        self.captured = 0
        self.ended: str | None = None  # why capture ended, when it did by itself
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # handed to the loop, re-raised there
            self.error = exc
        finally:
            self.slot.close()

    def _read(self):
        cap = self.opened.capture
        ok, frame = cap.read() if cap is not None else (False, None)
        if ok and frame is not None:
            return frame
        if not self.opened.live:
            return None
        for delay in RECONNECT_DELAYS:  # a dropped camera or stream: reopen a few times
            if self.stop.wait(delay):
                return None
            self.opened.close()
            self.opened.capture = _open_capture(self.opened.source)
            if self.opened.capture is not None:
                ok, frame = self.opened.capture.read()
                if ok and frame is not None:
                    if self._plays_again(frame):
                        self.ended = "end of the video"
                        return None
                    return frame
        self.ended = f"the stream dropped and {len(RECONNECT_DELAYS)} attempts to reopen it failed"
        return None

    def _plays_again(self, frame: np.ndarray) -> bool:
        """Whether a reopened HTTP source starts again with the very frame the stream began with: a
        recording served whole (a .ts, or a .webm muxed live, states no frame count, so it is read as
        live) has ended and would play again, forever. A live source reopened gives the present, not
        its first frame; a uniform first frame (a black screen) proves nothing, and RTSP, RTMP or UDP
        sources are left to their reconnects."""
        first = self.opened.first_frame
        return (
            str(self.opened.source.target).lower().startswith(("http://", "https://"))
            and first is not None
            and frame.shape == first.shape
            and first.min() != first.max()
            and np.array_equal(frame, first)
        )

    def _run(self) -> None:
        live = self.opened.live
        frame = self.opened.first_frame
        start = time.perf_counter()
        index = 0
        while not self.stop.is_set():
            now = time.perf_counter()
            source_time = (now - start) if live else index / self.fps
            if self.max_seconds is not None and source_time >= self.max_seconds:
                self.ended = "max-seconds"
                return
            if self.pace:  # a file in real time: wait for the frame's moment
                delay = start + source_time - now
                if delay > 0 and self.stop.wait(delay):
                    return
                now = time.perf_counter()
            item = CapturedFrame(index, source_time, now, frame)
            self.captured += 1
            if self.on_captured is not None:
                self.on_captured(frame)
            self.slot.put(item)
            index += 1
            frame = self._read()
            if frame is None:
                if self.ended is None and not self.stop.is_set():
                    self.ended = "end of the video"
                return


# --- the loop ------------------------------------------------------------------------------------

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def _hold_stop_signals(held: dict) -> None:
    """Ignore further stop signals while the first one's stop finishes: pressed twice, Ctrl-C would
    otherwise interrupt the finalising and lose the recording. Only the main thread may do this."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None and number not in held:
            held[number] = signal.signal(number, signal.SIG_IGN)


def _release_stop_signals(held: dict) -> None:
    import signal

    for number, handler in held.items():
        signal.signal(number, signal.SIG_DFL if handler is None else handler)
    held.clear()


class StopStream(Exception):
    """Raised by an `on_label` callback to end the stream cleanly, like q: the recording is kept.
    Its message says why (it becomes the summary's `ended`)."""


@dataclass(frozen=True)
class LabelChange:
    time: float  # source time of the frame whose prediction changed the label
    label: str
    probability: float


@dataclass
class StreamSummary:
    source: str
    frames_captured: int = 0
    frames_processed: int = 0  # went through the model
    predictions: int = 0  # frames that produced probabilities (the window was full)
    seconds: float = 0.0  # wall time from the first frame to the end
    source_seconds: float = 0.0  # source time covered: up to the end of the last frame processed
    latency_ms: float | None = None  # mean time from a frame's capture to its label
    ended: str = ""  # end of the video, q/Esc, max-seconds, Ctrl-C, the stream dropped ...
    interrupted: bool = False  # by Ctrl-C, SIGTERM or SIGHUP
    exit_code: int = 0  # what the CLI exits with: 130 after Ctrl-C, 128 + the signal's number after one
    recording: Path | None = None
    frames_recorded: int = 0
    recording_codec: str | None = None  # as AtomicVideoWriter's codec, audio and audio_left_out
    recording_audio: str | None = None  # a file's sound, written with its frames (.mp4)
    recording_audio_left_out: bool = False
    recording_without_sound: bool = False  # a camera or network source: any sound it has is not recorded
    read_as_live: bool = False  # timed by the clock, frames skipped to keep up (opened.live)
    label_changes: list[LabelChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # found on the way, for the user

    @property
    def fps(self) -> float:
        return self.frames_processed / self.seconds if self.seconds > 0 else 0.0

    frames_skipped: int = 0  # replaced by a newer frame before inference took them (live only)


@dataclass(frozen=True)
class StreamOptions:
    threshold: float = 0.5  # below it, no label is claimed
    smooth: int = 3  # average the last N predictions
    max_seconds: float | None = None  # of source time
    realtime: bool = False  # pace a file at its frame rate (live sources always are)
    display: bool = False  # show a window (q or Esc quits)
    output: Path | None = None  # record every captured frame with the overlay


def format_time(seconds: float) -> str:
    """Source time as `mm:ss.d` (`h:mm:ss.d` past an hour)."""
    tenths = int(round(max(seconds, 0.0) * 10))
    minutes, tenth_seconds = divmod(tenths, 600)
    hours, minutes = divmod(minutes, 60)
    text = f"{minutes:02d}:{tenth_seconds // 10:02d}.{tenth_seconds % 10}"
    return f"{hours}:{text}" if hours else text


class _Overlay:
    """What the window and the recording show now; shared by both threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.label: str | None = None
        self.probability: float | None = None
        self.fps: float | None = None

    def update(self, label: str | None, probability: float | None, fps: float | None) -> None:
        with self._lock:
            self.label, self.probability, self.fps = label, probability, fps

    def draw(self, frame_bgr: np.ndarray) -> np.ndarray:
        """A copy of the frame with the label (or `...`), its probability and the measured fps."""
        from varec_cli.video.overlay import draw_predictions

        with self._lock:
            label, probability, fps = self.label, self.probability, self.fps
        frame = frame_bgr.copy()
        line = (label, probability) if label is not None else (NO_LABEL, None)
        draw_predictions(frame, [line], footer=f"{fps:.1f} fps" if fps else "-- fps")
        return frame


class _Recorder:
    """Writes frames with the overlay; safe to close while the capture thread may still write."""

    def __init__(self, writer, overlay: _Overlay):
        self.writer = writer
        self.overlay = overlay
        self._lock = threading.Lock()
        self._open = True

    def write(self, frame_bgr: np.ndarray) -> None:
        import cv2

        if (frame_bgr.shape[0], frame_bgr.shape[1]) != (self.writer.height, self.writer.width):
            frame_bgr = cv2.resize(frame_bgr, (self.writer.width, self.writer.height))  # the stream changed size
        frame = self.overlay.draw(frame_bgr)
        with self._lock:
            if self._open:
                self.writer.write(frame)

    def close(self) -> None:
        with self._lock:
            self._open = False


class _Window:
    def __init__(self):
        import cv2

        try:
            cv2.namedWindow(WINDOW_TITLE, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise VarecError(
                f"cannot open a window ({str(exc).strip().splitlines()[-1][:120]}); use --no-display"
            ) from None

    def show(self, frame_bgr: np.ndarray) -> bool:
        """Show a frame; False once the user asked to quit (q, Esc, or the window closed)."""
        import cv2

        cv2.imshow(WINDOW_TITLE, frame_bgr)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), ord("Q"), 27):
            return False
        return cv2.getWindowProperty(WINDOW_TITLE, cv2.WND_PROP_VISIBLE) >= 1

    def close(self) -> None:
        import cv2

        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(WINDOW_TITLE)
            cv2.waitKey(1)


def run_stream(
    classifier,
    opened: OpenedSource,
    options: StreamOptions = StreamOptions(),
    *,
    on_label: Callable[[LabelChange], None] | None = None,
    on_frame: Callable[[], None] | None = None,
) -> StreamSummary:
    """Classify `opened` frame by frame until it ends, q/Esc, `max_seconds`, or Ctrl-C.

    Ctrl-C ends the stream like any other stop: the recording is finalised and the summary returned
    with `interrupted=True` (the CLI then exits 130). `on_label` is called each time the claimed
    label changes to a different label (not when it falls below the threshold); `on_frame` after each
    frame processed. Either may raise StopStream to end the stream as q does.
    """
    from varec_cli.video.reader import to_model_frame
    from varec_cli.video.writer import AtomicVideoWriter

    if options.smooth < 1:
        raise VarecError("--smooth must be at least 1")
    if not 0.0 <= options.threshold <= 1.0:
        raise VarecError("--threshold must be between 0 and 1")
    source = opened.source
    fps = opened.fps or DEFAULT_FPS
    live = opened.live or options.realtime
    summary = StreamSummary(source=str(source), recording=options.output)
    summary.recording_without_sound = options.output is not None and source.kind != "file"
    summary.read_as_live = opened.live
    spec = classifier.spec
    labels = classifier.labels
    session = classifier.start_stream(fps=fps)
    overlay = _Overlay()
    window = _Window() if options.display else None
    stop = threading.Event()
    slot = _FrameSlot(lossless=not live, stop=stop)
    recent: deque[np.ndarray] = deque(maxlen=options.smooth)
    latency_sum, latency_count = 0.0, 0
    ticks: deque[float] = deque(maxlen=30)  # processing times of recent frames, for the fps shown
    printed: str | None = None
    recorder = None
    capture = None

    held: dict = {}  # signal → its handler, while a stop already under way finishes (see below)
    try:
        with contextlib.ExitStack() as stack:
            stack.callback(opened.close)
            if window is not None:
                stack.callback(window.close)
            if options.output is not None:
                from varec_cli.video.reader import pixel_aspect
                from varec_cli.video.writer import check_encodable, check_output_path

                # Checked here too, not only by the CLI: a library caller must not overwrite its source.
                check_output_path(options.output, *([source.target] if source.kind == "file" else []))
                check_encodable(opened.source, *opened.size)
                aspect = pixel_aspect(opened.capture)  # kept where the writer can (see keeps_pixel_aspect)
                # A file's sound goes with its frames: every one of them is recorded, each at its
                # place in the file, also when --realtime skips some for inference.
                sound = source.target if source.kind == "file" else None
                writer = stack.enter_context(
                    AtomicVideoWriter(options.output, fps, opened.size, audio_from=sound, pixel_aspect=aspect)
                )
                recorder = _Recorder(writer, overlay)
                stack.callback(recorder.close)  # runs before the writer is finalised
            capture = _CaptureThread(
                opened,
                slot,
                stop,
                fps=fps,
                pace=options.realtime and not opened.live,
                max_seconds=options.max_seconds,
                # Live: record every captured frame as it arrives, with the latest label.
                on_captured=recorder.write if (recorder is not None and live) else None,
            )
            started = time.perf_counter()
            try:
                capture.start()
                while True:
                    item = slot.get(timeout=0.1)
                    if item is None:
                        if slot.finished:
                            break
                        continue
                    probabilities = session.push(to_model_frame(item.image, spec.size), timestamp=item.time)
                    done = time.perf_counter()
                    ticks.append(done)
                    span = ticks[-1] - ticks[0]
                    shown_fps = (len(ticks) - 1) / span if span > 0 else None
                    label = probability = None
                    if probabilities is not None:
                        latency_sum, latency_count = latency_sum + done - item.captured_at, latency_count + 1
                        recent.append(probabilities)
                        mean = np.mean(recent, axis=0)
                        best = int(np.argmax(mean))
                        if mean[best] >= options.threshold:
                            label, probability = labels[best], float(mean[best])
                    overlay.update(label, probability, shown_fps)
                    # Recorded and counted together: a stop signal waits for both, so the recording
                    # always ends with the last frame processed (a Ctrl-C between the two used to
                    # leave one frame recorded but not counted).
                    with stop_signals_deferred():
                        if recorder is not None and not live:
                            # Lossless: the label of this very frame; written before on_label, which may stop.
                            recorder.write(item.image)
                        summary.frames_processed += 1
                    summary.predictions += probabilities is not None
                    summary.source_seconds = item.time + 1.0 / fps
                    if label is not None and label != printed:
                        printed = label
                        change = LabelChange(item.time, label, probability)
                        summary.label_changes.append(change)
                        if on_label is not None:
                            on_label(change)
                    if on_frame is not None:
                        on_frame()
                    if window is not None and not window.show(overlay.draw(item.image)):
                        summary.ended = "quit from the window"
                        break
            except KeyboardInterrupt as interrupt:
                _hold_stop_signals(held)  # a second Ctrl-C must not cut the recording's finalising short
                summary.interrupted = True
                summary.ended = interrupt.name if isinstance(interrupt, Terminated) else "Ctrl-C"
                summary.exit_code = stop_code(interrupt)
            except StopStream as reason:
                summary.ended = str(reason) or "stopped"
            finally:
                stop.set()
                capture.join(timeout=READ_TIMEOUT_MS / 1000 + 1)
                summary.seconds = time.perf_counter() - started
            if capture.error is not None and not summary.interrupted:
                raise capture.error  # a failed capture thread: no recording is kept
    finally:
        _release_stop_signals(held)
    # Here the recording is finalised (renamed into place) and the source released.
    summary.frames_captured = capture.captured
    summary.frames_skipped = slot.skipped  # not the frames still queued when a stop came
    summary.ended = summary.ended or capture.ended or "stopped"
    summary.latency_ms = 1000 * latency_sum / latency_count if latency_count else None
    if recorder is not None:
        summary.frames_recorded = recorder.writer.frames_written
        summary.recording_codec = recorder.writer.codec
        summary.recording_audio = recorder.writer.audio
        summary.recording_audio_left_out = recorder.writer.audio_left_out
    if source.kind == "file" and summary.ended == "end of the video":
        from varec_cli.video.reader import cut_short_warning

        if (cut_short := cut_short_warning(source.target, summary.frames_captured, fps, "streamed", source)) is not None:
            summary.warnings.append(cut_short)
    return summary
