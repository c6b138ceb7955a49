"""The engine's tasks: each kind opened from state, never twice, closed when its cause goes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from support.world import START, World, respond, run_days, start

from partnercast.campaigns.enrollment import find_enrollment
from partnercast.concierge import capacity, readiness, review, task_scan
from partnercast.concierge import tasks as concierge
from partnercast.concierge.models import ConciergeTask
from partnercast.concierge.task_scan import scan, schedule_weekly_reviews
from partnercast.core.accounts import NEEDS_RECONNECT, ChannelAccount
from partnercast.core.models import Delivery, Dispatch
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import as_utc, utcnow
from partnercast.demo.smtp_sink import BOUNCE_DOMAIN
from partnercast.funnel.leads import Lead
from partnercast.tenants.models import Contact
from partnercast.tenants.partners import get_partner


def _tasks(world: World, kind: str | None = None) -> list[ConciergeTask]:
    with tenant_session(world.engine, world.tenant_id) as session:
        query = select(ConciergeTask).order_by(ConciergeTask.id)
        if kind:
            query = query.where(ConciergeTask.kind == kind)
        return list(session.exec(query).all())


def _scan(world: World, now: datetime) -> tuple[int, int]:
    with tenant_session(world.engine, world.tenant_id) as session:
        report = scan(session, now)
        return len(report.opened), len(report.closed)


def _invited_at(world: World) -> datetime:
    with tenant_session(world.engine, world.tenant_id) as session:
        return as_utc(find_enrollment(session, "cloud-security", "P001").state_changed_at)


def _partner_id(session: Session, external_id: str) -> int:
    return get_partner(session, external_id).id or 0


def test_a_pending_approval_opens_one_task_once_and_closes_when_approved(world: World) -> None:
    invited = _invited_at(world)
    assert _scan(world, invited + timedelta(days=4)) == (0, 0)  # not yet N=5 days
    opened, _ = _scan(world, invited + timedelta(days=5, minutes=1))
    assert opened == 6  # every enrolled partner is still invited
    assert _scan(world, invited + timedelta(days=5, minutes=2)) == (0, 0)  # idempotent
    assert len(_tasks(world, "approval_pending")) == 6
    respond(world, {"P001": "approve"})
    later = invited + timedelta(days=6)
    assert _scan(world, later) == (0, 1)
    closed = [t for t in _tasks(world) if t.status == "done"]
    assert len(closed) == 1 and "cause is gone" in closed[0].notes
    assert closed[0].open_cause is None


def test_a_task_a_person_closed_is_not_reopened_for_the_same_cause(world: World) -> None:
    now = _invited_at(world) + timedelta(days=6)
    _scan(world, now)
    first = _tasks(world)[0]
    with tenant_session(world.engine, world.tenant_id) as session:
        task = concierge.get_task(session, first.id or 0)
        concierge.close_task(session, task, note="called them", author="anna", now=now)
    assert _scan(world, now + timedelta(hours=1)) == (0, 0)
    assert len(_tasks(world)) == 6


def test_the_approval_days_come_from_the_tenant_settings(world: World) -> None:
    with tenant_session(world.engine, world.tenant_id) as session:
        concierge.update_settings(session, {"approval_pending_days": 10}, now=START)
    invited = _invited_at(world)
    assert _scan(world, invited + timedelta(days=6)) == (0, 0)
    assert _scan(world, invited + timedelta(days=10, minutes=1))[0] == 6


def test_engine_tasks_go_to_the_partners_concierge(world: World) -> None:
    with tenant_session(world.engine, world.tenant_id) as session:
        anna = concierge.add_concierge(
            session, "Anna", languages=["de", "en", "fr", "es"], now=START
        )
        partner = get_partner(session, "P002")
        capacity.assign_partner(session, partner, anna, now=START)
        anna_id, p2 = anna.id, partner.id
    _scan(world, _invited_at(world) + timedelta(days=6))
    owners = {t.partner_id: t.owner_id for t in _tasks(world)}
    assert owners[p2] == anna_id
    assert sum(1 for owner in owners.values() if owner is None) == 5


def test_a_failed_dispatch_opens_a_task_until_it_is_no_longer_failed(world: World) -> None:
    respond(world, {p: "approve" for p in ("P001", "P002", "P003", "P004", "P005", "P006")})
    start(world)
    with tenant_session(world.engine, world.tenant_id) as session:
        dispatch = session.exec(select(Dispatch).order_by(Dispatch.id)).first()
        assert dispatch is not None
        dispatch.state, dispatch.last_error = "failed", "relay refused: 550 policy"
        dispatch_id = dispatch.id
    assert _scan(world, START) == (1, 0)
    (task,) = _tasks(world, "dispatch_failed")
    assert task.cause_key == f"dispatch_failed:d{dispatch_id}"
    assert "550 policy" in task.title
    assert _scan(world, START) == (0, 0)
    with tenant_session(world.engine, world.tenant_id) as session:
        row = session.get(Dispatch, dispatch_id)
        assert row is not None
        row.state = "pending"  # requeued by a concierge
    assert _scan(world, START) == (0, 1)


def _bounce_rates(world: World) -> dict[int, float]:
    with tenant_session(world.engine, world.tenant_id) as session:
        rows = session.exec(select(Delivery)).all()
    totals: dict[int, list[int]] = {}
    for row in rows:
        if row.state in ("sent", "bounced", "failed"):
            counts = totals.setdefault(row.dispatch_id, [0, 0])
            counts[0] += 1
            counts[1] += row.state == "bounced"
    return {d: bad / total for d, (total, bad) in totals.items()}


def test_the_tick_opens_bounce_rate_tasks_per_dispatch_over_the_threshold(world: World) -> None:
    respond(world, {p: "approve" for p in ("P001", "P002", "P003", "P004", "P005", "P006")})
    with tenant_session(world.engine, world.tenant_id) as session:
        p1 = _partner_id(session, "P001")
        contacts = session.exec(
            select(Contact).where(Contact.partner_id == p1, Contact.consent == True)  # noqa: E712
        ).all()
        for number, contact in enumerate(contacts[:2]):
            contact.email = f"gone{number}@{BOUNCE_DOMAIN}"
    start(world)
    run_days(world, 0, 1)  # the tick runs the scan after sending
    rates = _bounce_rates(world)
    over = {d for d, rate in rates.items() if rate > 0.05}
    assert over and len(over) < len(rates)  # P001's dispatch, not everyone's
    tasks = _tasks(world, "bounce_rate")
    assert {t.cause_key for t in tasks} == {f"bounce_rate:d{d}" for d in over}
    run_days(world, 1, 1)  # ticking again opens nothing new
    assert len(_tasks(world, "bounce_rate")) == len(tasks)
    with tenant_session(world.engine, world.tenant_id) as session:
        concierge.update_settings(session, {"bounce_rate_threshold": 0.99}, now=START)
    assert _scan(world, START + timedelta(days=2)) == (0, len(tasks))


def test_weekly_reviews_come_due_every_interval_for_partners_who_accepted(world: World) -> None:
    now = START
    with tenant_session(world.engine, world.tenant_id) as session:
        partner = get_partner(session, "P001")
        readiness.set_readiness(session, partner, {"weekly_review": True}, now=START)
        report = schedule_weekly_reviews(session, now)
        assert [t.kind for t in report.opened] == ["weekly_review"]
        # The scheduled job hands over the agenda with the task.
        notes = report.opened[0].notes
        assert "engine: the agenda as of now" in notes
        assert f"# Weekly review: {partner.name} ({partner.external_id})" in notes
        assert "## Open tasks" in notes and "## Results of the past week" in notes
        assert schedule_weekly_reviews(session, now).opened == []
        agenda = review.build_agenda(session, partner, now)
        review.hold_review(session, partner, agenda, notes="good call", by="anna", now=now)
        closed = schedule_weekly_reviews(session, now + timedelta(hours=1))
        assert len(closed.closed) == 1
        assert schedule_weekly_reviews(session, now + timedelta(days=6)).opened == []
        again = schedule_weekly_reviews(session, now + timedelta(days=7, hours=1))
        assert len(again.opened) == 1
    keys = [t.cause_key for t in _tasks(world, "weekly_review")]
    assert len(set(keys)) == 2  # a new episode after each review


def test_manual_tasks_are_left_alone_by_the_scan(world: World) -> None:
    with tenant_session(world.engine, world.tenant_id) as session:
        partner = get_partner(session, "P003")
        concierge.add_task(
            session, partner, kind="onboarding", due_at=START, created_by="anna", now=START
        )
    _scan(world, START + timedelta(days=30))
    (task,) = _tasks(world, "onboarding")
    assert task.status == "open"


def test_the_database_refuses_a_second_open_task_for_one_cause(world: World) -> None:
    with pytest.raises(IntegrityError), tenant_session(world.engine, world.tenant_id) as session:
        pid = _partner_id(session, "P001")
        for _ in range(2):
            session.add(
                ConciergeTask(
                    partner_id=pid,
                    kind="approval_pending",
                    due_at=START,
                    cause_key="approval:e1:1",
                    open_cause="approval:e1:1",
                    created_at=START,
                    updated_at=START,
                )
            )
        session.flush()


def test_an_account_that_needs_reconnecting_opens_a_task_until_reconnected(world: World) -> None:
    with tenant_session(world.engine, world.tenant_id) as session:
        # only this kind
        concierge.update_settings(session, {"approval_pending_days": 365}, now=START)
        account = ChannelAccount(
            partner_id=_partner_id(session, "P004"),
            channel="linkedin",
            status=NEEDS_RECONNECT,
            last_error="token expired",
            updated_at=START,
            created_at=utcnow(),
        )
        session.add(account)
    assert _scan(world, START) == (1, 0)
    (task,) = _tasks(world, "account_reconnect")
    assert "linkedin" in task.title and "token expired" in task.title
    assert _scan(world, START) == (0, 0)
    with tenant_session(world.engine, world.tenant_id) as session:
        row = session.exec(select(ChannelAccount)).one()
        row.status, row.updated_at = "connected", START + timedelta(hours=1)
    assert _scan(world, START + timedelta(hours=1)) == (0, 1)


def test_a_lead_left_at_stage_lead_for_48_hours_opens_a_task(world: World) -> None:
    with tenant_session(world.engine, world.tenant_id) as session:
        # only this kind
        concierge.update_settings(session, {"approval_pending_days": 365}, now=START)
        lead = Lead(
            partner_id=_partner_id(session, "P005"),
            email="ops@example.org",
            name="Ops Lead",
            created_at=START,
            stage_changed_at=START,
        )
        session.add(lead)
    assert _scan(world, START + timedelta(hours=47)) == (0, 0)
    assert _scan(world, START + timedelta(hours=49)) == (1, 0)
    (task,) = _tasks(world, "lead_followup")
    assert "Ops Lead" in task.title
    with tenant_session(world.engine, world.tenant_id) as session:
        partner = get_partner(session, "P005")
        agenda = review.build_agenda(session, partner, START + timedelta(hours=49))
        assert [row["lead"] for row in agenda.leads_without_followup] == [
            "Ops Lead (ops@example.org)"
        ]
        assert agenda.results["leads"] == 1
        session.exec(select(Lead)).one().stage = "mql"
    assert _scan(world, START + timedelta(hours=50)) == (0, 1)


def test_a_long_error_keeps_its_code_in_the_task_title() -> None:
    from partnercast.concierge.task_scan import clip

    error = "Google Ads refused the ad: " + "the text breaks a policy; " * 20
    error += "[policyFindingError.POLICY_FINDING]"
    short = clip(error)
    assert len(short) <= 220 and short.endswith("[policyFindingError.POLICY_FINDING]")
    assert short.startswith("Google Ads refused the ad:") and " … " in short
    assert clip("short\n  error") == "short error"


def test_the_scan_knows_the_mail_feedback_intakes_event_source() -> None:
    """Late bounces are found by the source their intake gives them: the two must agree."""
    from partnercast.campaigns.delivery_feedback import EVENT_SOURCE

    assert task_scan.MAIL_FEEDBACK_SOURCE == EVENT_SOURCE
