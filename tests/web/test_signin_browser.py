"""Sign-in as a person does it, in chromium: the form, the email read from the test's SMTP
server, the link's page and its button; every page scanned with axe-core and shot at
1280 and 390 px."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from support.browser import LiveServer, assert_accessible, screenshots
from support.signin_world import add_partner, add_user, link_in, wait_for_mail

from partnercast.demo.smtp_sink import SmtpSink
from partnercast.tenants.access import Role
from partnercast.web.sessions import COOKIE

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _now_is_when_the_test_runs() -> None:
    """NOW is read when each test starts, not when the module is imported: links live 15
    minutes, and in the whole suite a test runs long after its module was collected."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


def test_a_partner_signs_in_from_the_email_in_the_browser(
    live_server: LiveServer,
    sink: SmtpSink,
    page: Any,
    engine: Engine,
    tenant_a: int,
    tmp_path: Path,
) -> None:
    partner = add_partner(engine, tenant_a, "Alpha Systems", NOW)
    add_user(engine, "pat@alpha.example", Role.PARTNER, NOW, tenant_id=tenant_a, partner_id=partner)
    shots = tmp_path / "screenshots"

    page.goto(live_server.path("/home"))  # not signed in: the sign-in form
    assert page.url == live_server.path("/sign-in?next=/home")
    assert_accessible(page)
    screenshots(page, shots, "sign-in")
    page.get_by_label("Email address").fill("pat@alpha.example")
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.get_by_role("status").wait_for()
    assert "on its way" in page.get_by_role("status").inner_text()
    assert_accessible(page)
    screenshots(page, shots, "sign-in-sent")

    link = link_in(wait_for_mail(sink, 1)[0])
    page.goto(link)
    assert page.get_by_text("Sign in as pat@alpha.example?").is_visible()
    assert_accessible(page)
    screenshots(page, shots, "sign-in-link")
    assert not [c for c in page.context.cookies() if c["name"] == COOKIE]
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.path("/portal/vendor-a"))  # home: a partner's portal
    (cookie,) = [c for c in page.context.cookies() if c["name"] == COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find(COOKIE) == -1  # no script can read it

    page.goto(link)  # the same link again: refused, with a way to ask for a new one
    assert page.get_by_role("heading", name="This link no longer works").is_visible()
    assert_accessible(page)
    screenshots(page, shots, "link-refused")
    assert sorted(path.name for path in shots.iterdir())[:2] == [
        "link-refused-1280.png",
        "link-refused-390.png",
    ]


def test_the_sign_in_pages_speak_german_and_french(
    live_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    for language, button in (
        ("de-DE", "Anmeldelink per E-Mail senden"),
        ("fr-FR", "Recevoir un lien de connexion"),
    ):
        context = browser.new_context(locale=language)
        try:
            page = context.new_page()
            page.goto(live_server.path("/sign-in"))
            assert page.get_by_role("button", name=button).is_visible()
            assert page.locator("html").get_attribute("lang") == language[:2]
            assert "Sign in" not in page.content()
            assert_accessible(page)
            screenshots(page, tmp_path, f"sign-in-{language}")
        finally:
            context.close()


def test_signed_in_without_access_then_signing_out(
    live_server: LiveServer, page: Any, engine: Engine, tmp_path: Path
) -> None:
    from sqlmodel import select

    from partnercast.core.tenancy import plain_session
    from partnercast.tenants.access_models import User
    from partnercast.tenants.users import ensure_user
    from partnercast.web import magic_links

    with plain_session(engine) as session:
        ensure_user(session, "new@agency.example", now=NOW, locale="de")
        user = session.exec(select(User).where(User.email == "new@agency.example")).one()
        link = magic_links.issue(session, live_server.settings, user, now=NOW).url
    page.goto(link)
    page.get_by_role("button", name="Anmelden").click()
    page.get_by_role("heading", name="Noch kein Zugang").wait_for()
    assert page.url == live_server.path("/home")
    assert page.get_by_text("new@agency.example").is_visible()
    assert_accessible(page)
    screenshots(page, tmp_path, "no-access")
    page.get_by_role("button", name="Abmelden").click()
    page.wait_for_url(live_server.path("/sign-in?signed_out=1"))
    assert not [c for c in page.context.cookies() if c["name"] == COOKIE]
    page.goto(live_server.path("/home"))
    assert page.url == live_server.path("/sign-in?next=/home")
