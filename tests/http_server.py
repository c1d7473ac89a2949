"""A real HTTP server on 127.0.0.1 for the weights tests: serves in-memory files, honours Range
requests (206 + Content-Range) under If-Range against the ETag it sends, and can misbehave on
purpose: answer 404/5xx, ignore Range and answer 200, send no validator, cut a transfer halfway
(and replace the file right after), or send slowly.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import socket
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

CHUNK = 16 * 1024


class StandIn:
    """What the server serves and how; tests mutate these attributes."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.status: dict[str, int] = {}  # path -> status code answered instead of the file
        self.drop_first: dict[str, int] = {}  # path -> how many responses to cut halfway
        self.ignore_range: set[str] = set()  # paths answered 200 + full body even when Range is asked
        self.gzip_encode: set[str] = set()  # paths sent with Content-Encoding: gzip whatever was asked
        self.no_validator: set[str] = set()  # paths sent without ETag (nothing to resume under If-Range)
        self.replace_after_cut: dict[str, bytes] = {}  # path -> new content once a response was cut
        self.delay_s = 0.0  # pause between chunks
        self.chunk_bytes = CHUNK  # what is sent at a time
        self.log: list[tuple[str, str | None, str | None]] = []  # (path, Range, If-Range) of every GET
        self.lock = threading.Lock()
        self.base_url = ""

    def url(self, path: str) -> str:
        return self.base_url + path

    def requests_for(self, path: str) -> list[str | None]:
        with self.lock:
            return [rng for p, rng, _ in self.log if p == path]

    def if_ranges_for(self, path: str) -> list[str | None]:
        with self.lock:
            return [if_range for p, _, if_range in self.log if p == path]

    @staticmethod
    def etag(data: bytes) -> str:
        return '"' + hashlib.sha256(data).hexdigest()[:16] + '"'


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr log
        pass

    def do_GET(self):  # noqa: N802 - http.server naming
        standin: StandIn = self.server.standin  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        with standin.lock:
            standin.log.append((path, rng, if_range))
            forced = standin.status.get(path)
            data = standin.files.get(path)
            cut = standin.drop_first.get(path, 0) > 0
            if cut:
                standin.drop_first[path] -= 1
        if forced is not None or data is None:
            self._plain(forced or 404)
            return
        start, status = 0, 200
        if path in standin.gzip_encode:
            body = gzip.compress(data)
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        etag = None if path in standin.no_validator else standin.etag(data)
        if if_range is not None and if_range != etag:
            rng = None  # the file changed (or never had this validator): the whole of it, 200
        if rng and path not in standin.ignore_range:
            spec = rng.strip().lower()
            if not spec.startswith("bytes=") or "," in spec:
                self._plain(416)
                return
            first, _, _last = spec[len("bytes="):].partition("-")
            start = int(first)
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        if etag:
            self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        limit = len(body) // 2 if cut else len(body)
        try:
            step = standin.chunk_bytes
            for offset in range(0, limit, step):
                self.wfile.write(body[offset : min(offset + step, limit)])
                if standin.delay_s:
                    self.wfile.flush()
                    time.sleep(standin.delay_s)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
        if cut:
            with standin.lock:
                if path in standin.replace_after_cut:
                    standin.files[path] = standin.replace_after_cut.pop(path)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def _plain(self, code: int) -> None:
        body = f"{code}\n".encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """A client that hangs up on a kept-alive connection (varec closes a 404 without reading its
        body) is not an error; the default would print a traceback to sys.stderr, which a CliRunner
        running at that moment captures as the command's output."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve() -> Iterator[StandIn]:
    standin = StandIn()
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.standin = standin  # type: ignore[attr-defined]
    standin.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


# --- stand-in artefacts of the real formats ---------------------------------------------------------

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def fake_h5(n_bytes: int = 200_000, seed: int = 0) -> bytes:
    """Bytes that start like an HDF5 file (what Keras Applications weights are)."""
    body = bytearray()
    counter = seed
    while len(body) < n_bytes:
        body += hashlib.sha256(counter.to_bytes(8, "little")).digest()
        counter += 1
    return HDF5_MAGIC + bytes(body[: n_bytes - len(HDF5_MAGIC)])


def fake_keras(extra: bytes = b"") -> bytes:
    """A small zip archive, as a .keras file is (content is irrelevant to the weights layer)."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.json", '{"class_name": "Sequential"}')
        zf.writestr("varec.json", '{"labels": ["a", "b"]}')
        zf.writestr("model.weights.h5", fake_h5(50_000) + extra)
    return buf.getvalue()


def make_tar_gz(members: list[tuple]) -> bytes:
    """members: (name, bytes) for files, (name, None) for folders,
    (name, ('sym'|'hard'|'dev'|'fifo', target)) for links and special files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if content is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            elif isinstance(content, tuple):
                what, target = content
                info.type = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "dev": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[what]
                info.linkname = target or ""
                tar.addfile(info)
            else:
                info.size = len(content)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def fake_savedmodel_tar(prefix: str = "./") -> bytes:
    """The layout of a TF Hub compressed SavedModel (`?tf-hub-format=compressed`): members at the
    top, written as ./saved_model.pb etc. With prefix="wrapper/" they sit one folder down."""
    members: list[tuple] = []
    if prefix not in ("", "./"):
        members.append((prefix.rstrip("/"), None))
    members += [
        (f"{prefix}saved_model.pb", b"\x08\x01stand-in saved_model.pb" * 40),
        (f"{prefix}variables", None),
        (f"{prefix}variables/variables.index", b"index" * 100),
        (f"{prefix}variables/variables.data-00000-of-00001", fake_h5(120_000, seed=7)),
        (f"{prefix}assets", None),
    ]
    return make_tar_gz(members)


def labels_text(n: int) -> bytes:
    return "".join(f"action {i}\n" for i in range(n)).encode()
