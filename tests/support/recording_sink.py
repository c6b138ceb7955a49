"""An SMTP sink in a process of its own that records every message it accepts, slowly.

The crash tests kill workers, never this process, and count deliveries HERE rather than in
the engine's tables. For each accepted message it appends one line to a file:

    arrival time (epoch seconds) TAB recipient TAB Message-ID TAB Subject TAB client port

written and flushed just before the 250 reply, i.e. at the moment the message counts as
delivered for a real mail server. A client killed while the sink waits before that reply
still has its message recorded (the server accepted it; the client never heard so): that
is exactly the uncertain in-flight message of issue 5.

``delay`` seconds are slept in DATA before recording (asyncio, so connections do not wait
for each other): the per-message cost of a slow receiving server, which keeps delivery
going long enough for the tests to kill workers many times while it runs.

Run as a script (``python recording_sink.py OUT --delay 0.03``): it prints ``port N`` once
it listens and stops on SIGTERM. :class:`RecordingSink` does that for a test.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any, TextIO


@dataclass(frozen=True)
class Arrival:
    """One message the sink accepted, for one recipient."""

    at: float
    recipient: str
    message_id: str
    subject: str
    client_port: int


def parse_arrivals(text: str) -> list[Arrival]:
    """Arrivals from whole lines of the sink's record."""
    arrivals = []
    for line in text.splitlines():
        cells = line.split("\t")
        if len(cells) != 5:
            continue
        at, recipient, message_id, subject, port = cells
        arrivals.append(Arrival(float(at), recipient, message_id, subject, int(port)))
    return arrivals


def read_arrivals(path: Path) -> list[Arrival]:
    """The sink's record, in arrival order (a partly written last line is left out)."""
    text = path.read_text(encoding="utf-8")
    return parse_arrivals(text[: text.rfind("\n") + 1])


class _Recorder:
    def __init__(self, out: TextIO, delay: float) -> None:
        self.out = out
        self.delay = delay
        self.parser = BytesHeaderParser(policy=compat32)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        raw = envelope.original_content or envelope.content
        headers = self.parser.parsebytes(raw.split(b"\r\n\r\n", 1)[0])
        message_id = " ".join(str(headers.get("Message-ID", "")).split())
        subject = " ".join(str(headers.get("Subject", "")).split()).replace("\t", " ")
        port = int(session.peer[1]) if session.peer else 0
        for recipient in envelope.rcpt_tos:
            self.out.write(f"{time.time():.6f}\t{recipient}\t{message_id}\t{subject}\t{port}\n")
        self.out.flush()
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(out_path: Path, delay: float) -> None:
    """Listen until SIGTERM; print ``port N`` when ready."""
    from aiosmtpd.controller import Controller

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with out_path.open("a", encoding="utf-8") as out:
        port = _free_port()
        controller = Controller(_Recorder(out, delay), hostname="127.0.0.1", port=port)
        controller.start()
        print(f"port {port}", flush=True)
        try:
            while not stop.wait(0.2):
                pass
        finally:
            controller.stop()


class RecordingSink:
    """Start with ``with RecordingSink(path, delay=0.03) as sink:``; send to ``sink.port``."""

    def __init__(self, out_path: Path, *, delay: float = 0.0) -> None:
        self.out_path = out_path
        self.delay = delay
        self.port = 0
        self._process: subprocess.Popen[str] | None = None
        self._read: list[Arrival] = []  # what arrivals() has parsed so far ...
        self._offset = 0  # ... up to this byte of the record

    def __enter__(self) -> RecordingSink:
        self.out_path.touch()
        self._process = subprocess.Popen(
            [sys.executable, __file__, str(self.out_path), "--delay", str(self.delay)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line.startswith("port "):
            self._process.kill()
            raise RuntimeError(f"the recording sink did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def arrivals(self) -> list[Arrival]:
        """Every arrival so far; only the lines added since the last call are parsed.

        A crash test polls this 4 times a second while 10,000 lines accumulate: parsing
        the whole record each time cost the shared CPU the workers need.
        """
        with self.out_path.open("rb") as record:
            record.seek(self._offset)
            chunk = record.read()
        whole = chunk.rfind(b"\n") + 1
        self._read.extend(parse_arrivals(chunk[:whole].decode("utf-8")))
        self._offset += whole
        return list(self._read)

    def __exit__(self, *exc: object) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--delay", type=float, default=0.0)
    arguments = parser.parse_args()
    serve(arguments.out, arguments.delay)
