"""The weekly review agenda after a small cycle, its Markdown, and the record of it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import func, select
from support.world import START, World, respond, run_days, start

from partnercast.concierge import review
from partnercast.concierge.models import Review
from partnercast.core.models import Delivery, Dispatch
from partnercast.core.tenancy import tenant_session
from partnercast.funnel.crm_import import import_leads
from partnercast.funnel.engagement import Engagement
from partnercast.tenants.partners import get_partner

AT = START + timedelta(days=3)
WEEK = timedelta(days=7)


def _cycle(world: World) -> None:
    respond(world, {"P001": "approve", "P003": "silent"})
    start(world)
    run_days(world, 0, 2)


def test_the_agenda_shows_what_went_out_what_is_next_and_what_waits(world: World) -> None:
    _cycle(world)
    with tenant_session(world.engine, world.tenant_id) as session:
        partner = get_partner(session, "P001")
        agenda = review.build_agenda(session, partner, AT)
        done = session.exec(
            select(Dispatch).where(Dispatch.partner_id == partner.id, Dispatch.state == "done")
        ).all()
        delivered = session.exec(
            select(func.count(Delivery.id)).where(
                Delivery.dispatch_id == done[0].id, Delivery.state == "sent"
            )
        ).one()
        silent = review.build_agenda(session, get_partner(session, "P003"), AT)
    (went,) = agenda.went_out
    assert len(done) == 1 and went["campaign"] == "cloud-security"
    assert went["delivered"] == delivered > 0
    assert went["sent"] == went["delivered"] + went["bounced"]
    assert agenda.results["delivered"] == delivered
    assert agenda.results["leads"] == 0
    assert [t["touch"] for t in agenda.next_touches] and all(
        t["at"] > AT.isoformat() for t in agenda.next_touches
    )
    assert agenda.awaiting_approval == []
    assert silent.went_out == []
    assert [(a["campaign"], a["state"]) for a in silent.awaiting_approval] == [
        ("cloud-security", "submitted")
    ]
    assert silent.next_touches[0]["waiting"].startswith("waiting for the partner's approval")


def test_the_review_command_prints_writes_markdown_and_keeps_the_notes(
    world: World, cli, tmp_path: Path
) -> None:
    _cycle(world)
    cli(
        "tasks",
        "add",
        "P001",
        "--tenant",
        "northwind",
        "--kind",
        "follow-up",
        "--title",
        "send the deck",
    )
    out = tmp_path / "agenda.md"
    args = ["review", "P001", "--tenant", "northwind", "--at", AT.isoformat()]
    shown = cli(*args, "--out", str(out), "--notes", "wants a webinar next cycle", "--by", "anna")
    assert "What went out since the last review" in shown.stdout
    assert "send the deck" in shown.stdout
    text = out.read_text(encoding="utf-8")
    for heading in ("## Results of the past week", "## Open tasks", "## Next touches"):
        assert heading in text
    assert "| cloud-security |" in text and "send the deck" in text
    with tenant_session(world.engine, world.tenant_id) as session:
        (held,) = session.exec(select(Review)).all()
    assert held.notes == "wants a webinar next cycle" and held.created_by == "anna"
    assert held.agenda["partner"] == "P001" and held.agenda["went_out"]
    listed = cli("reviews", "P001", "--tenant", "northwind")
    assert "wants a webinar next cycle" in listed.stdout
    # The next agenda counts from this review on.
    later = cli(
        "review", "P001", "--tenant", "northwind", "--at", (AT + timedelta(days=1)).isoformat()
    )
    assert f"last review: {AT:%Y-%m-%d}" in later.stdout
    assert "What went out since the last review: none" in later.stdout
    # ...and picks up from what was said there.
    said = " ".join(later.stdout.split())
    assert f"Notes of the last review ({AT:%Y-%m-%d}, anna): wants a webinar next cycle" in said
    cli(*args[:4], "--at", (AT + timedelta(days=1)).isoformat(), "--out", str(out))
    assert "## Since the last review" in out.read_text(encoding="utf-8")
    assert "wants a webinar next cycle" in out.read_text(encoding="utf-8")


def test_the_week_s_results_count_engagement_stages_and_value(world: World, tmp_path: Path) -> None:
    _cycle(world)
    crm = tmp_path / "crm.csv"
    day = (AT - timedelta(days=1)).date().isoformat()
    old = (AT - timedelta(days=20)).date().isoformat()
    later = (AT + timedelta(days=2)).date().isoformat()  # after the agenda's moment
    crm.write_text(
        "partner,email,campaign,stage,deal_value,currency,occurred_at\n"
        f"P001,a@c.example,cloud-security,sql,,,{day}\n"
        f"P001,b@c.example,cloud-security,opportunity,12000,EUR,{day}\n"
        f"P001,c@c.example,cloud-security,won,5000,EUR,{day}\n"
        f"P001,d@c.example,cloud-security,won,999,EUR,{old}\n"
        f"P003,e@c.example,cloud-security,won,7777,EUR,{day}\n"
        f"P001,f@c.example,cloud-security,lead,,,{later}\n",
        encoding="utf-8",
    )
    with tenant_session(world.engine, world.tenant_id) as session:
        assert not import_leads(session, crm, now=AT).rejected
        partner = get_partner(session, "P001")
        done = session.exec(
            select(Dispatch).where(Dispatch.partner_id == partner.id, Dispatch.state == "done")
        ).first()
        contacts = session.exec(
            select(Delivery.contact_id).where(Delivery.dispatch_id == done.id).limit(2)
        ).all()
        for contact in contacts:
            session.add(
                Engagement(
                    dispatch_id=done.id, contact_id=contact, kind="opened", first_at=AT - WEEK / 2
                )
            )
        session.add(
            Engagement(dispatch_id=done.id, contact_id=contacts[0], kind="clicked", first_at=AT)
        )
        session.flush()
        results = review.build_agenda(session, partner, AT).results
    assert (results["opened"], results["clicked"]) == (2, 1)
    assert results["leads"] == 3  # not the old one, nor one that came after the moment
    # sql, opportunity and won each reach the stages before them; the old deal and the
    # other partner's are not this week's.
    assert (results["mql"], results["sql"], results["opportunities"], results["won"]) == (
        3,
        3,
        2,
        1,
    )
    assert (results["pipeline_added"], results["won_value"]) == (17000.0, 5000.0)
