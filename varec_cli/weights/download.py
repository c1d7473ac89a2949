"""Fetching one artefact: streamed, resumable, retried, verified, then moved into place atomically.

Library code: nothing here prints. Progress goes to an optional `progress(done_bytes, total_bytes)`
callback (`total_bytes` is None when the server does not say). `requests` is imported lazily.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from varec_cli import __version__, paths
from varec_cli.errors import OfflineError, WeightsError
from varec_cli.files import short_of_space, temp_file

ProgressCallback = Callable[[int, "int | None"], None]

CONNECT_TIMEOUT_S = 15.0
READ_TIMEOUT_S = 60.0  # also the span in which a transfer must bring STALL_BYTES, or it has stalled
STALL_BYTES = 1024  # a byte every few seconds keeps each read alive: a span with less than this is no transfer
RETRIES = 3  # extra attempts per URL after the first, for transient failures only
BACKOFF_S = 0.5  # first pause between attempts; doubles each time
CHUNK_BYTES = 1 << 16
FREE_SPACE_MARGIN_BYTES = 64 << 20
_RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


class DownloadError(WeightsError):
    """The artefact could not be fetched (DNS, refused, TLS, proxy, HTTP error, dropped connection)."""


class DigestMismatchError(WeightsError):
    """The bytes fetched are not the ones the registry (or the first download) vouches for."""


@dataclass(frozen=True)
class Fetched:
    path: Path  # the verified file
    url: str  # where it came from
    sha256: str
    md5: str
    bytes: int


class _Failure(Exception):
    """One URL failed; `reason` is a short phrase, `retry` whether trying again may help."""

    def __init__(self, reason: str, retry: bool):
        super().__init__(reason)
        self.reason = reason
        self.retry = retry


class _Rejected(Exception):
    """A mirror's file that fetch_to_temp's `check` refused."""

    def __init__(self, error: WeightsError):
        super().__init__(str(error))
        self.error = error


@contextlib.contextmanager
def _cache_writable(directory: Path) -> Iterator[None]:
    """An OSError from making a folder or file in the cache as one WeightsError with the way out: a
    read-only cache (a shared one, a read-only mount) that already holds the name's lock file gets this
    far, and the other names of the same `varec download` are still tried."""
    try:
        yield
    except OSError as exc:
        raise WeightsError(
            f"cannot write in {directory} ({exc.strerror or exc}): fetching into the weights cache needs it "
            "writable; VAREC_CACHE_DIR sets where the cache is"
        ) from None


def check_free_space(directory: Path, needed_bytes: int | None) -> None:
    """WeightsError when `directory` lacks room for `needed_bytes` and a margin (the file's size again,
    up to FREE_SPACE_MARGIN_BYTES), so that a download does not leave the disk full to the last byte."""
    if not needed_bytes:
        return
    with _cache_writable(directory):
        directory.mkdir(parents=True, exist_ok=True)
    margin = min(needed_bytes, FREE_SPACE_MARGIN_BYTES)
    if (short := short_of_space(directory, needed_bytes + margin)) is not None:
        raise WeightsError(
            f"not enough free disk space in {directory}: {short}; free some space or set VAREC_CACHE_DIR to a larger disk"
        )


def is_local_url(url: str) -> bool:
    return urlparse(url).scheme == "file"


def _local_path(url: str) -> Path:
    parsed = urlparse(url)
    return Path(url2pathname(unquote(parsed.path)))


def _host(url: str) -> str:
    return urlparse(url).hostname or url


def _describe_exception(exc: BaseException, url: str) -> tuple[str, bool]:
    """A short reason for a requests/urllib3 failure and whether a retry may help."""
    import requests

    host = _host(url)
    # Walk causes, contexts and exception arguments: urllib3 nests the useful part deeply.
    chain: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(chain) < 20:
        e = todo.pop(0)
        if any(e is c for c in chain):
            continue
        chain.append(e)
        todo.extend(x for x in (e.__cause__, e.__context__) if x is not None)
        todo.extend(a for a in getattr(e, "args", ()) if isinstance(a, BaseException))
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    text = " ".join(f"{type(e).__name__}: {e}" for e in chain)
    if isinstance(exc, requests.exceptions.SSLError) or "SSLError" in text or "CERTIFICATE" in text.upper():
        return f"TLS/SSL failure talking to {host} (certificate problem or an intercepting proxy?)", False
    if isinstance(exc, requests.exceptions.ProxyError) or "ProxyError" in text:
        return f"the proxy refused or failed the connection to {host} (check HTTPS_PROXY/HTTP_PROXY)", False
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return "invalid URL", False
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return "too many redirects", False
    if "NameResolutionError" in text or "Name or service not known" in text or "getaddrinfo failed" in text or (
        "nodename nor servname" in text
    ) or "Temporary failure in name resolution" in text:
        return f"cannot resolve host {host} (no network or DNS?)", True
    if isinstance(exc, requests.exceptions.ConnectTimeout) or "ConnectTimeout" in text:
        return f"connecting to {host} timed out", True
    if "Connection refused" in text or "ConnectionRefusedError" in text:
        return f"connection refused by {host}", True
    if isinstance(exc, requests.exceptions.ReadTimeout) or "ReadTimeoutError" in text or "Read timed out" in text:
        return f"{host} stopped sending data (read timed out)", True
    if isinstance(exc, requests.exceptions.ChunkedEncodingError) or "IncompleteRead" in text or (
        "ProtocolError" in text
    ) or "Connection broken" in text:
        return "the connection dropped during the transfer", True
    if isinstance(exc, requests.exceptions.ConnectionError):
        return f"cannot connect to {host}", True
    return f"{type(exc).__name__}: {exc}", True


def _parse_content_range(value: str | None) -> tuple[int, int, int | None] | None:
    match = _CONTENT_RANGE.match(value or "")
    if not match:
        return None
    first, last, total = match.groups()
    return int(first), int(last), None if total == "*" else int(total)


def _copy_local(url: str, tmp: Path, progress: ProgressCallback | None) -> None:
    source = _local_path(url)
    try:
        total = source.stat().st_size
        done = 0
        with open(source, "rb") as src, open(tmp, "wb") as dst:
            while chunk := src.read(CHUNK_BYTES):
                dst.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except FileNotFoundError:
        raise _Failure(f"no such file {source}", retry=False) from None
    except IsADirectoryError:
        raise _Failure(f"{source} is a directory", retry=False) from None
    except PermissionError:
        raise _Failure(f"cannot read {source} (permission denied)", retry=False) from None


def _fetch_http(
    url: str,
    tmp: Path,
    *,
    progress: ProgressCallback | None,
    expected_bytes: int | None,
    space_factor: float,
    retries: int,
    backoff: float,
    timeout: tuple[float, float],
) -> None:
    """Stream `url` into `tmp`, resuming with Range after a dropped connection; raise _Failure.

    A transfer is resumed only under If-Range with the first response's validator (a strong ETag,
    else Last-Modified): a file replaced on the server in between then comes whole, never spliced
    from two versions. Without a validator a dropped transfer starts over."""
    import requests
    import urllib3

    session = requests.Session()
    session.headers["User-Agent"] = f"varec/{__version__} (+requests)"
    attempt = 0
    have = 0  # bytes of the file already in tmp
    use_range = True
    validator: str | None = None  # of the version being fetched, from its first full response
    checked_space = False
    try:
        while True:
            headers = {"Accept-Encoding": "identity"}
            if have and use_range and validator:
                headers["Range"] = f"bytes={have}-"
                headers["If-Range"] = validator
            try:
                with session.get(url, stream=True, timeout=timeout, headers=headers, allow_redirects=True) as resp:
                    status = resp.status_code
                    total: int | None = None
                    length = resp.headers.get("Content-Length")
                    length_int = int(length) if length and length.isdigit() else None
                    if status == 206 and "Range" in headers:
                        parsed = _parse_content_range(resp.headers.get("Content-Range"))
                        if parsed is None or parsed[0] != have or _validator(resp.headers) not in (None, validator):
                            # Not the range asked for: never splice unknown bytes, start over.
                            use_range, have = False, 0
                            tmp.write_bytes(b"")
                            continue
                        total = parsed[2]
                        mode = "ab"
                    elif status == 200:
                        # A full body (the first request, a server that ignores Range, or a file
                        # that changed since the first request).
                        have = 0
                        total = length_int
                        mode = "wb"
                        validator = _validator(resp.headers)
                    elif status == 416 and have:
                        use_range, have = False, 0
                        tmp.write_bytes(b"")
                        continue
                    else:
                        reason = f"HTTP {status} {resp.reason or ''}".strip()
                        raise _Failure(reason, retry=status in _RETRYABLE_STATUS)

                    if not checked_space:
                        need = (total or expected_bytes or 0) - have
                        check_free_space(tmp.parent, int(max(need, 0) * space_factor))
                        checked_space = True
                    if total is None:
                        total = expected_bytes
                    # We ask for identity encoding; a server that compresses anyway is decoded, and
                    # then byte offsets no longer match the file, so such a transfer is never resumed.
                    encoded = resp.headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")
                    if encoded:
                        use_range = False
                        total = expected_bytes
                    with open(tmp, mode) as fh:
                        if progress:
                            progress(have, total)
                        span_start, span_bytes = time.monotonic(), 0
                        while chunk := resp.raw.read1(CHUNK_BYTES, decode_content=encoded):  # what came, not 64 KiB
                            fh.write(chunk)
                            have += len(chunk)
                            if progress:
                                progress(have, total)
                            span_bytes += len(chunk)
                            if (now := time.monotonic()) - span_start >= timeout[1]:
                                if span_bytes < STALL_BYTES:  # a server trickling bytes would hold the run forever
                                    raise _Failure(
                                        f"the transfer stalled (under {STALL_BYTES} bytes in {timeout[1]:g} s)", retry=True
                                    )
                                span_start, span_bytes = now, 0
                    expected_end = parsed[1] + 1 if status == 206 else length_int
                    if expected_end is not None and not encoded and have < expected_end:
                        raise _Failure("the connection dropped during the transfer", retry=True)
                    return
            except _Failure as failure:
                if not failure.retry or attempt >= retries:
                    raise
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if isinstance(exc, OSError) and not isinstance(exc, (ConnectionError, TimeoutError)) and (
                    exc.__class__.__module__ == "builtins"
                ):
                    raise  # a local I/O problem (disk full...), not the network
                reason, retry = _describe_exception(exc, url)
                if not retry or attempt >= retries:
                    raise _Failure(reason, retry=False) from None
            attempt += 1
            time.sleep(backoff * (2 ** (attempt - 1)))
            have = tmp.stat().st_size if tmp.exists() and use_range and validator else 0
    finally:
        session.close()


def _validator(headers) -> str | None:
    """What identifies this version of the file for If-Range: a strong ETag, else Last-Modified."""
    etag = (headers.get("ETag") or "").strip()
    if etag and not etag.startswith("W/"):
        return etag
    return (headers.get("Last-Modified") or "").strip() or None


def _verify(path: Path, url: str, what: str, sha256: str | None, md5: str | None, source: str):
    from varec_cli.weights.cache import file_digests

    digests = file_digests(path)
    for algo, expected in (("sha256", sha256), ("md5", md5)):
        if expected and digests[algo] != expected.lower():
            against = f"the {algo} recorded at its first download" if source == "recorded" else f"the published {algo}"
            raise DigestMismatchError(
                f"{what}: the file from {url} does not match {against}: "
                f"expected {expected.lower()}, got {digests[algo]}; nothing was kept in the cache"
            )
    return digests


def fetch_to_temp(
    urls: Sequence[str],
    directory: Path,
    *,
    what: str,
    sha256: str | None = None,
    md5: str | None = None,
    digest_source: str = "published",  # or "recorded" (trust on first use)
    expected_bytes: int | None = None,
    space_factor: float = 1.0,
    way_out: str = "",
    progress: ProgressCallback | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    timeout: tuple[float, float] | None = None,
    suffix: str = ".part",
    check: Callable[[Path, str], None] | None = None,
) -> Fetched:
    """Download the first URL that works into a unique temp file in `directory` and verify it.

    Mirrors are tried in order; a mirror whose bytes fail verification is skipped too, and so is one
    whose file `check(path, url)` rejects with a WeightsError (an HTML page instead of the file). The caller
    owns the returned file (move it into place or delete it). Raises OfflineError under
    VAREC_OFFLINE=1 (file:// URLs excepted), DownloadError, or DigestMismatchError; never leaves a
    temp file behind when it raises.
    """
    retries = RETRIES if retries is None else retries
    backoff = BACKOFF_S if backoff is None else backoff
    timeout = timeout or (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
    usable = list(urls)
    if paths.offline():
        usable = [u for u in urls if is_local_url(u)]
        if not usable:
            raise OfflineError(
                f"{what} is not in the cache and VAREC_OFFLINE=1 (offline mode) forbids downloading it "
                f"from {urls[0]}; unset VAREC_OFFLINE or fetch it on a connected machine"
                + (f"; {way_out}" if way_out else "")
            )
    if not usable:
        raise WeightsError(f"{what}: the registry gives no URL")
    with _cache_writable(directory):
        directory.mkdir(parents=True, exist_ok=True)
    check_free_space(directory, int(expected_bytes * space_factor) if expected_bytes else None)

    failures: list[str] = []
    refused: list[WeightsError] = []  # digest mismatches and files `check` rejected, one per mirror
    for url in usable:
        with _cache_writable(directory):
            tmp = temp_file(directory, prefix=".download-", suffix=suffix)
        try:
            if is_local_url(url):
                _copy_local(url, tmp, progress)
            else:
                _fetch_http(
                    url,
                    tmp,
                    progress=progress,
                    expected_bytes=expected_bytes,
                    space_factor=space_factor,
                    retries=retries,
                    backoff=backoff,
                    timeout=timeout,
                )
            digests = _verify(tmp, url, what, sha256, md5, digest_source)
            if check is not None:
                try:
                    check(tmp, url)
                except WeightsError as exc:
                    raise _Rejected(exc) from None
            return Fetched(path=tmp, url=url, sha256=digests["sha256"], md5=digests["md5"], bytes=tmp.stat().st_size)
        except _Failure as failure:
            failures.append(f"{url}: {failure.reason}")
            _unlink(tmp)
        except DigestMismatchError as exc:
            refused.append(exc)
            _unlink(tmp)
        except _Rejected as rejection:  # this mirror served something else
            refused.append(rejection.error)
            _unlink(tmp)
        except OSError as exc:
            _unlink(tmp)
            raise WeightsError(f"{what}: cannot write to {directory}: {exc.strerror or exc}") from None
        except BaseException:
            _unlink(tmp)
            raise
    if not failures and len(refused) == 1:
        raise refused[0]  # one reason: as it is, with its own error type
    detail = "; ".join(failures + [str(exc) for exc in refused])
    tail = f"; {way_out}" if way_out else ""
    if len(usable) == 1 and failures:
        raise DownloadError(f"cannot download {what} from {detail}{tail}")
    raise DownloadError(f"cannot download {what} from any of its {len(usable)} URLs ({detail}){tail}")


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
