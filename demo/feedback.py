"""The demo's mail feedback: two bounce reports and one complaint, as a relay and a
mailbox provider would send them, written to ``feedback/`` and fed through the same
intake as ``partnercast feedback import`` (so the reports count them)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from partnercast.campaigns.delivery_feedback import record_reports
from partnercast.channels.email.feedback_reports import parse_reports
from partnercast.core.models import Delivery
from partnercast.core.tenancy import tenant_session

_DSN = """From: MAILER-DAEMON@mx.relay.example (Mail Delivery System)
To: bounces@partner.example
Subject: Undelivered Mail Returned to Sender
Message-Id: <demo-dsn-{n}@mx.relay.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b{n}"

--b{n}
Content-Type: text/plain

<{to}>: host inbound.client.example said: 550 5.1.1 User unknown

--b{n}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.relay.example

Final-Recipient: rfc822; {to}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{to}>: Recipient address rejected: User unknown

--b{n}
Content-Type: text/rfc822-headers

Message-ID: {message_id}
To: {to}

--b{n}--
"""
_ARF = """From: feedback@arf.mail.example
To: fbl@partner.example
Subject: FW: complaint
Message-ID: <demo-arf-{n}@arf.mail.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="f{n}"

--f{n}
Content-Type: text/plain

This is an email abuse report.

--f{n}
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Demo-Feedback/1.0
Version: 1
Original-Rcpt-To: {to}

--f{n}
Content-Type: text/rfc822-headers

Message-ID: {message_id}
To: {to}

--f{n}--
"""


def feed_reports(engine: Engine, tenant_id: int, folder: Path, now: datetime) -> str:
    """Two hard bounces and a complaint about messages the demo sent, recorded at ``now``;
    a one-line summary."""
    with tenant_session(engine, tenant_id) as session:
        rows = session.exec(
            select(Delivery.message_id, Delivery.email)
            .where(Delivery.state == "sent")
            .order_by(col(Delivery.id))
            .limit(3)
        ).all()
    if len(rows) < 3:
        return "no messages to report on"
    out = folder / "feedback"
    out.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for n, ((message_id, to), template) in enumerate(zip(rows, (_DSN, _DSN, _ARF), strict=True)):
        path = out / f"report-{n + 1}.eml"
        path.write_text(template.format(n=n, to=to, message_id=message_id), encoding="utf-8")
        reports = parse_reports(path.read_bytes())  # the email channel's reading of it
        outcomes.append(record_reports(engine, tenant_id, reports, now=now))
    kinds = ", ".join(f"{r.kind} {r.outcome}" for r in outcomes)
    return f"{len(outcomes)} reports in {out.name}/ ({kinds})"
