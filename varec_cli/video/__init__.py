"""Video input and output with OpenCV; knows nothing of models."""

import os as _os

from varec_cli import paths as _paths

VIDEO_EXTENSIONS = frozenset({".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv"})

# OpenCV's FFmpeg prints its own errors ("moov atom not found") on stderr from whichever thread
# opens a file, unless this is set before its first capture; varec says what went wrong in one
# line itself. VAREC_DEBUG=1 keeps FFmpeg's messages.
if not _paths.debug():
    _os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
