"""Bounce reports (DSN) and complaints (ARF): parsing, the intake, the CLI and the webhook.

The reports are built as Postfix, Gmail, Microsoft 365, Yahoo and qmail send them, around
messages the engine really sent (tick() to a real SMTP server, aiosmtpd), and fed through
the real CLI and the engine's own HTTP server, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from support.world import START, World, build_world, respond, run_days, start

from partnercast.campaigns import delivery_feedback as feedback_intake
from partnercast.campaigns.models import Enrollment
from partnercast.channels.email.feedback_intake import import_message as intake
from partnercast.channels.email.feedback_reports import (
    Kind,
    NotAReport,
    NothingToRecord,
    parse_report,
)
from partnercast.concierge import task_scan
from partnercast.concierge.models import ConciergeTask
from partnercast.concierge.tasks import update_settings
from partnercast.core.models import Delivery, Dispatch, Event
from partnercast.core.settings import load_settings
from partnercast.core.tenancy import system_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.funnel.crm_secret import LEGACY_HEADER, new_secret, signed_headers
from partnercast.funnel.metrics import funnel
from partnercast.funnel.models import Rollup
from partnercast.funnel.rollups import scan_rollups, stored_rollups
from partnercast.plugins.host import FeedbackOutcome
from partnercast.plugins.manager import default_plugins
from partnercast.tenants.models import Suppression
from partnercast.web.app import make_http_server
from partnercast.web.host import EngineHost


def import_message(
    engine: Engine, tenant_id: int, raw: bytes, *, now: datetime | None = None
) -> FeedbackOutcome:
    """One report through the email channel's intake and the engine's host, as the
    endpoint and `feedback import` do."""
    host = EngineHost(engine, load_settings(), default_plugins())
    return intake(host, tenant_id, raw, now=now or utcnow())


# --- reports as the big senders write them ------------------------------------------------


def _original(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").replace("\r\n", "\n")


def _headers_only(raw: bytes) -> str:
    return _original(raw).split("\n\n", 1)[0] + "\n"


def postfix_dsn(
    original: bytes,
    rcpt: str,
    *,
    status: str = "5.1.1",
    action: str = "failed",
    diagnostic: str = "",
    queue_id: str = "4F1A2B3C",
) -> bytes:
    """A Postfix relay's bounce: text/plain + message/delivery-status + message/rfc822."""
    diagnostic = diagnostic or (
        f"550 {status} <{rcpt}>: Recipient address rejected: User unknown in virtual\n"
        "    mailbox table"
    )
    subject = (
        "Delayed Mail (still being retried)"
        if action == "delayed"
        else "Undelivered Mail Returned to Sender"
    )
    boundary = f"{queue_id}.1764583203/mx.relay.example"
    return f"""Return-Path: <>
Received: by mx.relay.example (Postfix)
\tid {queue_id}; Tue,  1 Dec 2026 10:00:03 +0000 (UTC)
Date: Tue,  1 Dec 2026 10:00:03 +0000 (UTC)
From: MAILER-DAEMON@mx.relay.example (Mail Delivery System)
Subject: {subject}
To: bounces@partner.example
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="{boundary}"
Content-Transfer-Encoding: 8bit
Message-Id: <20261201100003.{queue_id}@mx.relay.example>

This is a MIME-encapsulated message.

--{boundary}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.relay.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

                   The mail system

<{rcpt}>: host inbound.client.example[198.51.100.7] said: {diagnostic}
    (in reply to RCPT TO command)

--{boundary}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.relay.example
X-Postfix-Queue-ID: {queue_id}
X-Postfix-Sender: rfc822; bounces@partner.example
Arrival-Date: Tue,  1 Dec 2026 10:00:01 +0000 (UTC)

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: {action}
Status: {status}
Remote-MTA: dns; inbound.client.example
Diagnostic-Code: smtp; {diagnostic}

--{boundary}
Content-Description: Undelivered Message
Content-Type: message/rfc822
Content-Transfer-Encoding: 8bit

{_original(original)}
--{boundary}--
""".encode()


