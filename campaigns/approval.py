"""The enrollment approval state machine: nothing goes out without the partner's approval.

::

    invited ──customise──▶ customising ──submit──▶ submitted ──approve──▶ approved
       │                      ▲    │                  │  │
       │                      │    └──────decline─────┼──┼──▶ declined
       │                      └──request_changes◀─────┘  │
       └────────────────────────decline──────────────────┘

A concierge (or the partner) customises and submits; the partner approves, asks for
changes or declines. A partner who chose auto-approval (where the campaign allows it) is
approved on submit. Changing the customisation of an approved enrollment voids the
approval. Approval records a fingerprint of exactly what was approved (campaign version +
customisation); a send whose content no longer matches it does not go out.

A dispatch that came due before its partner approved is held (``Dispatch.held_for``) and
put back for a while by the dispatcher; :func:`release_approved`, run at the start of
every tick, makes those whose approval has come due at once.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlmodel import Session, col, select

from partnercast.campaigns.models import Enrollment, Touch
from partnercast.core import outbox
from partnercast.core.errors import UserError
from partnercast.core.models import HELD_FOR_APPROVAL, Dispatch, Event

INVITED = "invited"
CUSTOMISING = "customising"
SUBMITTED = "submitted"
APPROVED = "approved"
CHANGES_REQUESTED = "changes_requested"
DECLINED = "declined"

STATES = (INVITED, CUSTOMISING, SUBMITTED, APPROVED, CHANGES_REQUESTED, DECLINED)

# action -> (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "customise": (
        frozenset({INVITED, CUSTOMISING, CHANGES_REQUESTED, SUBMITTED, APPROVED}),
        CUSTOMISING,
    ),
    "submit": (frozenset({INVITED, CUSTOMISING, CHANGES_REQUESTED}), SUBMITTED),
    "approve": (frozenset({SUBMITTED}), APPROVED),
    "request_changes": (frozenset({SUBMITTED}), CHANGES_REQUESTED),
    "decline": (
        frozenset({INVITED, CUSTOMISING, SUBMITTED, CHANGES_REQUESTED, APPROVED}),
        DECLINED,
    ),
    "reinvite": (frozenset({DECLINED}), INVITED),
}


class TransitionRefused(UserError):
    """An action that the enrollment's current state does not allow."""


def fingerprint(enrollment: Enrollment) -> str:
    """What exactly is being approved: the pinned version and the customisation."""
    body = json.dumps(
        {"version": enrollment.version_id, "customization": enrollment.customization},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def is_approved_as_is(enrollment: Enrollment) -> bool:
    """True only when approved and the content is exactly what was approved."""
    return enrollment.state == APPROVED and enrollment.approved_fingerprint == fingerprint(
        enrollment
    )


def touch_declined(session: Session, enrollment: Enrollment, touch_id: int) -> bool:
    """True when the partner declined this one touch (campaigns/decisions.py): it does not
    go out for them, whatever the campaign's approval."""
    if not enrollment.declined_touches:
        return False
    touch = session.get(Touch, touch_id)
    return touch is not None and touch.key in enrollment.declined_touches


def transition(
    session: Session,
    enrollment: Enrollment,
    action: str,
    *,
    actor: str,
    note: str = "",
    now: datetime,
) -> str:
    """Apply ``action`` at ``now``; records an event and returns the new state. Refuses
    bad moves."""
    if action not in TRANSITIONS:
        raise TransitionRefused(f"unknown action {action!r}")
    allowed_from, target = TRANSITIONS[action]
    if enrollment.state not in allowed_from:
        raise TransitionRefused(
            f"cannot {action.replace('_', ' ')} an enrollment that is "
            f"{enrollment.state.replace('_', ' ')}",
            where=f"enrollment {enrollment.id}",
        )
    if action == "submit" and enrollment.auto_approve:
        target = APPROVED
    moment = now
    previous = enrollment.state
    enrollment.state = target
    enrollment.state_changed_at = moment
    if note:
        enrollment.note = note[:2000]
    if target == APPROVED:
        enrollment.approved_at = moment
        enrollment.approved_fingerprint = fingerprint(enrollment)
    else:
        enrollment.approved_at = None
        enrollment.approved_fingerprint = ""
    session.add(enrollment)
    session.add(
        Event(
            kind=f"enrollment.{target}",
            occurred_at=moment,
            partner_id=enrollment.partner_id,
            campaign_id=enrollment.campaign_id,
            enrollment_id=enrollment.id,
            source=actor,
            data={
                "from": previous,
                "action": action,
                "note": note[:500],
                "auto": action == "submit" and target == APPROVED,
            },
        )
    )
    session.flush()
    return target


def release_approved(session: Session, now: datetime) -> int:
    """Make due at ``now`` the dispatches held for an approval that has since been given
    (approved as is), in the session's tenant; returns how many.

    Pending, held and not due yet: the dispatcher put them back to recheck later, and
    the partner need not wait for that. One indexed query per tick; rows only for
    enrollments that are approved now.
    """
    rows = session.exec(
        select(Dispatch, Enrollment)
        .join(Enrollment, col(Enrollment.id) == col(Dispatch.enrollment_id))
        .where(
            Dispatch.state == outbox.PENDING,
            Dispatch.held_for == HELD_FOR_APPROVAL,
            Dispatch.scheduled_at > now,
            Enrollment.state == APPROVED,
        )
    ).all()
    released = 0
    for dispatch, enrollment in rows:
        if is_approved_as_is(enrollment):
            dispatch.scheduled_at, dispatch.held_for = now, ""
            session.add(dispatch)
            released += 1
    return released
