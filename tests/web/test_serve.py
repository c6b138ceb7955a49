"""`partnercast serve` as a real process: it answers, and stops cleanly on SIGTERM and
Ctrl+C (SIGINT), with one worker or several; a taken port is one line (tests/test_layout.py);
slow clients are timed out while others are answered."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import Engine

from partnercast.web import limits

READY = re.compile(r"serving on http://127\.0\.0\.1:(\d+)")


@contextmanager
def serving(tmp_path: Path, *options: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`partnercast serve --port 0 ...` in its own process, and its base URL once it
    listens (the process is killed if a test leaves it running)."""
    out = (tmp_path / "serve.out").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "partnercast", "serve", "--port", "0", *options],
        stdout=out,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        deadline = time.monotonic() + 60
        while not (found := READY.search(Path(out.name).read_text())):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        yield process, f"http://127.0.0.1:{found.group(1)}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        out.close()


def _healthy(base: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            answer = requests.get(f"{base}/healthz", timeout=60)  # workers take seconds to start
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert (answer.status_code, answer.text) == (200, "ok\n")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl+C"])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_answers_and_stops_cleanly(
    engine: Engine, tmp_path: Path, stop: signal.Signals, workers: str
) -> None:
    with serving(tmp_path, "--workers", workers) as (process, base):
        _healthy(base)
        for _ in range(4):  # several requests, so several workers may answer
            assert requests.get(f"{base}/u/forged", timeout=60).status_code == 200
        process.send_signal(stop)
        code = process.wait(timeout=30)
        stderr = process.stderr.read() if process.stderr else ""
        stdout = (tmp_path / "serve.out").read_text()
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert stdout.rstrip().endswith("stopped")
    with pytest.raises(requests.ConnectionError):  # nothing listens any more
        requests.get(f"{base}/healthz", timeout=2)


def _open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("Threads:")).split()[1])


def _connect(port: int, sent: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    if sent:
        sock.sendall(sent)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """What the server sent before closing (b'' for a plain close)."""
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def test_slow_clients_are_timed_out_and_the_server_answers_others(
    engine: Engine, tmp_path: Path, tenant_a: int
) -> None:
    """800 idle sockets, 50 with half their headers, 50 with half a body, 5 with endless
    headers and one declaring a huge body, against `partnercast serve`: everyone else is
    answered at once while they are held; the server closes each by its deadline
    (limits.HEADER_TIMEOUT, BODY_TIMEOUT) and gives back every descriptor it took."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4096), hard), hard))
    with serving(tmp_path) as (process, base):
        port = int(base.rsplit(":", 1)[1])
        _healthy(base)
        requests.post(f"{base}/crm/vendor-a/leads", data=b"{}", timeout=30)  # the thread pool
        fds_before, threads_before = _open_fds(process.pid), _threads(process.pid)
        started = time.monotonic()

        idle = [_connect(port) for _ in range(800)]
        half_headers = [
            _connect(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ") for _ in range(50)
        ]
        half_body = [
            _connect(
                port,
                b"POST /crm/vendor-a/leads HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
                b"Content-Length: 1000\r\n\r\nopportunity,stage\r\n",
            )
            for _ in range(50)
        ]
        huge = _connect(
            port,
            b"POST /crm/vendor-a/leads HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n",
        )
        endless = [_connect(port, b"GET / HTTP/1.1\r\n") for _ in range(5)]
        for sock in endless:
            with contextlib.suppress(OSError):  # the server closes it once over the limit
                for _ in range(20):
                    sock.sendall(b"X-Padding: " + b"a" * 4000 + b"\r\n")

        time.sleep(1)
        assert _open_fds(process.pid) >= fds_before + 890  # they are held
        for _ in range(20):  # others are answered while they are
            asked = time.monotonic()
            assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
            assert time.monotonic() - asked < 2
        assert _answer(huge).startswith(b"HTTP/1.1 413 ")
        for sock in endless:
            assert _answer(sock).startswith(b"HTTP/1.1 431 ")

        for sock in idle:
            assert _answer(sock) == b""  # closed, nothing to say to a silent client
        for sock in half_headers:
            assert _answer(sock).startswith(b"HTTP/1.1 408 ")
        headers_closed = time.monotonic() - started
        for sock in half_body:
            assert _answer(sock).startswith(b"HTTP/1.1 408 ")
        body_closed = time.monotonic() - started
        assert limits.HEADER_TIMEOUT - 1 < headers_closed < limits.HEADER_TIMEOUT + 15
        assert limits.BODY_TIMEOUT - 1 < body_closed < limits.BODY_TIMEOUT + 15

        for sock in (*idle, *half_headers, *half_body, huge, *endless):
            sock.close()
        deadline = time.monotonic() + 10
        while _open_fds(process.pid) > fds_before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _open_fds(process.pid) <= fds_before  # every socket it held is given back
        assert _threads(process.pid) <= threads_before  # and no thread was spent on them
        assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "Traceback" not in (process.stderr.read() if process.stderr else "")


def test_headers_and_a_large_body_sent_at_once_are_not_taken_for_large_headers(
    engine: Engine, tmp_path: Path
) -> None:
    """A client that writes the request in one go: the server's first read holds the
    headers and the start of a body larger than the header limit (431 before the fix)."""
    body = b"[" * 150_000 + b"]" * 150_000
    head = (
        "POST /crm/northwind/leads HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with serving(tmp_path) as (_process, base):
        _healthy(base)
        port = int(base.rsplit(":", 1)[1])
        answer = _answer(_connect(port, head + body))
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]  # unsigned: read, then refused
