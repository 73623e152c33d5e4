"""Downloads for `xnornet pull`: streamed, resumable (HTTP Range), locked, verified.

Only the standard library: urllib's default opener honours HTTPS_PROXY / HTTP_PROXY / NO_PROXY,
and `ssl.create_default_context()` loads OpenSSL's default verify paths, which honour
SSL_CERT_FILE / SSL_CERT_DIR (a company CA bundle).

Cache layout (one entry per expected sha256, so two catalogues naming the same file share it):
    <dir>/<sha256>        a complete file whose sha256 was verified
    <dir>/<sha256>.part   a partial download, resumed with `Range: bytes=N-`
    <dir>/<sha256>.lock   flock'ed while a process downloads or verifies that entry
A partial is kept only while it can be resumed: a checksum mismatch, a size that contradicts
the catalogue, or a full disk removes it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import http.client
import io
import os
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

CHUNK = 1 << 16


class FetchError(Exception):
    """A download failed; `resumable`: the partial file was kept and a rerun continues it."""

    resumable = False


class NoNetwork(FetchError):
    """The host cannot be reached (DNS, refused, timeout, proxy, TLS)."""


class HttpStatus(FetchError):
    def __init__(self, url: str, code: int, reason: str) -> None:
        super().__init__(f"{url}: HTTP {code} {reason}".rstrip())
        self.code = code


class Cut(FetchError):
    """The connection ended before the whole file arrived."""

    resumable = True


class ChecksumMismatch(FetchError):
    pass


class SizeMismatch(FetchError):
    pass


class DiskFull(FetchError):
    pass


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def opener() -> urllib.request.OpenerDirector:
    """urllib's opener (environment proxies) with a verifying TLS context."""
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=ssl.create_default_context()))


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def read_url(url: str, max_bytes: int, *, timeout: float = 30.0) -> bytes:
    """A small document (a catalogue) in one piece."""
    try:
        with opener().open(urllib.request.Request(url, headers=_HEADERS), timeout=timeout) as resp:
            data = resp.read(max_bytes + 1)
    except urllib.error.HTTPError as exc:
        raise HttpStatus(url, exc.code, str(exc.reason)) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise NoNetwork(f"cannot reach {url}: {_reason(exc)}") from None
    if len(data) > max_bytes:
        raise FetchError(f"{url}: larger than {max_bytes} bytes")
    return data


def _user_agent() -> str:
    from engine import __version__

    return f"xnornet/{__version__} (+pull)"


_HEADERS = {"User-Agent": _user_agent(), "Accept-Encoding": "identity"}


# ---------------------------------------------------------------------------------------
# Progress


