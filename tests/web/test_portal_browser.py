"""The partner portal in chromium: from the invitation email (read from the test's SMTP
server) to both sample campaigns customised and approved on all four channels (email,
social, microsite, search) in at most 5 actions, counted here; every portal page passes
axe-core (no serious or critical violation) and fits 390 px; screenshots at 1280 and
390 px go to the folder this test names."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from support.browser import LiveServer, assert_accessible, screenshots
from support.portal_world import DIGITAL_KEY, EMAIL_KEY, PortalWorld, build_portal_world
from support.signin_world import link_in, wait_for_mail

from partnercast.campaigns import approval
from partnercast.campaigns.enrollment import enrollment_spec, find_enrollment
from partnercast.campaigns.models import ApprovalRecord
from partnercast.core.tenancy import tenant_session
from partnercast.demo.smtp_sink import SmtpSink

SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots" / "portal"
"""Where the screenshots go: build/screenshots/portal/ at the repository's root."""
MOST_ACTIONS = 5
SLOW = 180_000
"""Milliseconds a render-heavy request may take on a loaded 2-core machine (every touch of
both campaigns is rendered for the preview and again for the approval)."""


class Actions:
    """Counts what the partner does: opening a link, clicking, filling a field."""

    def __init__(self, page: Any) -> None:
        self.page, self.count = page, 0

    def open(self, url: str) -> None:
        self.count += 1
        self.page.goto(url)

    def click(self, locator: Any) -> None:
        self.count += 1
        locator.click()

    def fill(self, locator: Any, text: str) -> None:
        """Type into a field, then wait for the live preview of what was typed, swapped in
        (not an action). Any earlier preview will not do: leaving the previous field fires
        its own, without this text, and a click before the right one lands sends the
        fingerprint of a preview the partner never saw (409, "look again"), as it should."""
        self.count += 1
        name = locator.get_attribute("name")

        def previews_this(response: Any) -> bool:
            if not (response.url.endswith("/preview") and response.ok):
                return False
            sent = parse_qs(response.request.post_data or "", keep_blank_values=True)
            return sent.get(name) == [text]

        with self.page.expect_response(previews_this, timeout=SLOW):
            locator.fill(text)
        self.page.wait_for_function(
            "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')",
            timeout=SLOW,
        )


@pytest.fixture
def portal(engine: Engine, tmp_path: Path, sink: SmtpSink) -> PortalWorld:
    return build_portal_world(engine, tmp_path / "world", sink.port)


@pytest.fixture
def mail_to_sink(monkeypatch: pytest.MonkeyPatch, sink: SmtpSink, live_server: LiveServer) -> None:
    monkeypatch.setenv("PARTNERCAST_SMTP_PORT", str(sink.port))
    monkeypatch.setenv("PARTNERCAST_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PARTNERCAST_PUBLIC_BASE_URL", live_server.url)


def test_from_the_invitation_to_two_approved_campaigns_in_five_actions(
    cli: Any,
    portal: PortalWorld,
    sink: SmtpSink,
    live_server: LiveServer,
    mail_to_sink: None,
    page: Any,
) -> None:
    cli("partners", "invite", "P001", "--tenant", "northwind")
    (message,) = wait_for_mail(sink, 1)
    actions = Actions(page)

    actions.open(link_in(message))  # 1: the invitation's link
    assert_accessible(page)
    screenshots(page, SHOTS, "01-invitation")
    actions.click(page.locator("main button[type=submit]"))  # 2: sign in
    page.wait_for_url(live_server.path("/portal/northwind"), timeout=SLOW)
    assert_accessible(page)
    screenshots(page, SHOTS, "02-home")
    post = "Wir bewachen Ihre Hybrid Cloud rund um die Uhr, mit Northwind Shield und uns."
    actions.fill(page.locator("#w-f-social_post"), post)  # 3: their own post
    actions.fill(page.locator("#w-f-signature_line"), "David Becker, Quartz Integration")  # 4
    screenshots(page, SHOTS, "03-home-typed")
    with page.expect_navigation(timeout=SLOW):
        actions.click(page.locator("form[action$='/approve-all'] button[type=submit]"))  # 5
    assert page.url == live_server.path("/portal/northwind?done=approved"), page.inner_text("main")
    assert_accessible(page)
    screenshots(page, SHOTS, "04-approved")
    assert actions.count <= MOST_ACTIONS
    print(f"partner actions from the invitation to two approved campaigns: {actions.count}")

    channels = set()
    with tenant_session(portal.engine, portal.tenant_id) as session:
        for key in (EMAIL_KEY, DIGITAL_KEY):
            enrollment = find_enrollment(session, key, "P001")
            assert approval.is_approved_as_is(enrollment), key
            assert enrollment.customization["signature_line"] == "David Becker, Quartz Integration"
            channels |= {touch.channel for touch in enrollment_spec(session, enrollment).touches}
        assert find_enrollment(session, DIGITAL_KEY, "P001").customization["social_post"] == post
        records = session.exec(select(ApprovalRecord)).all()
    assert channels == {"email", "x", "linkedin", "microsite", "search"}
    assert len(records) == 2
    for record in records:
        assert record.decision == "approve" and not record.on_behalf
        assert record.actor_label == "david.becker@quartzintegration.example"
        assert record.client_address == "127.0.0.1" and "Chrome" in record.user_agent
        assert len(record.fingerprint) == 64 and len(record.content_fingerprint) == 64


def test_every_portal_page_is_accessible_and_fits_a_phone(
    cli: Any,
    portal: PortalWorld,
    sink: SmtpSink,
    live_server: LiveServer,
    mail_to_sink: None,
    page: Any,
) -> None:
    cli("partners", "invite", "P003", "--tenant", "northwind")
    (message,) = wait_for_mail(sink, 1)
    page.goto(link_in(message))
    page.locator("main button[type=submit]").click()
    page.wait_for_url(live_server.path("/portal/northwind"), timeout=SLOW)
    pages = {
        "home": "/portal/northwind",
        "campaign-email": f"/portal/northwind/campaigns/{portal.enrollment_id(EMAIL_KEY, 'P003')}",
        "campaign-digital": (
            f"/portal/northwind/campaigns/{portal.enrollment_id(DIGITAL_KEY, 'P003')}"
        ),
        "accounts": "/portal/northwind/accounts",
        "results": "/portal/northwind/results",
    }
    for name, path in pages.items():
        page.goto(live_server.path(path), timeout=SLOW)
        assert_accessible(page)
        screenshots(page, SHOTS, f"page-{name}")
    # The live preview as the partner types: the X counter and the field's problem.
    page.goto(live_server.path(pages["campaign-digital"]), timeout=SLOW)
    with page.expect_response(lambda r: r.url.endswith("/preview") and r.ok, timeout=SLOW):
        page.locator("#f-page_headline").fill("x" * 120)
    assert page.locator("#state-page_headline .problem").count() == 1
    assert_accessible(page)
    screenshots(page, SHOTS, "page-campaign-problems")
