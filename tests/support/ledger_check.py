"""Worlds copied from one built template, and what a sink received checked against the ledger.

Building the sample world (migrations, partners, contacts, the campaign) takes about a
second; copying its SQLite file takes a millisecond. Property-based and fault tests that
need a fresh world for every example copy :func:`template_world` instead of building one.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from partnercast.channels.email import SmtpSettings
from partnercast.core.db import make_engine, upgrade
from partnercast.core.models import Delivery
from partnercast.core.settings import load_settings
from partnercast.core.tenancy import tenant_session
from support.world import World, build_world

_TEMPLATE: dict[str, tuple[Path, int]] = {}


def _template() -> tuple[Path, int]:
    """The sample world's database file, built once per test process."""
    if "world" not in _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="partnercast-template-"))
        engine = make_engine(f"sqlite:///{folder / 'template.db'}")
        upgrade(engine)
        world = build_world(engine, folder / "world", smtp_port=9)
        raw = engine.raw_connection()  # a checkpoint runs outside any transaction
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
        engine.dispose()
        _TEMPLATE["world"] = (folder / "template.db", world.tenant_id)
    return _TEMPLATE["world"]


def copy_world(folder: Path, smtp_port: int, *, timeout_seconds: float = 5.0) -> World:
    """A fresh copy of the sample world (one vendor, six partners enrolled, no cycle)."""
    source, tenant_id = _template()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "world.db"
    shutil.copyfile(source, target)
    for suffix in ("-wal", "-shm"):  # in case a checkpoint was left undone
        if Path(f"{source}{suffix}").exists():
            shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
    engine = make_engine(f"sqlite:///{target}")
    settings = load_settings(
        database_url=str(engine.url),
        public_base_url="http://127.0.0.1:9",
        smtp=SmtpSettings(host="127.0.0.1", port=smtp_port, timeout_seconds=timeout_seconds),
    )
    return World(engine, settings, tenant_id, folder)


@dataclass(frozen=True)
class Arrival:
    """One message as the sink got it."""

    message_id: str
    to: str
    sender: str
    subject: str
    text: str


def arrivals(raw: list[bytes]) -> list[Arrival]:
    """Parse what the sink kept (compat32 parser: fast, and enough for these headers)."""
    found = []
    for data in raw:
        message = message_from_bytes(data)
        found.append(
            Arrival(
                message_id=str(message["Message-ID"]).strip(),
                to=str(message["To"]).strip().lower(),
                sender=str(message["From"]),
                subject=str(message["Subject"]),
                text=_plain_text(message),
            )
        )
    return found


def _plain_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    return ""


def has_uncertain_column() -> bool:
    """Whether the ledger records uncertain (in-flight at a crash) deliveries yet."""
    return "uncertain" in Delivery.model_fields


@dataclass
class LedgerView:
    """The ledger rows behind a set of Message-IDs, and the sent/suppressed ones."""

    by_message_id: dict[str, Delivery] = field(default_factory=dict)
    sent_ids: set[str] = field(default_factory=set)
    suppressed_ids: set[str] = field(default_factory=set)


def ledger(engine: Engine, tenant_id: int) -> LedgerView:
    view = LedgerView()
    with tenant_session(engine, tenant_id) as session:
        rows = session.exec(select(Delivery).where(col(Delivery.message_id) != "")).all()
        for row in rows:
            session.expunge(row)
            view.by_message_id[row.message_id] = row
            if row.state == "sent":
                view.sent_ids.add(row.message_id)
            elif row.state == "suppressed":
                view.suppressed_ids.add(row.message_id)
    return view


def repeated(received: list[Arrival]) -> Counter[str]:
    """Message-IDs that arrived more than once, with how often."""
    counts = Counter(arrival.message_id for arrival in received)
    return Counter({mid: n for mid, n in counts.items() if n > 1})
