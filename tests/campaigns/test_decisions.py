"""Decisions with evidence (campaigns/decisions.py): who may decide, on whose behalf and
why, what they were shown, per-touch declines, and content changed after an approval."""

from __future__ import annotations

import pytest
from sqlmodel import select
from support.world import World, run_days, start

from partnercast.campaigns import approval, decisions
from partnercast.campaigns.enrollment import customise, find_enrollment
from partnercast.campaigns.models import ApprovalRecord, Touch
from partnercast.core.models import Dispatch
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.tenants.access import Grant, Principal, Role
from partnercast.tenants.users import ensure_user, grant, principal_for_user

CLIENT = decisions.Client(address="203.0.113.7", user_agent="Mozilla/5.0 (test)")


def _partner(world: World, external_id: str) -> Principal:
    with tenant_session(world.engine, world.tenant_id) as session:
        partner_id = find_enrollment(session, "cloud-security", external_id).partner_id
    return Principal(
        label=f"{external_id.lower()}@partner.example",
        grants=(Grant(Role.PARTNER, world.tenant_id, partner_id=partner_id),),
        user_id=None,
    )


def _submit(world: World, external_id: str, signature: str = "Team") -> None:
    with tenant_session(world.engine, world.tenant_id) as session:
        enrollment = find_enrollment(session, "cloud-security", external_id)
        customise(session, enrollment, {"signature_line": signature}, actor="partner", now=utcnow())
        approval.transition(session, enrollment, "submit", actor="partner", now=utcnow())


def _decide(world: World, external_id: str, decision: str, principal: Principal, **options):
    with tenant_session(world.engine, world.tenant_id) as session:
        enrollment = find_enrollment(session, "cloud-security", external_id)
        options.setdefault("shown_fingerprint", approval.fingerprint(enrollment))
        record = decisions.decide(
            session, enrollment, decision, principal=principal, now=utcnow(), **options
        )
        return record.id, enrollment.state


def test_a_partners_approval_is_recorded_with_its_evidence(world: World) -> None:
    _submit(world, "P001")
    moment = utcnow()
    with tenant_session(world.engine, world.tenant_id) as session:
        enrollment = find_enrollment(session, "cloud-security", "P001")
        shown = approval.fingerprint(enrollment)
        record = decisions.decide(
            session,
            enrollment,
            "approve",
            principal=_partner(world, "P001"),
            now=moment,
            client=CLIENT,
            shown_fingerprint=shown,
        )
        record_id = record.id
    with tenant_session(world.engine, world.tenant_id) as session:
        row = session.get(ApprovalRecord, record_id)
        assert row is not None
        assert (row.decision, row.state_after, row.on_behalf) == ("approve", "approved", False)
        assert row.actor_label == "p001@partner.example"
        assert row.client_address == "203.0.113.7" and row.user_agent == "Mozilla/5.0 (test)"
        assert row.fingerprint == shown and row.touch_key is None
        assert row.decided_at.replace(tzinfo=None) == moment.replace(tzinfo=None)


def test_another_partner_may_not_decide_and_is_told_not_found(world: World) -> None:
    _submit(world, "P001")
    with pytest.raises(decisions.NotPermitted):
        _decide(world, "P001", "approve", _partner(world, "P002"))
    other_tenant = Principal(label="x", grants=(Grant(Role.AGENCY_ADMIN, world.tenant_id + 1),))
    with pytest.raises(decisions.NotPermitted):
        _decide(world, "P001", "approve", other_tenant, reason="r")


def test_on_behalf_needs_a_reason_and_is_recorded_as_such(world: World) -> None:
    _submit(world, "P001")
    with plain_session(world.engine) as session:
        user = ensure_user(session, "ann@agency.example", now=utcnow())
        grant(session, user, Role.CONCIERGE, tenant_id=world.tenant_id, now=utcnow())
        session.flush()
        concierge = principal_for_user(session, user.id or 0)
        user_id = user.id
    with pytest.raises(decisions.ReasonRequired):
        _decide(world, "P001", "approve", concierge)
    record_id, state = _decide(
        world, "P001", "approve", concierge, reason="approved by phone, call of 3 Dec"
    )
    assert state == "approved"
    with tenant_session(world.engine, world.tenant_id) as session:
        row = session.get(ApprovalRecord, record_id)
        assert row is not None and row.on_behalf and row.user_id == user_id
        assert row.reason == "approved by phone, call of 3 Dec"
        enrollment = find_enrollment(session, "cloud-security", "P001")
        shown = decisions.records_for(session, [enrollment.id or 0], on_behalf_only=True)
        assert [r.id for r in shown] == [record_id]


def test_a_decision_on_content_that_changed_since_it_was_shown_is_refused(world: World) -> None:
    _submit(world, "P001")
    with tenant_session(world.engine, world.tenant_id) as session:
        seen = approval.fingerprint(find_enrollment(session, "cloud-security", "P001"))
    _submit(world, "P001", signature="Someone else's words")
    with pytest.raises(decisions.ContentChanged):
        _decide(world, "P001", "approve", _partner(world, "P001"), shown_fingerprint=seen)
    with tenant_session(world.engine, world.tenant_id) as session:
        assert find_enrollment(session, "cloud-security", "P001").state == "submitted"
        assert session.exec(select(ApprovalRecord)).all() == []


