"""`partnercast serve` as a real process: it answers, and stops cleanly on SIGTERM and
Ctrl+C (SIGINT), with one worker or several; a taken port is one line (tests/test_layout.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import Engine

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