def gmail_dsn(original: bytes, rcpt: str, *, status: str = "5.1.1") -> bytes:
    """Gmail's "Address not found" (or over quota): alternative + status + headers."""
    words = {
        "5.1.1": "550-5.1.1 The email account that you tried to reach does not exist. Please try\n"
        " 550-5.1.1 double-checking the recipient's email address for typos or\n"
        " 550 5.1.1 unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser",
        "5.2.2": "552-5.2.2 The recipient's inbox is out of storage space. Please direct\n"
        " 552 5.2.2 the recipient to https://support.google.com/mail/?p=OverQuotaTemp",
    }[status]
    return f"""Delivered-To: bounces@partner.example
Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: bounces@partner.example
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
Message-ID: <6745a1b2.050a0220.3c1f.0001.GMR@mx.google.com>
Date: Tue, 01 Dec 2026 02:00:04 -0800 (PST)
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000b1a2c3"; report-type=delivery-status

--000000000000b1a2c3
Content-Type: multipart/alternative; boundary="000000000000b1a2d4"

--000000000000b1a2d4
Content-Type: text/plain; charset="UTF-8"

** Address not found **

Your message wasn't delivered to {rcpt} because the address couldn't be found.

--000000000000b1a2d4
Content-Type: text/html; charset="UTF-8"

<html><body><h2>Address not found</h2></body></html>

--000000000000b1a2d4--

--000000000000b1a2c3
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; mx.relay.example
Arrival-Date: Tue, 01 Dec 2026 02:00:03 -0800 (PST)

Final-Recipient: rfc822; {rcpt}
Action: failed
Status: {status}
Remote-MTA: dns; gmail-smtp-in.l.google.com. (142.250.1.26, the server for the
 domain gmail.com.)
Diagnostic-Code: smtp; {words}
Last-Attempt-Date: Tue, 01 Dec 2026 02:00:04 -0800 (PST)

--000000000000b1a2c3
Content-Type: text/rfc822-headers

{_headers_only(original)}
--000000000000b1a2c3--
""".encode()


def microsoft_ndr(original: bytes, rcpt: str) -> bytes:
    """Exchange Online: alternative + delivery-status + text/rfc822-headers, 5.1.10."""
    return f"""From: Microsoft Outlook
 <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.onmicrosoft.com>
To: <bounces@partner.example>
Date: Tue, 1 Dec 2026 10:00:05 +0000
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="bf1c4d7a-0a4b-4e3f-9f1e-6a2f6c0d7e11"
X-MS-Exchange-Message-Is-Ndr:
Content-Language: en-US
Message-ID:
 <a6e5d8c2-7b9e-4c1a-9d55-3e0f1b2c4d5e@AM0PR02MB1234.eurprd02.prod.outlook.com>
Subject: Undeliverable: Your quarter
MIME-Version: 1.0

--bf1c4d7a-0a4b-4e3f-9f1e-6a2f6c0d7e11
Content-Type: multipart/alternative; differences=Content-Type;
\tboundary="e7d9b7b2-4c3f-4e5a-8a77-2f7b3c1d0e99"

--e7d9b7b2-4c3f-4e5a-8a77-2f7b3c1d0e99
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Your message to {rcpt} couldn't be delivered.
The email address wasn't found at the destination domain.

--e7d9b7b2-4c3f-4e5a-8a77-2f7b3c1d0e99--

--bf1c4d7a-0a4b-4e3f-9f1e-6a2f6c0d7e11
Content-Type: message/delivery-status

Reporting-MTA: dns;AM0PR02MB1234.eurprd02.prod.outlook.com
Received-From-MTA: dns;mx.relay.example
Arrival-Date: Tue, 1 Dec 2026 10:00:04 +0000

Original-Recipient: rfc822;{rcpt}
Final-Recipient: rfc822;{rcpt}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not
 found by SMTP address lookup

--bf1c4d7a-0a4b-4e3f-9f1e-6a2f6c0d7e11
Content-Type: text/rfc822-headers

{_headers_only(original)}
--bf1c4d7a-0a4b-4e3f-9f1e-6a2f6c0d7e11--
""".encode()


def yahoo_arf(original: bytes, rcpt: str, *, feedback_type: str = "abuse") -> bytes:
    """Yahoo's complaint feedback loop: text + message/feedback-report + message/rfc822."""
    return f"""From: feedback@arf.mail.yahoo.com
To: fbl@partner.example
Subject: FW: Your quarter
Date: Tue, 1 Dec 2026 11:30:00 +0000
Message-ID: <1764588600.abc123@arf.mail.yahoo.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
 boundary="----=_Part_1_yahoo_arf"

------=_Part_1_yahoo_arf
Content-Type: text/plain; charset=us-ascii

This is an email abuse report for an email message received from IP 203.0.113.9 on
Tue, 1 Dec 2026 10:00:02 +0000

------=_Part_1_yahoo_arf
Content-Type: message/feedback-report

Feedback-Type: {feedback_type}
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 0.1
Original-Mail-From: <bounces@partner.example>
Original-Rcpt-To: {rcpt}
Received-Date: Tue, 1 Dec 2026 10:00:02 +0000
Reported-Domain: partner.example
Authentication-Results: mta1000.mail.gq1.yahoo.com  from=partner.example; dkim=pass

------=_Part_1_yahoo_arf
Content-Type: message/rfc822

{_original(original)}
------=_Part_1_yahoo_arf--
""".encode()


