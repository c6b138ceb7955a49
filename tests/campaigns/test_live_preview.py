"""The portal's live preview (campaigns/live_preview.py): every touch on every channel from
what the partner typed, unsaved, with each field's problems."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from support.portal_world import DIGITAL_KEY, EMAIL_KEY, PortalWorld, build_portal_world

from partnercast.campaigns import approval
from partnercast.campaigns.enrollment import find_enrollment
from partnercast.campaigns.live_preview import live_preview
from partnercast.core.tenancy import tenant_session
from partnercast.demo.smtp_sink import SmtpSink


@pytest.fixture
def portal_world(engine: Engine, tmp_path: Path, sink: SmtpSink) -> PortalWorld:
    return build_portal_world(engine, tmp_path / "world", sink.port)


def test_every_touch_on_every_channel_from_unsaved_text(portal_world: PortalWorld) -> None:
    world = portal_world.world
    with tenant_session(world.engine, world.tenant_id) as session:
        enrollment = find_enrollment(session, DIGITAL_KEY, "P001")
        before = approval.fingerprint(enrollment)
        shown = live_preview(
            session,
            world.settings,
            enrollment,
            {"social_post": "我们 guard your cloud 🛡️ day and night", "page_headline": "Hi"},
            locale="en",
        )
        assert enrollment.customization == {}  # nothing saved
        assert approval.fingerprint(enrollment) == before
    kinds = {touch.key: touch.kind for touch in shown.touches}
    assert kinds == {
        "landing": "page",
        "launch-x": "post",
        "launch-linkedin": "post",
        "search-ad": "other",
    }
    x = shown.touch("launch-x")
    assert x is not None and "我们 guard your cloud" in x.text
    # X's weighted length: CJK and emoji count 2, the link 23.
    assert x.length is not None and x.length > len(x.text.split("http")[0])
    assert x.max_length == 280
    assert "Hi" in (shown.touch("landing") or x).html
    assert all(touch.fingerprint for touch in shown.touches)
    assert shown.ok


def test_each_fields_problems_and_the_email_as_html_and_text(portal_world: PortalWorld) -> None:
    world = portal_world.world
    with tenant_session(world.engine, world.tenant_id) as session:
        enrollment = find_enrollment(session, EMAIL_KEY, "P001")
        shown = live_preview(
            session,
            world.settings,
            enrollment,
            {"headline": "x" * 90, "intro": "Hello {{ config }}", "signature_line": "Ann"},
            locale="en",
        )
    problems = {field.name: field.problems for field in shown.fields}
    assert problems["headline"] == ["too long (90 characters, at most 80)"]
    assert problems["intro"] and "config" in problems["intro"][0]
    assert problems["signature_line"] == []
    assert not shown.ok
    intro = shown.touch("intro")
    assert intro is not None and intro.kind == "email"
    assert "<html" in intro.html.lower() and "Ann" in intro.text
    assert "x" * 90 not in intro.subject  # a failing field keeps its saved value
