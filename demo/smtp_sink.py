"""A local SMTP server (aiosmtpd) that receives and checks what the engine sends.

The demo starts one so that it needs nothing else installed or running; tests use the same
class. Every message received is parsed back with Python's email parser; addresses at
``bounce.example`` are refused with a permanent 550, as a real server refuses an unknown
mailbox, and those at ``defer.example`` with a temporary 451.

Tests inject other failures with :meth:`SmtpSink.inject` (see :class:`Fault`): any reply
(4xx, 5xx, ``421`` which also closes the connection) at the greeting, MAIL, RCPT, the DATA
command or the end of the message; a dropped connection (right after the greeting, or
mid-DATA: the message arrives and the connection is cut before the reply, with
``accept=True`` the message counts as received, as it would at a real server whose 250
was lost); a stall longer than the client's timeout; and each of these ``times=N`` only,
then success. The older shorthand ``sink.fault = "rcpt:<code>" | "drop" | "stall" |
"refuse-login"`` still works. With ``logins={user: password}`` the sink offers AUTH
(without TLS: a test server only).
"""

from __future__ import annotations

import asyncio
import math
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

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
    dropped: int = 0  # connections the sink cut on purpose (injected faults)
    # Message-IDs of messages kept although the client never got their 250 (accept=True)
    unacknowledged: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def messages(self) -> list[EmailMessage]:
        with self.lock:
            raw = list(self.raw)
        return [message_from_bytes(data, policy=default_policy) for data in raw]


STAGES = ("connect", "mail", "rcpt", "data", "message")


@dataclass
class Fault:
    """One injected failure.

    ``stage``: ``connect`` (right after the connection opens), ``mail``, ``rcpt``, ``data``
    (the DATA command, before 354) or ``message`` (the end of the message: what a server
    answers once it has the content). At that point the sink answers ``reply`` (a ``421``
    reply also closes the connection, as RFC 5321 says), or cuts the connection when
    ``drop`` (at ``connect``: just after the greeting), after first hanging ``stall``
    seconds when set (``math.inf``: until the fault is cleared or the sink stops). At
    ``message``, ``accept=True`` keeps the message as received before the drop or stall:
    the client cannot tell that it arrived. ``match`` limits a ``rcpt`` or ``message``
    fault to recipients whose address contains it. ``times``: strike that many times, then
    let everything through (None: every time). ``fired`` counts the strikes.
    """

    stage: str
    reply: str = ""
    drop: bool = False
    stall: float = 0.0
    accept: bool = False
    match: str = ""
    times: int | None = None
    fired: int = 0

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r} (one of {', '.join(STAGES)})")
        if not (self.reply or self.drop or self.stall):
            raise ValueError("a fault needs a reply, drop=True or a stall")
        if self.accept and self.stage != "message":
            raise ValueError("accept=True only makes sense at the message stage")

    def applies(self, stage: str, addresses: list[str]) -> bool:
        if stage != self.stage or (self.times is not None and self.fired >= self.times):
            return False
        return not self.match or any(self.match in address.lower() for address in addresses)


def _message_id(raw: bytes) -> str:
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line[:11].lower() == b"message-id:":
            return line[11:].strip().decode(errors="replace")
    return ""


class _Handler:
    def __init__(self, received: Received, save_to: Path | None, save_first: int) -> None:
        self.received = received
        self.save_to = save_to
        self.save_first = save_first
        self.fault: str | None = None  # the older shorthand; "refuse-login" is read here
        self.faults: list[Fault] = []
        self.stopping = False

    def take(self, stage: str, addresses: list[str]) -> Fault | None:
        """The first fault that strikes here now, counted as fired."""
        with self.received.lock:
            for fault in self.faults:
                if fault.applies(stage, addresses):
                    fault.fired += 1
                    return fault
        return None

    def _active(self, fault: Fault) -> bool:
        return any(active is fault for active in self.faults)

    async def strike(self, server: Any, fault: Fault) -> str | None:
        """Apply ``fault``: the reply to send, or None when the connection was cut."""
        waited = 0.0
        while waited < fault.stall and not self.stopping and self._active(fault):
            await asyncio.sleep(0.05)  # the server hangs; the client's timeout fires
            waited += 0.05
        if fault.drop or not fault.reply:
            with self.received.lock:
                self.received.dropped += 1
            server.transport.abort()
            return None
        if fault.reply.startswith("421"):
            asyncio.get_running_loop().call_soon(server.transport.close)  # after the reply
        return fault.reply

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.received.lock:
            self.received.sessions += 1
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        fault = self.take("mail", [])
        if fault is not None:
            return await self.strike(server, fault) or "421 dropped"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.fault and self.fault.startswith("rcpt:"):
            return f"{self.fault[5:]} injected failure"
        fault = self.take("rcpt", [address.lower()])
        if fault is not None:
            return await self.strike(server, fault) or "421 dropped"
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
        fault = self.take("message", [address.lower() for address in envelope.rcpt_tos])
        if fault is not None:
            if fault.accept:
                self._keep(raw)
                with self.received.lock:
                    self.received.unacknowledged.append(_message_id(raw))
            return await self.strike(server, fault) or "421 dropped"
        self._keep(raw)
        return "250 Message accepted for delivery"

    def _keep(self, raw: bytes) -> None:
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


class _FaultySMTP(SMTP):
    """aiosmtpd's server with the two fault points its handler hooks cannot reach."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        handler: _Handler = self.event_handler
        fault = handler.take("connect", [])
        greeting = self._handler_coroutine
        if fault is not None and self._original_transport is None and greeting is not None:
            greeting.cancel()  # the greeting is ours to send now
            self.loop.create_task(self._strike_at_greeting(handler, fault))

    async def _strike_at_greeting(self, handler: _Handler, fault: Fault) -> None:
        if fault.drop:
            await self.push(f"220 {self.hostname} ESMTP")
        reply = await handler.strike(self, fault)
        if reply is not None and self.transport is not None:
            await self.push(reply)
            self.transport.close()

    async def smtp_DATA(self, arg: str) -> None:
        handler: _Handler = self.event_handler
        envelope = self.envelope
        addresses = [a.lower() for a in envelope.rcpt_tos] if envelope is not None else []
        fault = handler.take("data", addresses) if addresses else None
        if fault is None:
            await super().smtp_DATA(arg)
            return
        reply = await handler.strike(self, fault)
        if reply is not None:
            self._set_rset_state()  # type: ignore[no-untyped-call]  # aiosmtpd leaves it untyped
            await self.push(reply)


class _FaultyController(Controller):
    def factory(self) -> SMTP:
        return _FaultySMTP(self.handler, **self.SMTP_kwargs)


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
        self._controller: Controller = _FaultyController(
            self._handler, hostname="127.0.0.1", port=self.port, **auth
        )

    @property
    def fault(self) -> str | None:
        return self._handler.fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        """The older shorthand: ``"rcpt:<code>"``, ``"drop"``, ``"stall"``, ``"refuse-login"``."""
        self.clear_faults()
        self._handler.fault = value
        if value == "drop":
            self.inject(Fault("message", drop=True))
        elif value == "stall":
            self.inject(Fault("message", stall=math.inf, drop=True))

    def inject(self, *faults: Fault) -> list[Fault]:
        """Add faults (checked in order; the first that applies strikes); returns them."""
        with self.received.lock:
            self._handler.faults.extend(faults)
        return list(faults)

    def clear_faults(self) -> None:
        """Remove every injected fault (a stall in progress ends and drops its connection)."""
        with self.received.lock:
            self._handler.faults = []
        self._handler.fault = None

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
