"""``kzoo.weights.fetch`` (through :mod:`kzoo.download`) against a fault-injecting HTTP server on 127.0.0.1.

Each fault is real: the server cuts connections, stalls, lies about lengths, sends malformed
status lines, gzip bodies, web pages, endless bodies and redirect loops; processes race for one
entry and are SIGKILLed mid-transfer; a disk fills (a file-size limit set with ``setrlimit`` in
a child process) at a chosen byte. Every failure must be a ``DownloadError`` (or an
``IntegrityError`` for a whole body with the wrong hash) naming the URL, and the cache must end
holding either the verified file or nothing (no ``.part`` file).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import multiprocessing
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from kzoo import download
from kzoo import weights as weights_lib
from kzoo.errors import DownloadError, IntegrityError

BODY = os.urandom(300_000)  # a stand-in weights file: its bytes never compress


@functools.cache
def _bomb() -> bytes:
    return gzip.compress(bytes(64 << 20), compresslevel=9)


class FaultServer:
    """A ThreadingHTTPServer whose answer to each GET the test scripts: a list of fault modes,
    one per request, the last repeated."""

    def __init__(self) -> None:
        self.modes: list[str] = ["good"]
        self.requests: list[dict[str, str]] = []
        self.lock = threading.Lock()
        handler = type("Handler", (_FaultHandler,), {"owner": self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/w.weights.h5"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next_mode(self, headers) -> str:  # noqa: ANN001
        with self.lock:
            self.requests.append({key.lower(): value for key, value in headers.items()})
            return self.modes[min(len(self.requests) - 1, len(self.modes) - 1)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _FaultHandler(http.server.BaseHTTPRequestHandler):
    owner: FaultServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming), C901 (one branch per fault)
        mode = self.owner.next_mode(self.headers)
        self.close_connection = True
        if mode.startswith("status_"):  # status_503 ...
            self.send_response(int(mode.split("_")[1]))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "redirect_loop":
            self.send_response(302)
            self.send_header("Location", self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "bad_status_line":
            self.wfile.write(b"HTTP/1.1 OK-ish\r\n\r\n")
            return
        if mode == "html":
            self._reply(b"<html><body>Please log in</body></html>", {"Content-Type": "text/html; charset=utf-8"})
            return
        if mode in ("gzip", "gzip_bomb", "brotli"):  # the bomb: 64 MiB of zeros, about 64 KB on the wire
            body = {"gzip": lambda: gzip.compress(BODY), "gzip_bomb": _bomb, "brotli": lambda: b"\x00\x01\x02\x03"}
            self._reply(body[mode](), {"Content-Encoding": "br" if mode == "brotli" else "gzip"})
            return
        if mode in ("endless", "cut_chunked"):  # chunked: no length to refuse up front
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            pieces = [BODY[i : i + 65536] for i in range(0, 196608, 65536)] if mode == "cut_chunked" else None
            for index in range(len(pieces) if pieces else 10_000):
                piece = pieces[index] if pieces else os.urandom(65536)
                try:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                except OSError:  # the client stopped reading: what it should do
                    return
            if mode == "cut_chunked":
                self.wfile.write(b"%x\r\n%s" % (65536, BODY[196608:197608]))  # a chunk cut in the middle
            return
        if mode == "too_long":
            self.send_response(200)
            self.send_header("Content-Length", str(10 * len(BODY)))
            self.end_headers()
            return
        start = 0
        ranged = self.headers.get("Range")
        if ranged and mode in ("good", "resumable"):
            start = int(ranged.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(BODY) - start))
        self.end_headers()
        body = BODY[start:]
        if mode == "reset_half":  # half the body, then the connection drops
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if mode == "stall":  # a third of the body, then silence past the client's read timeout
            self.wfile.write(body[: len(body) // 3])
            self.wfile.flush()
            time.sleep(1.5)
            return
        if mode == "slow":  # 10 pieces, 0.1 s apart: long enough for others to race it
            step = len(body) // 10 + 1
            for offset in range(0, len(body), step):
                self.wfile.write(body[offset : offset + step])
                self.wfile.flush()
                time.sleep(0.1)
            return
        self.wfile.write(body)

    def _reply(self, body: bytes, headers: dict[str, str]) -> None:
        """A 200 with ``headers``, its Content-Length, and ``body``."""
        self.send_response(200)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    faults = FaultServer()
    yield faults
    faults.close()


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(download, "BACKOFF", 0.01)


def _record(server: FaultServer) -> weights_lib.WeightsRecord:
    return weights_lib.WeightsRecord(
        model="tiny_web",
        tag="faults",
        file="w.weights.h5",
        url=server.url,
        sha256=hashlib.sha256(BODY).hexdigest(),
        size=len(BODY),
    )


def _cache(home: Path) -> list[str]:
    folder = home / "weights"
    return sorted(p.name for p in folder.iterdir() if p.name != download.LOCKS) if folder.is_dir() else []


def _fetch(server, timeout: float = 10.0) -> Path:
    return weights_lib.fetch(_record(server), progress=False, timeout=timeout)


@pytest.mark.parametrize(
    ("modes", "requests"),
    [
        (["status_503", "status_502", "good"], 3),  # transient answers are retried with backoff
        (["reset_half", "good"], 2),  # a reset mid-body: the retry asks for the rest (checked below)
        (["gzip"], 1),  # a gzip-encoded body kzoo did not ask for is decoded
        (["stall", "good"], 2),  # a stall past the read timeout is retried
        (["cut_chunked", "good"], 2),  # a chunked body cut mid-chunk (IncompleteRead) is retried
    ],
    ids=["503-502-ok", "reset-resume", "gzip", "stall", "cut-chunk"],
)
def test_recoverable_faults_end_with_the_verified_file(server, kzoo_home, modes, requests):
    server.modes = modes
    path = _fetch(server, timeout=0.5)
    assert path.read_bytes() == BODY and _cache(kzoo_home) == ["w.weights.h5"]
    assert len(server.requests) == requests
    assert all(request["accept-encoding"] == "identity" for request in server.requests)
    if modes[0] == "reset_half":  # resumed from the byte the reset cut it at, not from 0
        assert server.requests[1]["range"] == f"bytes={len(BODY) // 2}-"


@pytest.mark.parametrize(
    ("modes", "message"),
    [
        (["status_404"], "the server answered HTTP 404"),
        (["status_503"], "the server answered HTTP 503 Service Unavailable (4 attempts)"),
        (["redirect_loop"], "the server redirects in a loop"),
        (["bad_status_line"], "malformed HTTP from the server (BadStatusLine"),
        (["html"], "the server sent a web page (Content-Type text/html), not the file"),
        (["brotli"], "Content-Encoding 'br', which kzoo cannot decode"),
        (["too_long"], f"the server declared {10 * len(BODY)} bytes, but the pinned file has {len(BODY)} bytes"),
        (["endless"], f"the server sent more than {len(BODY)} bytes; reading stopped at"),
        (["gzip_bomb"], f"the server sent more than {len(BODY)} bytes; reading stopped at"),
        (["stall"], "no data within the read timeout (the server stalled)"),
        (["reset_half"], "4 attempts"),
    ],
    ids=["404", "503-forever", "redirect-loop", "bad-status", "html", "brotli", "too-long", "endless", "bomb",
         "stall-forever", "reset-forever"],
)  # fmt: skip
def test_every_failure_is_a_download_error_naming_the_url_and_leaves_nothing(server, kzoo_home, modes, message):
    _bomb()  # built before the clock starts
    server.modes = modes
    started = time.perf_counter()
    with pytest.raises(DownloadError) as caught:
        _fetch(server, timeout=0.5)
    assert message in str(caught.value) and server.url in str(caught.value)
    assert _cache(kzoo_home) == []  # no .part file, no half file
    assert time.perf_counter() - started < 15


def test_an_endless_body_is_not_read_past_the_pin(server, kzoo_home, monkeypatch):
    written = []
    real = download._Body._keep

    def counting(self, piece):  # noqa: ANN001, ANN202
        real(self, piece)
        written.append(self.received)

    monkeypatch.setattr(download._Body, "_keep", counting)
    server.modes = ["endless"]
    with pytest.raises(DownloadError):
        _fetch(server)
    assert max(written, default=0) <= len(BODY)  # 655 MB on offer; not one byte past the pinned size written


def test_wrong_bytes_of_the_right_length_are_an_integrity_error(server, kzoo_home, monkeypatch):
    record = weights_lib.WeightsRecord(
        model="tiny_web", tag="faults", file="w.weights.h5", url=server.url, sha256="0" * 64, size=len(BODY)
    )
    with pytest.raises(IntegrityError, match="expected sha256 0000"):
        weights_lib.fetch(record, progress=False)
    assert _cache(kzoo_home) == []


def _child_fetch(url: str, home: str, limit: int | None, queue) -> None:  # noqa: ANN001
    """In a forked child: optionally a file-size limit (the disk is full past ``limit`` bytes)."""
    os.environ["KZOO_HOME"] = home
    if limit is not None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        server = type("S", (), {"url": url})()
        queue.put(("ok", str(_fetch(server))))
    except Exception as error:  # noqa: BLE001 (the parent asserts on what it was)
        queue.put((type(error).__name__, str(error)))


_fork = multiprocessing.get_context("fork")


@pytest.mark.parametrize("limit", [1000, len(BODY) - 1], ids=["early-byte", "last-byte"])
def test_a_full_disk_at_any_byte_is_a_download_error_and_leaves_nothing(server, kzoo_home, limit):
    queue = _fork.Queue()
    child = _fork.Process(target=_child_fetch, args=(server.url, str(kzoo_home), limit, queue))
    child.start()
    kind, message = queue.get(timeout=60)
    child.join(timeout=30)
    assert kind == "DownloadError", message
    assert "could not write" in message and server.url in message and "File too large" in message
    assert _cache(kzoo_home) == []


def test_racing_processes_make_one_request(server, kzoo_home):
    server.modes = ["slow"]  # a second long: every process starts while the first downloads
    queue = _fork.Queue()
    children = [_fork.Process(target=_child_fetch, args=(server.url, str(kzoo_home), None, queue)) for _ in range(8)]
    for child in children:
        child.start()
    results = [queue.get(timeout=120) for _ in children]
    for child in children:
        child.join(timeout=30)
    assert all(kind == "ok" for kind, _ in results), results
    assert len(server.requests) == 1
    assert (kzoo_home / "weights" / "w.weights.h5").read_bytes() == BODY
    assert _cache(kzoo_home) == ["w.weights.h5"]


def test_a_download_killed_mid_transfer_leaves_a_part_file_that_the_next_download_removes(server, kzoo_home):
    server.modes = ["slow", "good"]
    queue = _fork.Queue()
    child = _fork.Process(target=_child_fetch, args=(server.url, str(kzoo_home), None, queue))
    child.start()
    folder = kzoo_home / "weights"
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size > 0 for p in folder.glob(".w.weights.h5.*.part")) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)  # mid-body: the kill leaves its partial file behind
    child.join(timeout=30)
    leftover = list(folder.glob(".w.weights.h5.*.part"))
    assert len(leftover) == 1 and 0 < leftover[0].stat().st_size < len(BODY)
    assert _fetch(server).read_bytes() == BODY  # the kill released the lock; the next process proceeds
    assert _cache(kzoo_home) == ["w.weights.h5"]  # and the dead one's part file is gone