def microsoft_jmrp(original: bytes) -> bytes:
    """Microsoft JMRP: ARF with the original's headers and the recipient left out."""
    return f"""From: staff@hotmail.com
To: jmrp@partner.example
Subject: complaint about message from 203.0.113.9
Message-ID: <JMRP.5f1e2d3c@hotmail.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="jmrp--b"

--jmrp--b
Content-Type: text/plain

This is an email abuse report for an email message received from IP 203.0.113.9.

--jmrp--b
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Hotmail FBL
Version: 1
Source-IP: 203.0.113.9

--jmrp--b
Content-Type: text/rfc822-headers

{_headers_only(original)}
--jmrp--b--
""".encode()


def qmail_bounce(original: bytes, rcpt: str) -> bytes:
    """Not a DSN: qmail's text bounce with the original quoted inline."""
    return f"""From: MAILER-DAEMON@mail.client.example
To: bounces@partner.example
Subject: failure notice
Date: 1 Dec 2026 10:00:09 -0000
Message-ID: <20261201100009.4711.qmail@mail.client.example>

Hi. This is the qmail-send program at mail.client.example.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<{rcpt}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

{_original(original)}
""".encode()


def message_id_of(raw: bytes) -> str:
    return str(message_from_bytes(raw, policy=default_policy)["Message-ID"]).strip()


def recipient_of(raw: bytes) -> str:
    return str(message_from_bytes(raw, policy=default_policy)["To"].addresses[0].addr_spec)


ORIGINAL = (
    b"From: Team P001 <news@partner.example>\r\nTo: ann@client.example\r\n"
    b"Subject: Your quarter\r\nMessage-ID: <pc.12.34.0123456789abcdef@partner.example>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHello Ann\r\n"
)
OUR_ID = "<pc.12.34.0123456789abcdef@partner.example>"
OURS = col(Event.source).startswith("mail-feedback:")


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("report", "kind", "status"),
    [
        (postfix_dsn(ORIGINAL, "ann@client.example"), Kind.BOUNCE_HARD, "5.1.1"),
        (gmail_dsn(ORIGINAL, "ann@client.example"), Kind.BOUNCE_HARD, "5.1.1"),
        (gmail_dsn(ORIGINAL, "ann@client.example", status="5.2.2"), Kind.BOUNCE_SOFT, "5.2.2"),
        (microsoft_ndr(ORIGINAL, "ann@client.example"), Kind.BOUNCE_HARD, "5.1.10"),
        (
            postfix_dsn(
                ORIGINAL,
                "ann@client.example",
                status="5.7.1",
                diagnostic="550 5.7.1 Service unavailable; client host blocked using Spamhaus",
            ),
            Kind.BOUNCE_SOFT,
            "5.7.1",
        ),
        (
            postfix_dsn(
                ORIGINAL,
                "ann@client.example",
                status="4.4.1",
                action="delayed",
                diagnostic="connect to inbound.client.example: Connection timed out",
            ),
            Kind.DELAYED,
            "4.4.1",
        ),
        (qmail_bounce(ORIGINAL, "ann@client.example"), Kind.BOUNCE_HARD, "5.1.1"),
    ],
    ids=["postfix", "gmail", "gmail-full", "microsoft", "blocked", "delayed", "qmail"],
)
def test_bounces_are_read_as_the_senders_write_them(report: bytes, kind: Kind, status: str) -> None:
    parsed = parse_report(report)
    assert (parsed.kind, parsed.status) == (kind, status)
    assert parsed.recipient == "ann@client.example"
    assert parsed.message_id == OUR_ID
    assert parsed.report_id and "\n" not in parsed.diagnostic


def test_postfix_diagnostic_is_unfolded_and_the_report_keeps_its_own_id() -> None:
    parsed = parse_report(postfix_dsn(ORIGINAL, "ann@client.example"))
    assert parsed.diagnostic.startswith("550 5.1.1 <ann@client.example>: Recipient address")
    assert "User unknown in virtual mailbox table" in parsed.diagnostic
    assert parsed.report_id == "<20261201100003.4F1A2B3C@mx.relay.example>"


def test_complaints_from_yahoo_and_microsoft() -> None:
    yahoo = parse_report(yahoo_arf(ORIGINAL, "ann@client.example"))
    assert (yahoo.kind, yahoo.recipient, yahoo.message_id) == (
        Kind.COMPLAINT,
        "ann@client.example",
        OUR_ID,
    )
    assert "abuse" in yahoo.diagnostic and "Yahoo" in yahoo.diagnostic
    jmrp = parse_report(microsoft_jmrp(ORIGINAL))
    assert (jmrp.kind, jmrp.message_id) == (Kind.COMPLAINT, OUR_ID)
    assert jmrp.recipient == "ann@client.example"  # from the returned headers' To


