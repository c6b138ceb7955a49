"""Decisions on an enrollment, each recorded with its evidence.

A partner (or the agency, on the partner's behalf) approves, declines or asks for
changes, for the whole campaign or for one touch, or opts into auto-approval. Every
decision goes through :func:`decide`, which

* checks that the principal may decide for this partner (``Principal.may(DECIDE, ...)``;
  a concierge's coverage is the caller's to check, as everywhere);
* requires a reason when the principal acts on the partner's behalf (agency staff, the
  CLI) and records the decision as on behalf, so the partner sees it in the portal;
* refuses when the content the decider was shown is no longer the content there is
  (``shown_fingerprint``: :func:`partnercast.campaigns.approval.fingerprint` of what the
  page showed), so nobody approves what they did not see;
* applies the state machine (:func:`partnercast.campaigns.approval.transition`) and adds
  one :class:`~partnercast.campaigns.models.ApprovalRecord`: who (user or API token, and
  its label), on whose behalf and why, when, from which address and browser, and the
  fingerprint of what was decided on.

A partner who declined a campaign and then approves it (or asks for changes) is invited
again first. The partner deciding on what they see submits it first (approve, ask for changes, opt
into auto-approval, which then approves it); on the partner's behalf only what was
submitted is decided on, as the state machine says.

Per touch: declining one touch keeps it from going out for this partner
(``Enrollment.declined_touches``; the dispatcher skips it), approving it again lifts that;
asking for changes to one touch asks for changes to the campaign, naming the touch. The
campaign's approval still covers its other touches. Content changed after an approval is
never sent under it: the approval holds a fingerprint that the send checks (approval.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from partnercast.campaigns import approval
from partnercast.campaigns.enrollment import enrollment_spec, set_auto_approve
from partnercast.campaigns.models import ApprovalRecord, Enrollment
from partnercast.core.errors import NotFound, UserError
from partnercast.tenants.access import DECIDE, Grant, Principal, Role

APPROVE = "approve"
DECLINE = "decline"
REQUEST_CHANGES = "request_changes"
AUTO_APPROVE = "auto_approve"  # opt into auto-approval (where the campaign allows it)
AUTO_APPROVE_OFF = "auto_approve_off"

DECISIONS = (APPROVE, DECLINE, REQUEST_CHANGES, AUTO_APPROVE, AUTO_APPROVE_OFF)
TOUCH_DECISIONS = (APPROVE, DECLINE, REQUEST_CHANGES)
SUBMITTABLE = frozenset({approval.INVITED, approval.CUSTOMISING, approval.CHANGES_REQUESTED})


class NotPermitted(NotFound):
    """The principal may not decide for this partner. A NotFound: whoever may not decide
    for a partner is told no more than about a partner that does not exist."""


class ReasonRequired(UserError):
    """A decision on a partner's behalf without a reason."""


class ContentChanged(UserError):
    """The content changed since the decider was shown it."""


@dataclass(frozen=True)
class Client:
    """Where a decision came from: the address and the browser (User-Agent), or what
    stands for them (the CLI says so)."""

    address: str = ""
    user_agent: str = ""


def cli_principal(operator: str) -> Principal:
    """Whoever runs the CLI: the agency, deciding on the partner's behalf."""
    return Principal(
        label=f"cli ({operator})"[:254], grants=(Grant(role=Role.AGENCY_ADMIN, tenant_id=None),)
    )


def content_fingerprint(content: Any) -> str:
    """A SHA-256 of rendered content (any JSON-able value: a touch's rendered parts)."""
    body = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode()).hexdigest()


def decide(
    session: Session,
    enrollment: Enrollment,
    decision: str,
    *,
    principal: Principal,
    now: datetime,
    touch_key: str | None = None,
    reason: str = "",
    note: str = "",
    client: Client = Client(),
    shown_fingerprint: str | None = None,
    shown_content_fingerprint: str = "",
) -> ApprovalRecord:
    """Apply ``decision`` to ``enrollment`` (or to its touch ``touch_key``) at ``now`` for
    ``principal``, and record it with its evidence; returns the record.

    Raises :class:`NotPermitted` (the principal may not decide for this partner),
    :class:`ReasonRequired` (on the partner's behalf without a reason),
    :class:`ContentChanged` (``shown_fingerprint`` is not the content's fingerprint any
    more), ``approval.TransitionRefused`` (the state does not allow it) or a UserError
    (an unknown decision or touch, auto-approval the campaign does not allow).
    """
    tenant_id, partner_id = enrollment.tenant_id, enrollment.partner_id
    if not principal.may(DECIDE, tenant_id, partner_id):
        raise NotPermitted("no such enrollment")
    if decision not in DECISIONS:
        raise UserError(f"unknown decision {decision!r}: one of {', '.join(DECISIONS)}")
    on_behalf = principal.acts_on_behalf(tenant_id, partner_id)
    reason = reason.strip()
    if on_behalf and not reason:
        raise ReasonRequired(
            "a decision on the partner's behalf needs a reason (it is recorded and the "
            "partner sees it)"
        )
    current = approval.fingerprint(enrollment)
    if shown_fingerprint is not None and shown_fingerprint != current:
        raise ContentChanged(
            "the content changed since it was shown: look at it again before deciding"
        )
    if touch_key is not None:
        state_note = _decide_touch(
            session, enrollment, decision, touch_key, note, principal, now, own=not on_behalf
        )
    else:
        state_note = _decide_campaign(
            session, enrollment, decision, note, principal, now, own=not on_behalf
        )
    record = ApprovalRecord(
        enrollment_id=enrollment.id or 0,
        partner_id=partner_id,
        campaign_id=enrollment.campaign_id,
        version_id=enrollment.version_id,
        touch_key=touch_key,
        decision=decision,
        state_after=enrollment.state,
        user_id=principal.user_id,
        token_id=principal.token_id,
        actor_label=principal.label[:254],
        on_behalf=on_behalf,
        reason=reason[:2000],
        note=(note or state_note)[:2000],
        decided_at=now,
        client_address=client.address[:64],
        user_agent=client.user_agent[:500],
        fingerprint=current,
        content_fingerprint=shown_content_fingerprint[:64],
    )
    session.add(record)
    session.flush()
    return record


