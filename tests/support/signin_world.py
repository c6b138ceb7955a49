"""People for the sign-in tests: two vendors, their partners, users with memberships, and
reading a sign-in link back from the test's SMTP server."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy.engine import Engine

from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.tenants.access import Role
from partnercast.tenants.models import Partner
from partnercast.tenants.users import ensure_user, grant

LINK = re.compile(r"https?://[^\s\"<>]+/sign-in/[A-Za-z0-9_\-.]+")


def add_partner(engine: Engine, tenant_id: int, name: str, now: datetime, **fields: object) -> int:
    with tenant_session(engine, tenant_id) as session:
        partner = Partner(
            external_id=name.lower().replace(" ", "-"),
            name=name,
            created_at=now,
            updated_at=now,
            **fields,  # type: ignore[arg-type]
        )
        session.add(partner)
        session.flush()
        assert partner.id is not None
        return partner.id


def add_user(
    engine: Engine,
    email: str,
    role: Role,
    now: datetime,
    *,
    tenant_id: int | None = None,
    partner_id: int | None = None,
    locale: str = "en",
    name: str = "",
) -> int:
    with plain_session(engine) as session:
        user = ensure_user(session, email, now=now, name=name, locale=locale)
        grant(session, user, role, tenant_id=tenant_id, partner_id=partner_id, now=now)
        assert user.id is not None
        return user.id


@dataclass
class People:
    tenant_a: int
    tenant_b: int
    partner_a: int
    partner_b: int
    partner_a2: int


def wait_for_mail(sink: SmtpSink, count: int, *, timeout: float = 60.0) -> list[EmailMessage]:
    """The sink's messages once it holds ``count`` (a request's mail is sent after the
    request was answered)."""
    deadline = time.monotonic() + timeout
    while len(sink.received.messages) < count:
        assert time.monotonic() < deadline, (
            f"expected {count} messages, got {len(sink.received.messages)}"
        )
        time.sleep(0.05)
    return sink.received.messages


def link_in(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    found = LINK.search(body.get_content())
    assert found, body.get_content()
    return found.group(0)