@pytest.mark.parametrize(
    ("raw", "error", "words"),
    [
        (b"", NotAReport, "empty"),
        (b"\x00\xff\xfe garbage \x89PNG\r\n\x1a\n" * 50, NotAReport, "not a bounce"),
        (ORIGINAL, NotAReport, "not a bounce"),
        (
            postfix_dsn(ORIGINAL, "ann@client.example", action="delivered", status="2.0.0"),
            NothingToRecord,
            "delivered",
        ),
        (yahoo_arf(ORIGINAL, "a@b.example", feedback_type="not-spam"), NothingToRecord, "not-spam"),
        (
            postfix_dsn(b"Subject: x\r\n\r\nno id\r\n", "ann@client.example"),
            NotAReport,
            "Message-ID",
        ),
        (
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\n\n--x--\n",
            NotAReport,
            "delivery-status",
        ),
    ],
    ids=["empty", "binary", "plain-mail", "success-dsn", "not-spam", "no-id", "no-status-part"],
)
def test_what_is_not_a_usable_report_says_why(raw: bytes, error: type, words: str) -> None:
    with pytest.raises(error) as caught:
        parse_report(raw)
    assert words in str(caught.value) and "\n" not in str(caught.value)


# --- the intake on real sends, SQLite and PostgreSQL ---------------------------------------


@dataclass
class Sent:
    engine: Engine
    a: World  # northwind
    b: World  # contoso
    by_tenant: dict[int, list[bytes]]  # raw messages the SMTP server got, per tenant


