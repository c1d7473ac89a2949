"""`varec stream`: classify a camera, a network stream or a file live."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def stream_command(
    source: str = typer.Option(
        "0", "--source", "-s", metavar="SOURCE", help="Camera index (0, 1, ...), a stream URL (rtsp, rtsps, rtmp, http, https, udp, tcp, srt) or a video file."
    ),
    model: Optional[str] = typer.Option(
        None, "--model", "-m", metavar="MODEL",
        help="A model file or folder, or a registry name; default: the registry's stream default (MoViNet-A0 stream, Kinetics-600).",
    ),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", metavar="FILE", help="Record every captured frame with the label overlay (.avi, .mp4 or .m4v)."
    ),
    no_display: bool = typer.Option(
        False, "--no-display", help="No window: print a line each time the label changes (automatic without a display)."
    ),
    threshold: float = typer.Option(0.5, "--threshold", metavar="P", help="Claim no label below this probability (0 to 1)."),
    smooth: int = typer.Option(3, "--smooth", metavar="N", min=1, help="Average the last N predictions."),
    max_seconds: Optional[float] = typer.Option(
        None, "--max-seconds", metavar="SECONDS", help="Stop after this many seconds of source time (wall-clock for live sources)."
    ),
    realtime: bool = typer.Option(
        False, "--realtime", help="Play a file at its frame rate, skipping frames inference cannot keep up with."
    ),
) -> None:
    """Classify a live SOURCE frame by frame and show the current action (q or Esc quits).

    Without a display, prints `mm:ss.d  label  probability` each time the label changes. A summary
    goes to stderr at the end. Ctrl-C stops cleanly (the recording is kept) and exits 130; SIGTERM and
    SIGHUP stop the same way (exit 143, 129).
    """
    from varec_cli import console
    from varec_cli.commands._models import open_model
    from varec_cli.stream import StreamOptions, open_source, parse_source, run_stream
    from varec_cli.video.display import display_configured, display_unavailable

    if not 0 <= threshold <= 1:  # checked here: typer's range check calls nan "more than 1"
        raise typer.BadParameter("must be a probability from 0 to 1", param_hint="--threshold")
    if max_seconds is not None and not max_seconds > 0:  # NaN too
        raise typer.BadParameter("must be more than 0", param_hint="--max-seconds")
    if not str(source).strip():
        raise typer.BadParameter("is empty: give a camera index, a URL or a video file", param_hint="--source")
    parsed = parse_source(source)
    if output is not None:
        from varec_cli.video.writer import check_output_path

        check_output_path(output, *([parsed.target] if parsed.kind == "file" else []))
    display = False
    if not no_display and display_configured():
        reason = display_unavailable()
        display = reason is None
        if reason:
            console.warn(f"{reason}; streaming without a window (labels on stdout)")
    opened = open_source(parsed)  # before the model: a missing camera fails within seconds
    try:
        if output is not None:
            from varec_cli.video.reader import pixel_aspect
            from varec_cli.video.writer import check_encodable, odd_size_warning, square_pixels_warning

            check_encodable(opened.source, *opened.size)  # before the model loads
            if (odd := odd_size_warning(opened.source, *opened.size)) is not None:
                console.warn(odd)
            aspect = pixel_aspect(opened.capture)
            if (squeezed := square_pixels_warning(opened.source, *opened.size, aspect, output)) is not None:
                console.warn(squeezed)
        classifier = open_model(model, "stream")
    except BaseException:
        opened.close()
        raise
    options = StreamOptions(
        threshold=threshold,
        smooth=smooth,
        max_seconds=max_seconds,
        realtime=realtime,
        display=display,
        output=output,
    )

    def print_label(change) -> None:
        from varec_cli.console import StdoutClosed, result_line
        from varec_cli.stream import StopStream, format_time

        try:
            result_line(f"{format_time(change.time)}  {change.label}  {change.probability:.2f}")
        except StdoutClosed:  # `varec stream | head -1`: the reader has all it wanted
            raise StopStream("the output pipe was closed") from None

    last_check = [0.0]

    def check_reader() -> None:
        """Between label lines, which may be minutes apart, see now and then whether stdout's reader
        is still there: `varec stream | head -1` ends once head has its line, not at the next change."""
        import time

        from varec_cli.console import stdout_reader_gone, stop_writing_results
        from varec_cli.stream import StopStream

        now = time.monotonic()
        if now - last_check[0] < 0.25:
            return
        last_check[0] = now
        if stdout_reader_gone():
            stop_writing_results()
            raise StopStream("the output pipe was closed")

    summary = run_stream(
        classifier, opened, options, on_label=None if display else print_label, on_frame=None if display else check_reader
    )
    for warning in summary.warnings:
        console.warn(warning)
    typer.echo(_summary_text(summary, threshold), err=True)  # plain: rich would wrap long paths
    if summary.interrupted:
        raise typer.Exit(summary.exit_code)


def _summary_text(summary, threshold: float) -> str:
    from varec_cli.text import counted
    from varec_cli.video.writer import sound_note

    if summary.latency_ms is not None:
        latency = f"{summary.latency_ms:.0f} ms on average, capture to label"
    elif summary.ended == "end of the video" and summary.read_as_live:  # a recording came whole, timed by the clock
        latency = (
            "none: no prediction (the stream ended before the model's first window of time was full: a "
            "recording served without a frame count, such as a .ts over HTTP, is read as live, timed as it "
            "arrives; download it and give the file)"
        )
    elif summary.ended == "end of the video":
        latency = "none: no prediction (the video is shorter than the model's window)"
    else:
        latency = "none: no prediction (stopped before the model's first window was full)"
    queued = summary.frames_captured - summary.frames_processed - summary.frames_skipped
    lines = [
        f"stream {summary.source}: ended ({summary.ended})",
        f"  frames      {summary.frames_captured} captured, {summary.frames_processed} processed"
        f" ({summary.frames_skipped} skipped to stay live"
        + (f", {queued} still queued when it stopped" if queued > 0 else "")
        + f"), {counted(summary.predictions, 'prediction')}",
        f"  duration    {summary.seconds:.1f} s ({summary.source_seconds:.1f} s of source time)",
        f"  speed       {summary.fps:.1f} frames/s processed",
        f"  latency     {latency}",
    ]
    if summary.predictions and not summary.label_changes:  # a change is recorded only with a label
        lines.append(f"  labels      none: no prediction reached --threshold {threshold:g}")
    if summary.recording is not None:
        if summary.recording_without_sound:
            sound = ", without sound (only a file source's sound is recorded)"
        else:
            sound = sound_note(summary.recording, summary.recording_audio, summary.recording_audio_left_out)
        lines.append(
            f"  recording   {summary.recording} ({counted(summary.frames_recorded, 'frame')}, codec {summary.recording_codec}{sound})"
        )
    return "\n".join(lines)