def _actor(principal: Principal) -> str:
    return principal.label[:64]  # Event.source holds 64 characters


def _decide_campaign(
    session: Session,
    enrollment: Enrollment,
    decision: str,
    note: str,
    principal: Principal,
    now: datetime,
    *,
    own: bool,
) -> str:
    if own and decision != DECLINE and enrollment.state == approval.DECLINED:
        # The partner changing their mind about a campaign they declined: invited again,
        # then decided on as below.
        approval.transition(session, enrollment, "reinvite", actor=_actor(principal), now=now)
    if decision == AUTO_APPROVE:
        set_auto_approve(session, enrollment, True)
        if own and enrollment.state in SUBMITTABLE:  # what they see is submitted: approved
            approval.transition(session, enrollment, "submit", actor=_actor(principal), now=now)
        if enrollment.state == approval.SUBMITTED:  # the choice covers what waits now
            approval.transition(
                session, enrollment, APPROVE, actor=_actor(principal), note=note, now=now
            )
        return "auto-approval on"
    if decision == AUTO_APPROVE_OFF:
        set_auto_approve(session, enrollment, False)
        return "auto-approval off"
    if decision in (APPROVE, REQUEST_CHANGES) and own and enrollment.state in SUBMITTABLE:
        # The partner deciding on what they see submits it: they approve (or ask for
        # changes to) the content in front of them, whether or not someone submitted it
        # first. On their behalf, only what was submitted is decided on.
        approval.transition(session, enrollment, "submit", actor=_actor(principal), now=now)
        if enrollment.state == approval.APPROVED and decision == APPROVE:
            return "approved on submit (auto-approval)"
    approval.transition(session, enrollment, decision, actor=_actor(principal), note=note, now=now)
    return ""


def _decide_touch(
    session: Session,
    enrollment: Enrollment,
    decision: str,
    touch_key: str,
    note: str,
    principal: Principal,
    now: datetime,
    *,
    own: bool,
) -> str:
    spec = enrollment_spec(session, enrollment)
    if touch_key not in {touch.key for touch in spec.touches}:
        raise NotFound(f"the campaign has no touch {touch_key!r}")
    if decision not in TOUCH_DECISIONS:
        raise UserError(f"{decision.replace('_', ' ')} is for the whole campaign, not a touch")
    declined = [key for key in enrollment.declined_touches if key != touch_key]
    if decision == DECLINE:
        declined.append(touch_key)
    elif decision == REQUEST_CHANGES:
        if own and enrollment.state in SUBMITTABLE:
            approval.transition(session, enrollment, "submit", actor=_actor(principal), now=now)
        approval.transition(
            session,
            enrollment,
            REQUEST_CHANGES,
            actor=_actor(principal),
            note=note or f"changes asked for touch {touch_key}",
            now=now,
        )
    enrollment.declined_touches = sorted(declined)  # a new list: the JSON column sees it
    session.add(enrollment)
    session.flush()
    return f"touch {touch_key}"


def records_for(
    session: Session, enrollment_ids: list[int], *, on_behalf_only: bool = False
) -> list[ApprovalRecord]:
    """The decisions recorded on these enrollments (in the session's tenant), newest
    first."""
    if not enrollment_ids:
        return []
    query = select(ApprovalRecord).where(col(ApprovalRecord.enrollment_id).in_(enrollment_ids))
    if on_behalf_only:
        query = query.where(ApprovalRecord.on_behalf == True)  # noqa: E712
    query = query.order_by(col(ApprovalRecord.decided_at).desc(), col(ApprovalRecord.id).desc())
    return list(session.exec(query).all())