@pytest.fixture
def sent(
    any_engine: Engine, tmp_path: Path, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> Sent:
    """Two tenants; two partners of each approved; the first touch sent to the sink."""
    a = build_world(any_engine, tmp_path / "a", sink.port, slug="northwind")
    b = build_world(any_engine, tmp_path / "b", sink.port, slug="contoso")
    for world in (a, b):
        respond(world, {"P001": "approve", "P002": "approve"})
        start(world)
    run_days(a, 0, 1)
    url = any_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("PARTNERCAST_DATABASE_URL", url)
    with system_session(any_engine, reason="test: which tenant sent which message") as session:
        owner = dict(session.exec(select(Delivery.message_id, Delivery.tenant_id)).all())
    by_tenant: dict[int, list[bytes]] = {a.tenant_id: [], b.tenant_id: []}
    for raw in sink.received.raw:
        by_tenant[owner[message_id_of(raw)]].append(raw)
    assert len(by_tenant[a.tenant_id]) >= 4 and len(by_tenant[b.tenant_id]) >= 4
    return Sent(any_engine, a, b, by_tenant)


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything a report could change, in every tenant."""
    with system_session(engine, reason="test: compare all tenants before and after") as s:
        return {
            "events": sorted(s.exec(select(Event.id, Event.kind)).all()),
            "suppressions": sorted(s.exec(select(Suppression.tenant_id, Suppression.email)).all()),
            "deliveries": sorted(s.exec(select(Delivery.id, Delivery.state)).all()),
            "dispatches": sorted(
                s.exec(select(Dispatch.id, Dispatch.sent_count, Dispatch.failed_count)).all()
            ),
            "rollups": sorted(
                s.exec(
                    select(
                        Rollup.tenant_id,
                        Rollup.partner_id,
                        Rollup.cycle_id,
                        Rollup.metric,
                        Rollup.count,
                    )
                ).all()
            ),
        }


def _delivery(world: World, message_id: str) -> Delivery:
    with tenant_session(world.engine, world.tenant_id) as session:
        row = session.exec(select(Delivery).where(Delivery.message_id == message_id)).one()
        return row


def _metric(world: World, metric: str) -> int:
    with tenant_session(world.engine, world.tenant_id) as session:
        return sum(count for key, (count, _) in stored_rollups(session).items() if key[4] == metric)


def _write(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def _mbox(folder: Path, name: str, messages: list[bytes]) -> Path:
    """An mbox as an MTA's mailbox holds it (From_ lines, >From quoting)."""
    import mailbox

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    box = mailbox.mbox(path)
    for raw in messages:
        box.add(mailbox.mboxMessage(raw))
    box.flush()
    box.close()
    return path


def test_cli_records_bounces_and_complaints_once_attributed_and_counted(
    sent: Sent, cli: Any, tmp_path: Path
) -> None:
    a = sent.a
    first, second, third, fourth = sent.by_tenant[a.tenant_id][:4]
    reports = tmp_path / "reports"
    hard = _write(reports, "hard.eml", postfix_dsn(first, recipient_of(first)))
    box = _mbox(
        reports,
        "fbl.mbox",
        [
            yahoo_arf(second, recipient_of(second)),
            gmail_dsn(third, recipient_of(third), status="5.2.2"),
            microsoft_ndr(fourth, recipient_of(fourth)),
        ],
    )
    sent_before = _metric(a, "sent")
    delivered_before = _metric(a, "delivered")
    result = cli("feedback", "import", "--tenant", "northwind", str(hard), str(box))
    assert "4 reports: 4 recorded, 0 unchanged, 0 ignored, 0 rejected" in result.stdout
    assert f"{box}#1: recorded: complaint" in result.stdout

    bounced = _delivery(a, message_id_of(first))
    assert bounced.state == "bounced" and "5.1.1" in bounced.error
    assert _delivery(a, message_id_of(fourth)).state == "bounced"
    assert _delivery(a, message_id_of(second)).state == "sent"  # a complaint: it arrived
    assert _delivery(a, message_id_of(third)).state == "sent"  # soft: no change
    with tenant_session(a.engine, a.tenant_id) as session:
        reasons = dict(session.exec(select(Suppression.email, Suppression.reason)).all())
        assert reasons == {
            recipient_of(first).lower(): "hard_bounce",
            recipient_of(fourth).lower(): "hard_bounce",
            recipient_of(second).lower(): "complaint",
        }
        event = session.exec(
            select(Event).where(Event.kind == "bounced", Event.contact_id == bounced.contact_id)
        ).one()
        dispatch = session.get(Dispatch, bounced.dispatch_id)
        assert dispatch is not None
        enrollment = session.get(Enrollment, dispatch.enrollment_id)
        assert enrollment is not None
        assert (event.partner_id, event.campaign_id, event.dispatch_id) == (
            dispatch.partner_id,
            enrollment.campaign_id,
            dispatch.id,
        )
        assert event.data["cycle_id"] == dispatch.cycle_id
        assert event.data["touch_id"] == dispatch.touch_id
        kinds = [e.kind for e in session.exec(select(Event)).all()]
        assert kinds.count("complained") == 1 and kinds.count("bounce.soft") == 1
        # The rollups as the listener kept them equal the event log and ledger rescanned.
        assert stored_rollups(session) == scan_rollups(session)
    assert _metric(a, "bounced") == 2
    assert _metric(a, "complained") == 1
    assert _metric(a, "sent") == sent_before  # a message that bounced later was still sent
    assert _metric(a, "delivered") == delivered_before - 2
    with tenant_session(a.engine, a.tenant_id) as session:
        (everything,) = funnel(session, by="total")
        assert everything.counts["complained"] == 1
        assert everything.rates["complaint rate"] == 1 / everything.counts["delivered"]
    shown = cli("metrics", "--tenant", "northwind", "--by", "total")
    assert "complained" in shown.stdout and "complaint rate" in shown.stdout
    assert f"{1 / everything.counts['delivered']:.2%}" in shown.stdout

    before = snapshot(sent.engine)
    again = cli("feedback", "import", "--tenant", "northwind", str(hard), str(box))
    assert "4 reports: 0 recorded, 4 unchanged, 0 ignored, 0 rejected" in again.stdout
    assert snapshot(sent.engine) == before


def test_a_report_about_another_tenants_message_is_rejected_and_changes_nothing(
    sent: Sent, cli: Any, tmp_path: Path
) -> None:
    theirs = sent.by_tenant[sent.b.tenant_id][0]
    reports = tmp_path / "reports"
    hard = _write(reports, "hard.eml", postfix_dsn(theirs, recipient_of(theirs)))
    complaint = _write(reports, "fbl.eml", yahoo_arf(theirs, recipient_of(theirs)))
    before = snapshot(sent.engine)
    result = cli("feedback", "import", "--tenant", "northwind", str(hard), str(complaint), expect=1)
    assert "2 reports: 0 recorded, 0 unchanged, 0 ignored, 2 rejected" in result.stdout
    assert f"no delivery with Message-ID {message_id_of(theirs)} in this tenant" in result.stdout
    assert snapshot(sent.engine) == before
    # The same file in the right tenant is taken.
    cli("feedback", "import", "--tenant", "contoso", str(hard))
    assert _delivery(sent.b, message_id_of(theirs)).state == "bounced"


def test_forged_message_ids_match_nothing(sent: Sent) -> None:
    """Right shape and a real (dispatch, contact) of tenant B, made up for tenant A."""
    theirs = _delivery(sent.b, message_id_of(sent.by_tenant[sent.b.tenant_id][0]))
    forged = f"<pc.{theirs.dispatch_id}.{theirs.contact_id}.0123456789abcdef@partner.example>"
    raw = postfix_dsn(ORIGINAL.replace(OUR_ID.encode(), forged.encode()), theirs.email)
    before = snapshot(sent.engine)
    for world in (sent.a, sent.b):
        result = import_message(sent.engine, world.tenant_id, raw)
        assert result.outcome == "rejected" and "no delivery" in result.reason
    assert snapshot(sent.engine) == before


def test_bad_input_is_one_line_per_file_and_a_nonzero_exit(
    sent: Sent, cli: Any, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    garbage = _write(reports, "garbage.eml", b"\x00\x01\x02 not mail at all \xff" * 100)
    empty = _write(reports, "empty.eml", b"")
    plain = _write(reports, "hello.eml", ORIGINAL)
    success = _write(
        reports,
        "ok.eml",
        postfix_dsn(ORIGINAL, "ann@client.example", action="delivered", status="2.0.0"),
    )
    before = snapshot(sent.engine)
    result = cli(
        "feedback",
        "import",
        "--tenant",
        "northwind",
        str(garbage),
        str(empty),
        str(plain),
        str(success),
        str(reports / "missing.eml"),
        str(reports),  # a folder
        expect=1,
    )
    out = result.stdout
    assert "Traceback" not in out + result.stderr
    assert "6 reports: 0 recorded, 0 unchanged, 1 ignored, 5 rejected" in out
    assert f"{reports / 'missing.eml'}: rejected: cannot read the file" in out
    assert f"{success}: ignored: the report says delivered" in out
    assert snapshot(sent.engine) == before
    unknown = cli("feedback", "import", "--tenant", "nobody", str(plain), expect=1)
    assert "no tenant 'nobody'" in unknown.stderr


def test_soft_bounces_and_delays_are_recorded_once_and_suppress_only_past_the_limit(
    sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = sent.a
    raw = sent.by_tenant[a.tenant_id][0]
    address = recipient_of(raw)
    delayed = postfix_dsn(
        raw, address, status="4.4.1", action="delayed", diagnostic="Connection timed out"
    )
    results = [import_message(sent.engine, a.tenant_id, delayed) for _ in range(2)]
    assert [r.outcome for r in results] == ["recorded", "unchanged"]
    # A second delay notice (another report) about the same message is its own record.
    later = postfix_dsn(
        raw, address, status="4.4.1", action="delayed", diagnostic="timed out", queue_id="99"
    )
    assert import_message(sent.engine, a.tenant_id, later).outcome == "recorded"
    full = gmail_dsn(raw, address, status="5.2.2")
    assert import_message(sent.engine, a.tenant_id, full).outcome == "recorded"
    with tenant_session(a.engine, a.tenant_id) as session:
        assert session.exec(select(Suppression)).all() == []
        kinds = sorted(e.kind for e in session.exec(select(Event).where(OURS)))
        assert kinds == ["bounce.soft", "delivery.delayed", "delivery.delayed"]
    assert _delivery(a, message_id_of(raw)).state == "sent"
    # Past the limit (Mailchimp's 7 dispatches; 1 here) the address is suppressed.
    monkeypatch.setattr(feedback_intake, "SOFT_BOUNCE_LIMIT", 1)
    other = sent.by_tenant[a.tenant_id][1]
    assert (
        import_message(
            sent.engine, a.tenant_id, gmail_dsn(other, recipient_of(other), status="5.2.2")
        ).outcome
        == "recorded"
    )
    with tenant_session(a.engine, a.tenant_id) as session:
        rows = session.exec(select(Suppression)).all()
        assert [(r.email, r.reason) for r in rows] == [(recipient_of(other).lower(), "hard_bounce")]
    # An address that ever opened gets the higher limit (Mailchimp's 15; 2 here).
    monkeypatch.setattr(feedback_intake, "SOFT_BOUNCE_LIMIT_ENGAGED", 2)
    reader = sent.by_tenant[a.tenant_id][2]
    row = _delivery(a, message_id_of(reader))
    with tenant_session(a.engine, a.tenant_id) as session:
        dispatch = session.get(Dispatch, row.dispatch_id)
        assert dispatch is not None
        session.add(
            Event(
                kind="opened",
                partner_id=dispatch.partner_id,
                dispatch_id=dispatch.id,
                contact_id=row.contact_id,
                data={"unique": True},
                occurred_at=utcnow(),
            )
        )
    report = gmail_dsn(reader, recipient_of(reader), status="5.2.2")
    assert import_message(sent.engine, a.tenant_id, report).outcome == "recorded"
    with tenant_session(a.engine, a.tenant_id) as session:
        assert len(session.exec(select(Suppression)).all()) == 1


def test_the_bounce_rate_task_sees_imported_bounces_and_complaints(sent: Sent) -> None:
    a = sent.a
    raws = sent.by_tenant[a.tenant_id]
    dispatch_id = _delivery(a, message_id_of(raws[0])).dispatch_id
    same = [r for r in raws if _delivery(a, message_id_of(r)).dispatch_id == dispatch_id]
    assert len(same) >= 2
    now = START + timedelta(days=2)
    with tenant_session(a.engine, a.tenant_id) as session:
        update_settings(session, {"bounce_rate_threshold": 0.01}, now=utcnow())
        assert [t for t in task_scan.scan(session, now).opened if t.kind == "bounce_rate"] == []
    import_message(sent.engine, a.tenant_id, yahoo_arf(same[0], recipient_of(same[0])))
    with tenant_session(a.engine, a.tenant_id) as session:
        opened = [t for t in task_scan.scan(session, now).opened if t.kind == "bounce_rate"]
        assert [t.cause_key for t in opened] == [f"bounce_rate:d{dispatch_id}"]
        assert f"1 of {len(same)} bounced or complained" in opened[0].title
    import_message(sent.engine, a.tenant_id, postfix_dsn(same[1], recipient_of(same[1])))
    with tenant_session(a.engine, a.tenant_id) as session:
        task_scan.scan(session, now)
        (task,) = session.exec(
            select(ConciergeTask).where(ConciergeTask.kind == "bounce_rate")
        ).all()
        assert task.cause_key == f"bounce_rate:d{dispatch_id}"
        dispatch = session.get(Dispatch, dispatch_id)
        assert dispatch is not None and dispatch.failed_count == 1


def test_a_hard_bounce_reported_long_after_the_send_still_counts(sent: Sent) -> None:
    """The dispatch finished weeks ago (outside the incident window); the report is new."""
    a = sent.a
    raws = sent.by_tenant[a.tenant_id]
    dispatch_id = _delivery(a, message_id_of(raws[0])).dispatch_id
    late = START + timedelta(days=60)
    with tenant_session(a.engine, a.tenant_id) as session:
        update_settings(
            session, {"bounce_rate_threshold": 0.01, "incident_window_days": 7}, now=utcnow()
        )
        assert not [t for t in task_scan.scan(session, late).opened if t.kind == "bounce_rate"]
    report = postfix_dsn(raws[0], recipient_of(raws[0]))
    assert import_message(sent.engine, a.tenant_id, report, now=late).outcome == "recorded"
    with tenant_session(a.engine, a.tenant_id) as session:
        opened = [t for t in task_scan.scan(session, late).opened if t.kind == "bounce_rate"]
        assert [t.cause_key for t in opened] == [f"bounce_rate:d{dispatch_id}"]


# --- the webhook over real HTTP -------------------------------------------------------------


@pytest.fixture
def server(sent: Sent) -> Iterator[str]:
    http = make_http_server(sent.engine, sent.a.settings, "127.0.0.1", 0)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        http.server_close()


def _secret(world: World) -> str:
    with tenant_session(world.engine, world.tenant_id) as session:
        return new_secret(session, world.settings, now=utcnow())


def sign(secret: str, body: bytes, *, ago: timedelta = timedelta(0)) -> dict[str, str]:
    """Standard Webhooks headers for ``body``, a new message sent ``ago`` before now."""
    return signed_headers(
        secret, body, message_id=f"msg_{uuid.uuid4().hex}", sent_at=utcnow() - ago
    )


def _post(base: str, slug: str, body: bytes, signed: dict[str, str] | None) -> requests.Response:
    headers = {"Content-Type": "message/rfc822", **(signed or {})}
    return requests.post(f"{base}/feedback/{slug}", data=body, headers=headers, timeout=20)


def test_the_webhook_takes_signed_reports_once_and_only_for_its_tenant(
    sent: Sent, server: str
) -> None:
    a, b = sent.a, sent.b
    secret_a, secret_b = _secret(a), _secret(b)
    ours = sent.by_tenant[a.tenant_id][0]
    complaint = yahoo_arf(ours, recipient_of(ours))
    before = snapshot(sent.engine)
    assert _post(server, "northwind", complaint, None).status_code == 401
    assert _post(server, "northwind", complaint, sign(secret_b, complaint)).status_code == 401
    assert _post(server, "nobody", complaint, sign(secret_a, complaint)).status_code == 401
    # Tenant B's own valid signature on tenant A's report: B has no such delivery.
    crossed = _post(server, "contoso", complaint, sign(secret_b, complaint))
    assert crossed.status_code == 422
    assert "no delivery with Message-ID" in crossed.json()["reason"]
    junk = b"\x00\xffnot a message"
    assert _post(server, "northwind", junk, sign(secret_a, junk)).status_code == 422
    assert snapshot(sent.engine) == before

    signed = sign(secret_a, complaint)
    taken = _post(server, "northwind", complaint, signed)
    assert taken.status_code == 200, taken.text
    assert taken.json()["outcome"] == "recorded" and taken.json()["kind"] == "complaint"
    after = snapshot(sent.engine)
    replayed = _post(server, "northwind", complaint, signed)  # the same message again
    assert replayed.status_code == 200 and replayed.json()["outcome"] == "unchanged"
    assert "already received" in replayed.json()["reason"]
    resent = _post(server, "northwind", complaint, sign(secret_a, complaint))  # a new message
    assert (resent.status_code, resent.json()["outcome"]) == (200, "unchanged")
    stale = _post(server, "northwind", complaint, sign(secret_a, complaint, ago=timedelta(hours=1)))
    assert stale.status_code == 401 and "webhook-timestamp" in stale.json()["error"]
    legacy = _post(server, "northwind", complaint, {LEGACY_HEADER: "sha256=" + "0" * 64})
    assert legacy.status_code == 401 and "no longer accepted" in legacy.json()["error"]
    assert snapshot(sent.engine) == after
    assert _metric(a, "complained") == 1 and _metric(b, "complained") == 0
    with tenant_session(a.engine, a.tenant_id) as session:
        (row,) = session.exec(select(Suppression)).all()
        assert (row.email, row.reason) == (recipient_of(ours).lower(), "complaint")


def test_the_same_report_posted_at_once_from_many_threads_is_recorded_once(
    sent: Sent, server: str
) -> None:
    a = sent.a
    secret = _secret(a)
    raws = sent.by_tenant[a.tenant_id][:2]
    bodies = [
        postfix_dsn(raws[0], recipient_of(raws[0])),
        yahoo_arf(raws[1], recipient_of(raws[1])),
    ]
    answers: list[str] = []

    def post(body: bytes) -> None:
        answers.append(_post(server, "northwind", body, sign(secret, body)).json()["outcome"])

    threads = [threading.Thread(target=post, args=(body,)) for body in bodies * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answers) == ["recorded"] * 2 + ["unchanged"] * 6
    with tenant_session(a.engine, a.tenant_id) as session:
        kinds = [e.kind for e in session.exec(select(Event).where(OURS))]
        assert sorted(kinds) == ["bounced", "complained"]
        assert stored_rollups(session) == scan_rollups(session)


def test_a_report_about_a_message_still_on_the_wire_asks_to_be_retried(
    sent: Sent, server: str
) -> None:
    a = sent.a
    secret = _secret(a)
    raw = sent.by_tenant[a.tenant_id][0]
    with tenant_session(a.engine, a.tenant_id) as session:
        row = session.exec(select(Delivery).where(Delivery.message_id == message_id_of(raw))).one()
        row.state = "sending"  # a worker handed it over and has not noted the outcome yet
    body = postfix_dsn(raw, recipient_of(raw))
    before = snapshot(sent.engine)
    signed = sign(secret, body)
    answer = _post(server, "northwind", body, signed)
    assert answer.status_code == 409 and "still being sent" in answer.json()["reason"]
    assert snapshot(sent.engine) == before
    with tenant_session(a.engine, a.tenant_id) as session:
        row = session.exec(select(Delivery).where(Delivery.message_id == message_id_of(raw))).one()
        row.state = "sent"
    # The sender retries the same message (same id): its id was not kept, so it is taken.
    assert _post(server, "northwind", body, signed).status_code == 200
    assert _delivery(a, message_id_of(raw)).state == "bounced"


def test_an_older_report_arriving_after_a_newer_one_changes_no_outcome(
    sent: Sent, server: str
) -> None:
    """Out of order over the webhook: the hard bounce (sent now) arrives first, the delay
    notice the relay sent two minutes before it arrives after; the delivery stays bounced,
    the address suppressed, the tallies as the hard bounce left them."""
    a = sent.a
    secret = _secret(a)
    raw = sent.by_tenant[a.tenant_id][0]
    address = recipient_of(raw)
    hard = postfix_dsn(raw, address)
    delayed = postfix_dsn(
        raw, address, status="4.4.1", action="delayed", diagnostic="timed out", queue_id="77"
    )
    assert _post(server, "northwind", hard, sign(secret, hard)).json()["outcome"] == "recorded"
    bounced = snapshot(sent.engine)
    late = _post(server, "northwind", delayed, sign(secret, delayed, ago=timedelta(minutes=2)))
    assert late.status_code == 200, late.text
    assert _delivery(a, message_id_of(raw)).state == "bounced"
    after = snapshot(sent.engine)
    for part in ("suppressions", "deliveries", "dispatches"):
        assert after[part] == bounced[part], part
    with tenant_session(a.engine, a.tenant_id) as session:
        (row,) = session.exec(select(Suppression)).all()
        assert row.reason == "hard_bounce"


def test_cli_records_reports_at_its_now(sent: Sent, cli: Any, tmp_path: Path) -> None:
    a = sent.a
    first = sent.by_tenant[a.tenant_id][0]
    hard = _write(tmp_path / "reports", "hard.eml", postfix_dsn(first, recipient_of(first)))
    cli("feedback", "import", "--tenant", "northwind", str(hard), "--now", "2031-02-03T04:05")
    bounced = _delivery(a, message_id_of(first))
    with tenant_session(a.engine, a.tenant_id) as session:
        event = session.exec(
            select(Event).where(Event.kind == "bounced", Event.contact_id == bounced.contact_id)
        ).one()
    assert event.occurred_at == datetime(2031, 2, 3, 4, 5, tzinfo=UTC)
