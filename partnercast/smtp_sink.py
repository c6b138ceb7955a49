"""A local SMTP server (aiosmtpd) that receives and checks what the engine sends.

The demo starts one so that it needs nothing else installed or running; tests use the same
class. Every message received is parsed back with Python's email parser; addresses at
``bounce.example`` are refused with a permanent 550, as a real server refuses an unknown
mailbox, and those at ``defer.example`` with a temporary 451.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

BOUNCE_DOMAIN = "bounce.example"
DEFER_DOMAIN = "defer.example"


@dataclass
class Received:
    """What the sink got: parsed messages (kept up to ``keep``) and counts."""

    keep: int = 100_000
    messages: list[EmailMessage] = field(default_factory=list)
    count: int = 0
    unparsable: int = 0
    refused: int = 0
    sessions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler:
    def __init__(self, received: Received, save_to: Path | None, save_first: int) -> None:
        self.received = received
        self.save_to = save_to
        self.save_first = save_first

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
        if address.lower().endswith("@" + BOUNCE_DOMAIN):
            with self.received.lock:
                self.received.refused += 1
            return "550 5.1.1 mailbox unavailable"
        if address.lower().endswith("@" + DEFER_DOMAIN):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        try:
            message = message_from_bytes(raw, policy=default_policy)
            parsed = message.get_body(("plain",)) is not None and message["Message-ID"] is not None
        except Exception:  # a broken message is counted, not fatal to the sink
            parsed = False
        with self.received.lock:
            self.received.count += 1
            number = self.received.count
            if not parsed:
                self.received.unparsable += 1
            elif len(self.received.messages) < self.received.keep:
                self.received.messages.append(message)  # type: ignore[arg-type]
        if self.save_to is not None and number <= self.save_first:
            (self.save_to / f"message-{number:03d}.eml").write_bytes(raw)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpSink:
    """Start with ``with SmtpSink() as sink:``; ``sink.port`` is where to send."""

    def __init__(
        self, *, keep: int = 100_000, save_to: Path | None = None, save_first: int = 0
    ) -> None:
        self.received = Received(keep=keep)
        self.port = free_port()
        if save_to is not None:
            save_to.mkdir(parents=True, exist_ok=True)
        handler = _Handler(self.received, save_to, save_first)
        self._controller = Controller(handler, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