def test_a_declined_touch_does_not_go_out_the_others_do(world: World, sink: SmtpSink) -> None:
    _submit(world, "P001")
    partner = _partner(world, "P001")
    _decide(world, "P001", "decline", partner, touch_key="intro")
    _, state = _decide(world, "P001", "approve", partner)
    assert state == "approved"
    start(world)
    assert run_days(world, 0, 15) > 0  # the follow-up (day 14) went out
    with tenant_session(world.engine, world.tenant_id) as session:
        rows = session.exec(
            select(Dispatch, Touch)
            .join(Touch, Touch.id == Dispatch.touch_id)  # type: ignore[arg-type]
            .where(
                Dispatch.partner_id == find_enrollment(session, "cloud-security", "P001").partner_id
            )
        ).all()
    states = {touch.key: dispatch.state for dispatch, touch in rows}
    assert states["intro"] == "skipped" and states["follow-up"] == "done"


def test_a_touch_decision_names_a_touch_of_the_campaign(world: World) -> None:
    _submit(world, "P001")
    with pytest.raises(decisions.NotFound):
        _decide(world, "P001", "decline", _partner(world, "P001"), touch_key="nope")


def test_content_changed_after_an_approval_is_not_sent_under_it(
    world: World, sink: SmtpSink
) -> None:
    _submit(world, "P001")
    _decide(world, "P001", "approve", _partner(world, "P001"))
    with tenant_session(world.engine, world.tenant_id) as session:
        enrollment = find_enrollment(session, "cloud-security", "P001")
        # Content changed without the state machine (as a bug or a hand edit would):
        enrollment.customization = {**enrollment.customization, "signature_line": "Changed"}
        session.add(enrollment)
    start(world)
    assert run_days(world, 0, 2) == 0
    with tenant_session(world.engine, world.tenant_id) as session:
        enrollment = find_enrollment(session, "cloud-security", "P001")
        held = session.exec(select(Dispatch).where(Dispatch.enrollment_id == enrollment.id)).all()
    assert held and all(d.state == "pending" and d.sent_count == 0 for d in held)
    assert any(d.held_for == "approval" for d in held)  # the day-1 touch waits, unsent


def test_auto_approval_opt_in_approves_what_waits(world: World) -> None:
    _submit(world, "P001")
    _, state = _decide(world, "P001", "auto_approve", _partner(world, "P001"))
    assert state == "approved"
    with tenant_session(world.engine, world.tenant_id) as session:
        assert find_enrollment(session, "cloud-security", "P001").auto_approve


def test_the_cli_decides_on_the_partners_behalf_with_a_reason(cli, world: World) -> None:
    _submit(world, "P001")
    refused = cli("approve", "cloud-security", "P001", "--tenant", "northwind", expect=1)
    assert "--reason" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    done = cli("approve", "cloud-security", "P001", "--tenant", "northwind", "--reason", "by phone")
    assert "approved (on the partner's behalf)" in done.stdout
    with tenant_session(world.engine, world.tenant_id) as session:
        (row,) = session.exec(select(ApprovalRecord)).all()
    assert row.on_behalf and row.reason == "by phone" and row.actor_label.startswith("cli (")
    assert row.client_address == "cli"


def test_a_decision_is_recorded_on_sqlite_and_postgresql(any_engine, tmp_path, sink) -> None:
    """Every column holds what a decision records, a 100-character address included."""
    from support.world import build_world

    world = build_world(any_engine, tmp_path / "w", sink.port)
    _submit(world, "P001")
    with tenant_session(world.engine, world.tenant_id) as session:
        partner_id = find_enrollment(session, "cloud-security", "P001").partner_id
    label = "a" * 80 + "@partner-with-a-long-name.example"
    principal = Principal(label=label, grants=(Grant(Role.PARTNER, world.tenant_id, partner_id),))
    _decide(world, "P001", "decline", principal, touch_key="follow-up", client=CLIENT)
    _decide(world, "P001", "approve", principal, client=CLIENT)
    with tenant_session(world.engine, world.tenant_id) as session:
        rows = session.exec(select(ApprovalRecord).order_by(ApprovalRecord.id)).all()
        assert find_enrollment(session, "cloud-security", "P001").declined_touches == ["follow-up"]
    assert [(r.decision, r.touch_key) for r in rows] == [
        ("decline", "follow-up"),
        ("approve", None),
    ]
    assert all(r.actor_label == label for r in rows)


def test_a_partner_who_declined_may_change_their_mind(world: World) -> None:
    _submit(world, "P001")
    partner = _partner(world, "P001")
    _, state = _decide(world, "P001", "decline", partner)
    assert state == "declined"
    _, state = _decide(world, "P001", "approve", partner)
    assert state == "approved"
    concierge = Principal(label="c", grants=(Grant(Role.CONCIERGE, world.tenant_id),))
    _decide(world, "P001", "decline", partner)
    with pytest.raises(approval.TransitionRefused):  # on their behalf: no such reversal
        _decide(world, "P001", "approve", concierge, reason="r")
