"""Downloading one pinned file into kzoo's cache, and the lock that keeps processes from racing.

:func:`download` streams a URL into a unique temporary ``.part`` file beside its final name
(:func:`kzoo.atomic.destination`), checks its size and hashes, and only then renames it into
place, so a partial or wrong file never reaches the cache. Around that:

- **Bounded.** Reading stops at the pinned size: a body larger than the file it should be
  (an endless one included) is refused after ``size + 1`` bytes, and a ``Content-Length``
  over the pin is refused before reading. A gzip or deflate ``Content-Encoding`` (which kzoo
  never asks for) is decoded in bounded pieces, so a compressed bomb cannot fill the disk;
  other encodings are refused.
- **Every failure is a** :class:`~kzoo.errors.DownloadError` naming the URL and what went
  wrong: HTTP errors, resets, a stall past the read timeout, a redirect loop, malformed HTTP
  (a bad status line, a chunked body cut mid-chunk), an HTML page where the file should be, a
  body over the pin, and a disk that fills at any byte (the last write, the flush and the
  rename included).
- **Transient errors are retried** (HTTP 408/429/500/502/503/504, resets, timeouts, bodies cut
  short) up to :data:`RETRIES` times with exponential backoff from :data:`BACKOFF` seconds. A
  retry after part of the body arrived asks for the rest (``Range: bytes=N-``) and appends it
  when the server answers ``206`` from byte N; otherwise it starts again from byte 0.
- **One download per entry.** :func:`entry_lock` holds an exclusive ``flock`` on
  ``.locks/NAME.lock`` beside the entry for the whole download (lock files stay: deleting one
  while another process waits on it would let a third lock a new file), so N processes fetching the same file
  make one request: the others wait, then find the verified file. The lock only saves work:
  correctness rests on the temporary file, the hash and the atomic rename, so a process that
  cannot lock (no ``fcntl``, or a holder that outlasts ``wait`` seconds) downloads on its own.
  Holding the lock also proves that every ``.NAME.*.part`` file beside the entry belongs to a
  process that died mid-download; those are removed before the next download.

Written on the standard library (``urllib``, ``fcntl``, ``zlib``) because kzoo's cache must
work with nothing but its declared dependencies installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from kzoo import atomic
from kzoo.errors import DownloadError, IntegrityError, KzooError

logger = logging.getLogger("kzoo")

RETRIES = 3
BACKOFF = 0.5  # seconds before the first retry; doubled for each further one
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
CHUNK = 1 << 20
LOCKS = ".locks"  # the folder beside the entries that holds their (empty, kept) lock files


class _DiskError(Exception):
    """Writing the temporary file failed (kept apart from network errors, which may be retried)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


class _Restart(Exception):
    """The server's answer to a ranged retry cannot be appended: fetch the whole body again."""


