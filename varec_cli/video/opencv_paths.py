"""File names OpenCV can open.

OpenCV's Python binding turns a str into UTF-8, and it crashes the process (a segmentation fault, not
an exception) on the lone surrogates that Python uses to carry the bytes of a file name that is not
UTF-8: a Latin-1 name from an old disk, a camera's card or a Windows share mounted without iconv.
PyAV and Python's own file functions take such names. For OpenCV, the file is reached through a
symlink with a plain name, for as long as it takes to open it: OpenCV's decoders and encoders open
their file once, when they are created, and keep it open.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator


def utf8_name(path: str | os.PathLike) -> bool:
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@contextlib.contextmanager
def opencv_path(path: str | os.PathLike) -> Iterator[str]:
    """`path` as a str OpenCV can open inside the block: itself where it is UTF-8, else a symlink to
    it (with its extension, which OpenCV's writers choose the container by)."""
    text = os.fspath(path)
    if utf8_name(text):
        yield text
        return
    extension = os.path.splitext(text)[1]
    with tempfile.TemporaryDirectory(prefix="varec-") as folder:
        link = os.path.join(folder, "video" + (extension if utf8_name(extension) else ""))
        os.symlink(os.path.abspath(text), link)
        yield link
