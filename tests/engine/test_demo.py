"""The README's first command: `partnercast demo`, on a small world so that it runs fast."""

from __future__ import annotations

from email import message_from_bytes
from pathlib import Path

from sqlmodel import col, func, select

from partnercast.core.db import make_engine
from partnercast.core.models import Delivery
from partnercast.core.tenancy import system_session


def test_demo_runs_the_whole_story(cli, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = cli("demo", "--folder", str(folder), "--partners", "12", "--contacts", "300")
    out = result.stdout
    assert (folder / "partnercast.db").exists()
    assert "3 rejected" in out and "no consent" in out  # the CSV import reports bad rows
    assert "refused" in out and "locked zone" in out  # a partner's bad customisation
    assert "declined" in out and "changes requested" in out and "submitted" in out
    assert "recipients clicked one-click unsubscribe" in out
    assert "ticking the last day again sends 0 messages" in out
    assert "try next" in out
    # the digital campaign: every channel published, the sock-puppet post refused
    assert "stand-ins of the X and LinkedIn APIs" in out
    assert "social posts were refused because the partner kept the suggested" in " ".join(
        out.split()
    )
    assert "The X stand-in received" in out
    assert "Leads from the landing pages' forms: 1" in out
    # results: spend, CRM stages and reports with real chart images
    assert "lead stages imported from a CRM export" in out
    assert (folder / "reports" / "index.html").is_file()
    assert (folder / "reports" / "roi.png").stat().st_size > 5_000
    saved = sorted((folder / "outbox").glob("*.eml"))
    assert saved, "the demo's SMTP server saves the first messages it receives"
    for path in saved:
        message = message_from_bytes(path.read_bytes())
        assert message.is_multipart()
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert {part.get_content_type() for part in message.walk()} >= {"text/plain", "text/html"}
    engine = make_engine(f"sqlite:///{folder / 'partnercast.db'}")
    with system_session(engine, reason="the test reads the demo's ledger") as session:
        # Messages the server took: still sent, or bounced later by a report (demo_feedback).
        sent = session.exec(
            select(func.count())
            .select_from(Delivery)
            .where(col(Delivery.state).in_(("sent", "bounced")), Delivery.sent_at.is_not(None))
        ).one()
        suppressed = session.exec(
            select(func.count()).select_from(Delivery).where(Delivery.state == "suppressed")
        ).one()
    engine.dispose()
    assert f"received {sent:,} messages" in out.replace("\n", " ")
    words = " ".join(out.split())
    assert "mail feedback: 3 reports" in words and "complaint recorded)" in words
    assert suppressed > 0  # unsubscribes and bounces were honoured in later touches


def test_demo_twice_starts_fresh(cli, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    first = cli("demo", "--folder", str(folder), "--partners", "6", "--contacts", "100").stdout
    second = cli("demo", "--folder", str(folder), "--partners", "6", "--contacts", "100").stdout
    assert "40 partners" not in second
    assert first.count("partners imported") == second.count("partners imported") == 1
