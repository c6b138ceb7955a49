"""The approval state machine: every allowed and refused move, auto-approval, fingerprints."""

from __future__ import annotations

import pytest

from partnercast.campaigns import approval
from partnercast.campaigns.models import Enrollment
from partnercast.core.timeutil import utcnow

ALLOWED = [
    ("invited", "customise", "customising"),
    ("invited", "submit", "submitted"),
    ("customising", "submit", "submitted"),
    ("submitted", "approve", "approved"),
    ("submitted", "request_changes", "changes_requested"),
    ("changes_requested", "customise", "customising"),
    ("changes_requested", "submit", "submitted"),
    ("approved", "customise", "customising"),
    ("approved", "decline", "declined"),
    ("invited", "decline", "declined"),
    ("declined", "reinvite", "invited"),
]
REFUSED = [
    ("invited", "approve"),
    ("customising", "approve"),
    ("changes_requested", "approve"),
    ("declined", "approve"),
    ("declined", "submit"),
    ("declined", "customise"),
    ("approved", "approve"),
    ("approved", "submit"),
    ("invited", "request_changes"),
]


class _FakeSession:
    """Only collects what transition() adds: the state machine needs no database."""

    def __init__(self) -> None:
        self.added: list[object] = []

    def add(self, row: object) -> None:
        self.added.append(row)

    def flush(self) -> None:
        pass


def _enrollment(state: str, *, auto: bool = False) -> Enrollment:
    return Enrollment(
        id=1,
        tenant_id=1,
        partner_id=1,
        campaign_id=1,
        version_id=1,
        state=state,
        auto_approve=auto,
        customization={"headline": "Hi"},
        state_changed_at=utcnow(),
        created_at=utcnow(),
    )


@pytest.mark.parametrize(
    ("start", "action", "end"), ALLOWED, ids=[f"{s}-{a}" for s, a, _ in ALLOWED]
)
def test_allowed_moves(start: str, action: str, end: str) -> None:
    session = _FakeSession()
    enrollment = _enrollment(start)
    assert approval.transition(session, enrollment, action, actor="test", now=utcnow()) == end  # type: ignore[arg-type]
    assert enrollment.state == end
    event = session.added[-1]
    assert event.kind == f"enrollment.{end}" and event.data["from"] == start  # type: ignore[attr-defined]


@pytest.mark.parametrize(("start", "action"), REFUSED, ids=[f"{s}-{a}" for s, a in REFUSED])
def test_refused_moves_change_nothing(start: str, action: str) -> None:
    enrollment = _enrollment(start)
    with pytest.raises(approval.TransitionRefused):
        approval.transition(_FakeSession(), enrollment, action, actor="test", now=utcnow())  # type: ignore[arg-type]
    assert enrollment.state == start


def test_auto_approval_approves_on_submit() -> None:
    enrollment = _enrollment("customising", auto=True)
    approval.transition(_FakeSession(), enrollment, "submit", actor="test", now=utcnow())  # type: ignore[arg-type]
    assert approval.is_approved_as_is(enrollment)


def test_changing_content_after_approval_voids_it() -> None:
    enrollment = _enrollment("submitted")
    approval.transition(_FakeSession(), enrollment, "approve", actor="partner", now=utcnow())  # type: ignore[arg-type]
    assert approval.is_approved_as_is(enrollment)
    enrollment.customization = {"headline": "Something the partner never saw"}
    assert not approval.is_approved_as_is(enrollment)
    enrollment.customization = {"headline": "Hi"}
    enrollment.version_id = 2
    assert not approval.is_approved_as_is(enrollment)