def _bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError  # pragma: no cover


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """Size, percentage, rate and ETA on `stream`: a redrawn bar on a terminal, else one line
    every `interval` seconds (logs, CI)."""

    def __init__(self, stream: TextIO | None, label: str, interval: float | None = None) -> None:
        self.stream = stream
        self.label = label
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.1 if self.tty else 5.0)
        self.total: int | None = None
        self.done = 0
        self.start_done = 0
        self.t0 = time.monotonic()
        self.last = 0.0

    def begin(self, total: int | None, already: int) -> None:
        self.total, self.done, self.start_done = total, already, already
        self.t0 = time.monotonic()
        self.last = 0.0
        if already and self.stream is not None:
            self._write(f"{self.label}: resuming at {_bytes(already)}", newline=True)

    def line(self) -> str:
        el = max(time.monotonic() - self.t0, 1e-9)
        rate = (self.done - self.start_done) / el
        if self.total:
            frac = min(self.done / self.total, 1.0)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            bar = f"[{'#' * int(24 * frac):<24}] " if self.tty else ""
            eta_s = _clock(eta) if eta != float("inf") else "?"
            return (
                f"{self.label}: {bar}{_bytes(self.done)} / {_bytes(self.total)} {100 * frac:3.0f}%  "
                f"{_bytes(rate)}/s  ETA {eta_s}"
            )
        return f"{self.label}: {_bytes(self.done)} (size unknown)  {_bytes(rate)}/s"

    def _write(self, text: str, newline: bool) -> None:
        assert self.stream is not None
        if self.tty:
            self.stream.write("\r\x1b[K" + text + ("\n" if newline else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.stream is not None and now - self.last >= self.interval:
            self.last = now
            self._write(self.line(), newline=False)

    def finish(self) -> None:
        if self.stream is not None:
            self._write(self.line() + f"  in {_clock(time.monotonic() - self.t0)}", newline=True)


# ---------------------------------------------------------------------------------------
# The cache entry


@contextlib.contextmanager
def locked(path: Path, stream: TextIO | None) -> Iterator[None]:
    """An exclusive flock on `path` (waits, and says so, while another process holds it)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if stream is not None:
                stream.write(f"waiting for another xnornet pull that holds {path}\n")
                stream.flush()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    """'bytes START-END/TOTAL' -> (START, TOTAL or None)."""
    m = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value or "")
    if not m:
        return None
    return int(m.group(1)), None if m.group(3) == "*" else int(m.group(3))


def _fetch_http(url: str, part: Path, size: int | None, progress: Progress, timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = dict(_HEADERS)
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = opener().open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing past what we hold: the checksum decides
            return
        raise HttpStatus(url, exc.code, str(exc.reason)) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        host = urllib.parse.urlsplit(url).hostname
        raise NoNetwork(f"cannot reach {host}: {_reason(exc)}") from None
    with resp:
        total: int | None
        if resp.status == 206:
            cr = _content_range(resp.headers.get("Content-Range"))
            if cr is None or cr[0] != have:  # not what was asked: start over on the next try
                part.unlink(missing_ok=True)
                raise Cut(f"{url}: the server answered the resume with another range ({cr})")
            total = cr[1]
            mode = "ab"
        else:  # 200: the server ignores Range; start over
            have = 0
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            mode = "wb"
        if size is not None and total is not None and total != size:
            part.unlink(missing_ok=True)
            raise SizeMismatch(f"{url}: the server's file has {total} bytes, the catalogue says {size}")
        total = total if total is not None else size
        progress.begin(total, have)
        _stream(resp, part, mode, progress, url)
    got = part.stat().st_size
    if total is not None and got < total:
        raise Cut(f"{url}: the connection ended after {got} of {total} bytes")


def _stream(src: io.BufferedIOBase, part: Path, mode: str, progress: Progress, url: str) -> None:
    """Copy `src` (a response or a file) onto `part`, synced; a broken connection is a Cut, a
    full disk a DiskFull with the partial file removed."""
    try:
        with open(part, mode) as out:
            try:
                while block := src.read(CHUNK):
                    out.write(block)
                    progress.update(len(block))
            except (http.client.IncompleteRead, ConnectionError, TimeoutError) as exc:
                out.flush()
                raise Cut(f"{url}: the connection broke ({_reason(exc) or type(exc).__name__})") from None
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        if _disk_full(exc):
            part.unlink(missing_ok=True)
            raise DiskFull(f"no space left for the download in {part.parent}") from None
        raise


def _fetch_file(url: str, part: Path, size: int | None, progress: Progress) -> None:
    src = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    try:
        fh = open(src, "rb")  # noqa: SIM115 - closed by the `with fh` below
        total = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise FetchError(f"{url}: {exc.strerror or exc}") from None
    if size is not None and total != size:
        fh.close()
        raise SizeMismatch(f"{url}: the file has {total} bytes, the catalogue says {size}")
    have = min(part.stat().st_size if part.exists() else 0, total)
    with fh:
        fh.seek(have)
        progress.begin(total, have)
        _stream(fh, part, "ab" if have else "wb", progress, url)


def fetch(
    url: str,
    cache_dir: Path,
    sha256: str,
    *,
    size: int | None = None,
    stream: TextIO | None = sys.stderr,
    interval: float | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
) -> Path:
    """The verified file <cache_dir>/<sha256>, downloaded (or resumed) if it is not there yet.

    A connection cut is retried `retries` times, each resuming where the last one stopped."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / sha256
    part = cache_dir / f"{sha256}.part"
    with locked(cache_dir / f"{sha256}.lock", stream):
        if final.is_file():
            if sha256_file(final) == sha256:
                if stream is not None:
                    stream.write(f"using the verified download in {final}\n")
                return final
            final.unlink()
        progress = Progress(stream, Path(urllib.parse.urlsplit(url).path).name or url, interval)
        scheme = urllib.parse.urlsplit(url).scheme
        for attempt in range(retries + 1):
            try:
                if scheme == "file":
                    _fetch_file(url, part, size, progress)
                else:
                    _fetch_http(url, part, size, progress, timeout)
                break
            except Cut:
                if attempt == retries:
                    raise
                time.sleep(backoff * min(2**attempt, 8))
        progress.finish()
        digest = sha256_file(part)
        if digest != sha256:
            part.unlink()
            raise ChecksumMismatch(f"{url}: sha256 {digest}, the catalogue says {sha256}")
        os.replace(part, final)
        return final
