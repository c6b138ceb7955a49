"""The README's first command: `partnercast demo`, on a small world so that it runs fast."""

from __future__ import annotations

import re
from collections import Counter
from email import message_from_bytes
from pathlib import Path

from sqlmodel import col, func, select

from partnercast.campaigns.models import Campaign, Cycle
from partnercast.concierge.models import (
    Concierge,
    PartnerAssignment,
    PartnerReadiness,
    Review,
)
from partnercast.concierge.readiness import missing_items
from partnercast.core.db import make_engine
from partnercast.core.models import Delivery, Dispatch, Event
from partnercast.core.tenancy import system_session
from partnercast.core.timeutil import as_utc
from partnercast.funnel.leads import Lead
from partnercast.tenants.models import Partner


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
    assert len(saved) <= 48, "the first email's messages, read for opens, are cut to a sample"
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
        _check_results(session, " ".join(out.split()))
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


def _check_results(session, words: str) -> None:  # type: ignore[no-untyped-def]
    """Opens and clicks the engine's tracker recorded, leads in the cycle, social numbers,
    concierges, readiness and a review: what the demo says it did, read from its database."""
    hits = session.exec(
        select(Event).where(
            Event.source == "email-tracking", col(Event.kind).in_(("opened", "clicked"))
        )
    ).all()
    genuine = [e for e in hits if not e.data.get("bot")]
    pixel = [e for e in genuine if e.kind == "opened" and "implied" not in e.data]
    clicks = [e for e in genuine if e.kind == "clicked"]
    printed = re.search(r"(\d+) loaded the open pixel and (\d+) followed a tracked link", words)
    assert printed, words
    assert (len(pixel), len(clicks)) == (int(printed[1]), int(printed[2])) and pixel and clicks
    assert all(e.data.get("cycle_id") for e in genuine)  # attributed to the email's cycle
    assert all(str(e.data.get("url", "")).startswith("http") for e in clicks)
    # Contenders' contacts engage more than pretenders': the rate differs between partners.
    sent = Counter(
        session.exec(
            select(Dispatch.partner_id)
            .join(Delivery, col(Delivery.dispatch_id) == Dispatch.id)
            .where(Delivery.state == "sent")
        ).all()
    )
    opened = Counter(e.partner_id for e in genuine if e.kind == "opened")
    rates = {round(opened[p] / n, 2) for p, n in sent.items() if n}
    assert len(rates) >= 3, rates
    # Every lead of the CRM export belongs to one of the email campaign's two cycles (the
    # second one ran its first email), dated inside it, and some partners have leads in
    # both: the trend across cycles has data.
    email_campaign = session.exec(select(Campaign).where(Campaign.key == "cloud-security")).one()
    cycles = {
        c.id: c for c in session.exec(select(Cycle).where(Cycle.campaign_id == email_campaign.id))
    }
    assert sorted(c.number for c in cycles.values()) == [1, 2]
    crm_leads = session.exec(select(Lead).where(Lead.campaign_id == email_campaign.id)).all()
    assert crm_leads and all(lead.cycle_id in cycles for lead in crm_leads)
    for lead in crm_leads:
        cycle = cycles[lead.cycle_id]
        assert as_utc(cycle.starts_at) <= as_utc(lead.created_at) < as_utc(cycle.ends_at)
    per_partner: dict[int, set[int | None]] = {}
    for lead in crm_leads:
        per_partner.setdefault(lead.partner_id, set()).add(lead.cycle_id)
    assert any(len(seen) == 2 for seen in per_partner.values())
    assert "cycle 2 started" in words
    # Social and search numbers fetched from the stand-ins through the channels' plugins.
    fetched = session.exec(select(Event).where(Event.source == "channel-metrics")).all()
    kinds = {e.kind for e in fetched if (e.value or 0) > 0}
    assert {"impressions", "engagements", "link_clicks", "ad_cost"} <= kinds, kinds
    assert {e.data.get("channel") for e in fetched} == {"x", "linkedin", "search"}
    # Concierges with languages, every partner assigned, one of them over the cap.
    concierges = session.exec(select(Concierge)).all()
    assert len(concierges) == 3 and {"de", "en"} <= {x for c in concierges for x in c.languages}
    partners = session.exec(select(Partner)).all()
    assigned = session.exec(select(PartnerAssignment)).all()
    assert {a.partner_id for a in assigned} == {p.id for p in partners}
    assert "capacity:" in words and "over the cap" in words
    # Readiness: some partners ready, some not.
    checklists = {r.partner_id: r for r in session.exec(select(PartnerReadiness)).all()}
    ready = [p for p in partners if not missing_items(p, checklists.get(p.id or 0))]
    assert 0 < len(ready) < len(partners)
    # The weekly review held with one partner keeps its notes.
    reviews = session.exec(select(Review)).all()
    assert len(reviews) == 1 and "follow up" in reviews[0].notes
    assert "weekly review held with" in words and "partnercast reviews P" in words