@contextlib.contextmanager
def entry_lock(path: str | os.PathLike, *, wait: float = 600.0) -> Iterator[bool]:
    """Holds an exclusive lock on cache entry ``path`` (the file ``.locks/NAME.lock`` beside it).

    Yields ``True`` when the lock is held, ``False`` when it could not be taken (no ``fcntl`` on
    this platform, or another holder for more than ``wait`` seconds): the caller then proceeds
    unlocked, which costs a duplicate download at worst.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no flock; a duplicate download is the cost
        yield False
        return
    path = Path(path)
    locks = path.parent / LOCKS
    locks.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(locks / f"{path.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline, told = time.monotonic() + wait, False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    logger.warning("kzoo: %s stayed locked for %.0f s; downloading without the lock.", path, wait)
                    yield False
                    return
                if not told:
                    logger.info("kzoo: another process is downloading %s; waiting for it.", path.name)
                    told = True
                time.sleep(0.05)
        try:
            yield True
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)


def remove_stale_parts(path: str | os.PathLike) -> list[Path]:
    """Removes the temporary ``.NAME.*.part`` files of entry ``path``; call only under its lock."""
    path = Path(path)
    removed = []
    for stale in path.parent.glob(f".{path.name}.*.part"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
            removed.append(stale)
    if removed:
        logger.info("kzoo: removed %d partial download(s) of %s left by a process that died.", len(removed), path.name)
    return removed


def _decoder(encoding: str, url: str) -> zlib._Decompress | None:
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header, detected
    raise DownloadError(
        f"downloading {url} failed: the server sent the body with Content-Encoding {encoding!r}, "
        "which kzoo cannot decode (it accepts identity, gzip and deflate). Download the file yourself "
        "and copy it into the cache, or report the server."
    )


def download(
    url: str,
    path: str | os.PathLike,
    *,
    size: int | None,
    sha256: str | None = None,
    md5: str | None = None,
    label: str = "",
    timeout: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> Path:
    """Downloads ``url`` to ``path`` atomically, checked against the pinned size and hashes.

    Args:
        url: Where the file is.
        path: The cache entry to create (replaced only by a verified file).
        size: The pinned size in bytes (reading stops past it), or ``None``.
        sha256: The pinned SHA-256 (lower-case hex), or ``None``.
        md5: The pinned MD5, or ``None`` (at least one hash should be given).
        label: What the file is, for messages (``"lenet5.mnist"``).
        timeout: Seconds to wait for a connection and for each read.
        progress: Called with ``(bytes so far, expected total)`` after each piece.

    Raises:
        DownloadError: the download failed (see the module docstring for every case).
        IntegrityError: the whole body arrived but its size or hash is not the pinned one.
    """
    path = Path(path)
    what = label or path.name
    try:
        with atomic.destination(path, suffix=".part") as temporary:
            received, hashes = _fetch(url, temporary, size=size, what=what, timeout=timeout, progress=progress)
            expected = {"sha256": sha256, "md5": md5}
            for algorithm, digest in hashes.items():
                if expected[algorithm] and digest != expected[algorithm].lower():
                    raise IntegrityError(
                        f"downloaded {what} from {url} failed the integrity check: expected {algorithm} "
                        f"{expected[algorithm]}, received {digest}. The file was discarded; try again, and "
                        "report it if it persists."
                    )
            if size is not None and received != size:
                raise IntegrityError(
                    f"downloaded {what} from {url} failed the integrity check: expected {size} bytes, received "
                    f"{received} bytes. The file was discarded; try again, and report it if it persists."
                )
    except KzooError:
        raise
    except _DiskError as error:
        raise _disk_full(what, url, path, error.error) from None
    except OSError as error:  # the flush, fsync or rename of the verified file
        raise _disk_full(what, url, path, error) from None
    return path


def _disk_full(what: str, url: str, path: Path, error: OSError) -> DownloadError:
    return DownloadError(
        f"downloading {what} from {url} failed: could not write {path.parent}: {error.strerror or error}. "
        "Free disk space there (or point KZOO_HOME at a disk with room) and try again; nothing was kept."
    )


def _fetch(
    url: str,
    temporary: str,
    *,
    size: int | None,
    what: str,
    timeout: float,
    progress: Callable[[int, int | None], None] | None,
) -> tuple[int, dict[str, str]]:
    """Streams the body into ``temporary``, retrying transient failures; returns (bytes, hashes)."""
    attempt, ranged = 0, True
    with open(temporary, "wb") as handle:
        state = _Body(handle, size=size, url=url, what=what, progress=progress)
        while True:
            try:
                state.receive(timeout=timeout, ranged=ranged)
                _write(handle.flush)
                return state.received, state.digests()
            except _Restart:
                state.reset()
                ranged = False
                continue
            except urllib.error.HTTPError as error:
                if error.code in TRANSIENT_STATUS and attempt < RETRIES:
                    attempt = _wait(attempt, what, f"HTTP {error.code}")
                    continue
                hint = (
                    "the server redirects in a loop"
                    if 300 <= error.code < 400
                    else f"the server answered HTTP {error.code} {error.reason}"
                )
                tries = f" ({attempt + 1} attempts)" if attempt else ""
                raise DownloadError(
                    f"downloading {what} from {url} failed: {hint}{tries}. Check the URL or try again later."
                ) from None
            except (TimeoutError, ConnectionError, http.client.IncompleteRead) as error:
                if attempt < RETRIES:
                    attempt = _wait(attempt, what, _describe(error))
                    continue
                raise DownloadError(
                    f"downloading {what} from {url} failed after {state.received} bytes and {attempt + 1} "
                    f"attempts: {_describe(error)}. Check your connection and try again."
                ) from None
            except (http.client.HTTPException, urllib.error.URLError, ValueError) as error:
                reason = getattr(error, "reason", None)
                if isinstance(reason, (TimeoutError, ConnectionResetError)) and attempt < RETRIES:
                    attempt = _wait(attempt, what, _describe(reason))
                    continue
                raise DownloadError(
                    f"downloading {what} from {url} failed after {state.received} bytes: {_describe(error)}. "
                    "Check the URL and your connection and try again."
                ) from None


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no data within the read timeout (the server stalled)"
    if isinstance(error, http.client.IncompleteRead):
        return f"the body was cut short ({len(error.partial)} bytes of a piece arrived)"
    if isinstance(error, http.client.HTTPException):
        return f"malformed HTTP from the server ({type(error).__name__}: {str(error)[:200]})"
    reason = getattr(error, "reason", None)
    if isinstance(error, urllib.error.URLError) and reason is not None:
        return _describe(reason) if isinstance(reason, BaseException) else str(reason)
    return f"{type(error).__name__}: {str(error)[:200]}"


def _wait(attempt: int, what: str, reason: str) -> int:
    delay = BACKOFF * 2**attempt
    logger.warning("kzoo: downloading %s: %s; retrying in %.1f s.", what, reason, delay)
    time.sleep(delay)
    return attempt + 1


def _write(operation: Callable[..., object], *args: object) -> None:
    try:
        operation(*args)
    except OSError as error:
        raise _DiskError(error) from error


class _Body:
    """What has arrived so far: bytes, hashes, and how to ask for the rest."""

    def __init__(self, handle, *, size, url, what, progress) -> None:  # noqa: ANN001
        self.handle, self.size, self.url, self.what, self.progress = handle, size, url, what, progress
        self.reset()

    def reset(self) -> None:
        _write(self.handle.seek, 0)
        _write(self.handle.truncate)
        self.received = 0
        self.sha256, self.md5 = hashlib.sha256(), hashlib.md5()

    def digests(self) -> dict[str, str]:
        return {"sha256": self.sha256.hexdigest(), "md5": self.md5.hexdigest()}

    def receive(self, *, timeout: float, ranged: bool) -> None:
        headers = {"User-Agent": "kzoo", "Accept-Encoding": "identity"}
        resume = ranged and self.received > 0
        if resume:
            headers["Range"] = f"bytes={self.received}-"
        with urllib.request.urlopen(urllib.request.Request(self.url, headers=headers), timeout=timeout) as response:
            encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
            if resume:
                start = (response.headers.get("Content-Range") or "").removeprefix("bytes ").split("-")[0]
                if response.status != 206 or start != str(self.received) or encoding != "identity":
                    raise _Restart  # the server sent the whole file (or another piece): start over
            elif self.received:
                self.reset()
            content_type = (response.headers.get("Content-Type") or "").lower()
            if content_type.startswith(("text/html", "application/xhtml")):
                raise DownloadError(
                    f"downloading {self.what} from {self.url} failed: the server sent a web page "
                    f"(Content-Type {content_type.split(';')[0]}), not the file. The URL may need a login or "
                    "point at a page about the file; open it in a browser to see."
                )
            length = response.headers.get("Content-Length")
            end = self.received + int(length) if encoding == "identity" and length and length.isdigit() else None
            if self.size is not None and end is not None and end > self.size:
                raise self._too_large(end, declared=True)
            decoder = _decoder(encoding, self.url)
            while True:
                chunk = response.read1(CHUNK)  # what has arrived (read(n) would wait for all n bytes)
                if not chunk:
                    break
                if decoder is None:
                    self._keep(chunk)
                    continue
                while chunk:  # bounded pieces: a compressed bomb stops at the pin, not at the disk
                    self._keep(decoder.decompress(chunk, CHUNK))
                    chunk = decoder.unconsumed_tail
            if decoder is not None:
                self._keep(decoder.flush())
                if not decoder.eof:
                    raise http.client.IncompleteRead(b"")
            if end is not None and self.received < end:  # http.client's read(n) ends quietly at a cut
                raise http.client.IncompleteRead(b"", end - self.received)

    def _keep(self, piece: bytes) -> None:
        if not piece:
            return
        if self.size is not None and self.received + len(piece) > self.size:
            raise self._too_large(self.received + len(piece), declared=False)
        _write(self.handle.write, piece)
        self.sha256.update(piece)
        self.md5.update(piece)
        self.received += len(piece)
        if self.progress is not None:
            self.progress(self.received, self.size)

    def _too_large(self, count: int, *, declared: bool) -> DownloadError:
        how = f"declared {count} bytes" if declared else f"sent more than {self.size} bytes; reading stopped at {count}"
        return DownloadError(
            f"downloading {self.what} from {self.url} failed: the server {how}, but the pinned file has "
            f"{self.size} bytes. Nothing was kept; the URL may serve another file now (report it)."
        )
