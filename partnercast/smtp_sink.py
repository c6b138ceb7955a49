"""A local SMTP server (aiosmtpd) that receives and checks what the engine sends.

The demo starts one so that it needs nothing else installed or running; tests use the same
class. Every message received is parsed back with Python's email parser; addresses at
``bounce.example`` are refused with a permanent 550, as a real server refuses an unknown
mailbox, and those at ``defer.example`` with a temporary 451.

Tests inject other failures by setting ``sink.fault``: ``"rcpt:<code>"`` answers every
recipient with that code, ``"drop"`` closes the connection at DATA, ``"stall"`` never
answers DATA (the client times out), ``"refuse-login"`` refuses every login. With
``logins={user: password}`` the sink offers AUTH (without TLS: a test server only).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

BOUNCE_DOMAIN = "bounce.example"
DEFER_DOMAIN = "defer.example"


@dataclass
class Received:
    """What the sink got: raw messages (kept up to ``keep``) and counts.

    Every message is parsed on arrival with the email package's parser (the fast compat32
    policy) and counted as unparsable unless it is multipart with a text/plain part and a
    Message-ID; ``messages`` gives them parsed with the modern policy, for inspection.
    """

    keep: int = 100_000
    raw: list[bytes] = field(default_factory=list)
    count: int = 0
    unparsable: int = 0
    refused: int = 0
    sessions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def messages(self) -> list[EmailMessage]:
        with self.lock:
            raw = list(self.raw)
        return [message_from_bytes(data, policy=default_policy) for data in raw]  # type: ignore[misc]


class _Handler:
    def __init__(self, received: Received, save_to: Path | None, save_first: int) -> None:
        self.received = received
        self.save_to = save_to
        self.save_first = save_first
        self.fault: str | None = None
        self.stopping = False

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.received.lock:
            self.received.sessions += 1
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.fault and self.fault.startswith("rcpt:"):
            return f"{self.fault[5:]} injected failure"
        if address.lower().endswith("@" + BOUNCE_DOMAIN):
            with self.received.lock:
                self.received.refused += 1
            return "550 5.1.1 mailbox unavailable"
        if address.lower().endswith("@" + DEFER_DOMAIN):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fault == "drop":
            server.transport.abort()
            return "421 dropped"
        while self.fault == "stall" and not self.stopping:
            await asyncio.sleep(0.05)  # the server hangs; the client's timeout fires
        raw = envelope.original_content or envelope.content
        parsed = _looks_right(raw)
        with self.received.lock:
            self.received.count += 1
            number = self.received.count
            if not parsed:
                self.received.unparsable += 1
            elif len(self.received.raw) < self.received.keep:
                self.received.raw.append(raw)
        if self.save_to is not None and number <= self.save_first:
            (self.save_to / f"message-{number:03d}.eml").write_bytes(raw)
        return "250 Message accepted for delivery"


def _looks_right(raw: bytes) -> bool:
    try:
        message = message_from_bytes(raw)
    except Exception:  # a broken message is counted, not fatal to the sink
        return False
    types = [part.get_content_type() for part in message.walk()]
    return message.is_multipart() and "text/plain" in types and message["Message-ID"] is not None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpSink:
    """Start with ``with SmtpSink() as sink:``; ``sink.port`` is where to send."""

    def __init__(
        self,
        *,
        keep: int = 100_000,
        save_to: Path | None = None,
        save_first: int = 0,
        logins: dict[str, str] | None = None,
    ) -> None:
        self.received = Received(keep=keep)
        self.port = free_port()
        if save_to is not None:
            save_to.mkdir(parents=True, exist_ok=True)
        self._handler = _Handler(self.received, save_to, save_first)
        auth: dict[str, Any] = {}
        if logins is not None:
            auth = {"auth_require_tls": False, "authenticator": self._authenticator(logins)}
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=self.port, **auth)

    @property
    def fault(self) -> str | None:
        return self._handler.fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        self._handler.fault = value

    def _authenticator(self, logins: dict[str, str]) -> Any:
        def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            if self._handler.fault == "refuse-login" or not isinstance(data, LoginPassword):
                return AuthResult(success=False, handled=False)
            user, password = data.login.decode(), data.password.decode()
            return AuthResult(success=logins.get(user) == password, handled=False)

        return check

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._handler.stopping = True
        self._controller.stop()


@dataclass
class SinkCounts:
    """What a sink in another process received, as counted there."""

    count: int = 0
    unparsable: int = 0
    refused: int = 0
    sessions: int = 0


def _serve_in_child(
    port: int, save_to: Path | None, save_first: int, counts: Any, stop: Any
) -> None:
    sink = SmtpSink(keep=0, save_to=save_to, save_first=save_first)
    sink.port = port
    sink._controller = Controller(
        _Handler(sink.received, save_to, save_first), hostname="127.0.0.1", port=port
    )
    with sink:
        counts[4] = 1  # ready
        while not stop.wait(0.1):
            _publish_counts(sink.received, counts)
        _publish_counts(sink.received, counts)


def _publish_counts(received: Received, counts: Any) -> None:
    with received.lock:
        counts[0], counts[1] = received.count, received.unparsable
        counts[2], counts[3] = received.refused, received.sessions


class SmtpSinkProcess:
    """The same sink in a process of its own, so that it does not share our CPU and GIL.

    It keeps no messages in memory: it counts them, checks each one parses, and saves the
    first ``save_first`` as .eml files in ``save_to``.
    """

    def __init__(self, *, save_to: Path | None = None, save_first: int = 0) -> None:
        import multiprocessing

        self._mp = multiprocessing.get_context("spawn")
        self.port = free_port()
        self.save_to = save_to
        if save_to is not None:
            save_to.mkdir(parents=True, exist_ok=True)
        self._counts = self._mp.Array("q", 5, lock=False)
        self._stop = self._mp.Event()
        self._process = self._mp.Process(
            target=_serve_in_child,
            args=(self.port, save_to, save_first, self._counts, self._stop),
            daemon=True,
        )

    @property
    def counts(self) -> SinkCounts:
        return SinkCounts(*self._counts[:4])

    def saved(self) -> list[Path]:
        return sorted(self.save_to.glob("message-*.eml")) if self.save_to else []

    def __enter__(self) -> SmtpSinkProcess:
        import time

        self._process.start()
        deadline = time.monotonic() + 20
        while not self._counts[4]:
            if time.monotonic() > deadline or not self._process.is_alive():
                raise RuntimeError("the local SMTP server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(timeout=10)
