"""Inviting a partner and managing who may sign in: `partnercast partners invite` emails
the partner's point of contact (read back from the test's SMTP server) in the partner's
language; the link, opened in chromium, signs them in to their portal; `users add/list/
remove` give and take access."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli
from sqlalchemy.engine import Engine
from sqlmodel import select
from support.browser import LiveServer, assert_accessible, screenshots
from support.signin_world import add_partner, link_in, wait_for_mail

from partnercast.concierge.models import Concierge
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.tenants.access_models import User
from partnercast.tenants.users import principal_for_user
from partnercast.web.invitations import invite_partner, partner_users
from partnercast.web.sessions import COOKIE

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def mail_to_sink(monkeypatch: pytest.MonkeyPatch, sink: SmtpSink, live_server: LiveServer) -> None:
    """The CLI's settings: mail to the test's SMTP server, links to the live server."""
    monkeypatch.setenv("PARTNERCAST_SMTP_PORT", str(sink.port))
    monkeypatch.setenv("PARTNERCAST_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PARTNERCAST_PUBLIC_BASE_URL", live_server.url)


def test_an_invited_partner_signs_in_from_the_email(
    cli: Cli,
    engine: Engine,
    tenant_a: int,
    sink: SmtpSink,
    live_server: LiveServer,
    mail_to_sink: None,
    page: Any,
    tmp_path: Path,
) -> None:
    partner = add_partner(
        engine,
        tenant_a,
        "Alpha Systems",
        NOW,
        contact_name="Ana Alpha",
        contact_email="Ana@Alpha.example",
        languages=["en"],
    )
    done = cli("partners", "invite", "alpha-systems", "--tenant", "vendor-a")
    assert "invited ana@alpha.example (en) to vendor-a's portal" in done.stdout
    (message,) = wait_for_mail(sink, 1)
    assert message["To"] == "ana@alpha.example"
    assert message["Subject"] == "Vendor-A invites you to its partner portal"
    assert "within 7 days" in message.get_body(("plain",)).get_content()
    assert [u.accepted_at for u in partner_users(engine, tenant_a, partner)] == [None]

    page.goto(link_in(message))  # the invitation's link, in the browser: one button
    assert page.get_by_role("heading", name="Welcome").is_visible()
    assert_accessible(page)
    screenshots(page, tmp_path / "shots", "invitation")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.path("/portal/vendor-a"))
    assert [c for c in page.context.cookies() if c["name"] == COOKIE]
    (accepted,) = partner_users(engine, tenant_a, partner)
    assert accepted.accepted_at is not None and accepted.invited_by == "partnercast partners invite"


def test_an_invitation_is_written_in_the_partners_language(
    engine: Engine, tenant_a: int, sink: SmtpSink, live_server: LiveServer
) -> None:
    partner = add_partner(
        engine,
        tenant_a,
        "Gamma GmbH",
        NOW,
        contact_email="greta@gamma.example",
        contact_name="Greta",
        languages=["de", "en"],
    )
    from partnercast.web.mail import SmtpServer

    made = invite_partner(
        live_server.engine,
        live_server.settings,
        tenant_id=tenant_a,
        partner_id=partner,
        now=NOW,
        invited_by="anna@agency.example",
        smtp=SmtpServer(port=sink.port),
    )
    assert made.sent and made.locale == "de"
    (message,) = wait_for_mail(sink, 1)
    assert message["Subject"] == "Vendor-A lädt Sie in sein Partnerportal ein"
    assert message["Content-Language"] == "de"
    text = message.get_body(("plain",)).get_content()
    assert text.startswith("Hallo Greta,") and "7 Tagen" in text
    with plain_session(engine) as session:
        assert (
            session.exec(select(User).where(User.email == "greta@gamma.example")).one().locale
            == "de"
        )


def test_inviting_a_partner_without_a_contact_says_how(
    cli: Cli, engine: Engine, tenant_a: int
) -> None:
    add_partner(engine, tenant_a, "Delta", NOW)
    done = cli("partners", "invite", "delta", "--tenant", "vendor-a", expect=1)
    assert "has no point of contact email" in done.stderr
    assert (
        cli("partners", "invite", "nobody", "--tenant", "vendor-a", expect=1).stderr.count("\n")
        <= 2
    )


def test_users_add_list_remove(cli: Cli, engine: Engine, tenant_a: int, tenant_b: int) -> None:
    add_partner(engine, tenant_a, "Alpha Systems", NOW)
    with tenant_session(engine, tenant_a) as session:
        anna = Concierge(name="Anna", email="anna@agency.example", languages=["de"], created_at=NOW)
        session.add(anna)
        session.flush()
        anna_id = anna.id
    cli("users", "add", "boss@agency.example", "--role", "agency-admin")
    cli(
        "users",
        "add",
        "anna@agency.example",
        "--role",
        "concierge",
        "--tenant",
        "vendor-a",
        "--concierge",
        "Anna",
    )
    cli("users", "add", "vic@vendor-a.example", "--role", "vendor-marketer", "--tenant", "vendor-a")
    cli(
        "users",
        "add",
        "pat@alpha.example",
        "--role",
        "partner",
        "--tenant",
        "vendor-a",
        "--partner",
        "alpha-systems",
        "--locale",
        "fr",
    )
    listed = cli("users", "list").stdout
    for expected in (
        "boss@agency.example",
        "(all)",
        "concierge",
        "vendor-marketer",
        "alpha-systems",
    ):
        assert expected in listed
    assert "boss@agency.example" in cli("users", "list", "--tenant", "vendor-b").stdout
    assert "pat@alpha.example" not in cli("users", "list", "--tenant", "vendor-b").stdout

    with plain_session(engine) as session:
        ids = {u.email: u.id for u in session.exec(select(User)).all()}
        anna_principal = principal_for_user(session, ids["anna@agency.example"] or 0)
        pat = principal_for_user(session, ids["pat@alpha.example"] or 0)
        boss = principal_for_user(session, ids["boss@agency.example"] or 0)
        assert session.get(User, ids["pat@alpha.example"]).locale == "fr"  # type: ignore[union-attr]
    assert anna_principal.partner_scope(tenant_a).concierge_ids == {anna_id}
    assert boss.sees_tenant(tenant_b) and not pat.sees_tenant(tenant_b)

    mistakes = [
        (["users", "add", "x@y.example", "--role", "partner", "--tenant", "vendor-a"], "--partner"),
        (["users", "add", "x@y.example", "--role", "concierge"], "one tenant"),
        (["users", "add", "x@y.example", "--role", "wizard"], "unknown role"),
        (["users", "add", "not-an-address", "--role", "agency-admin"], "not an email address"),
        (
            [
                "users",
                "add",
                "x@y.example",
                "--role",
                "concierge",
                "--tenant",
                "vendor-a",
                "--concierge",
                "Zed",
            ],
            "no concierge",
        ),
        (["users", "remove", "ghost@y.example"], "no user"),
    ]
    for args, says in mistakes:
        err = cli(*args, expect=1).stderr
        assert says in err and "Traceback" not in err, (args, err)

    assert (
        "removed 1 role(s) of pat@alpha.example in vendor-a"
        in cli("users", "remove", "pat@alpha.example", "--tenant", "vendor-a").stdout
    )
    cli("users", "remove", "boss@agency.example")
    with plain_session(engine) as session:
        assert not principal_for_user(session, ids["pat@alpha.example"] or 0).grants
        assert session.get(User, ids["boss@agency.example"]).disabled  # type: ignore[union-attr]
    assert "pat@alpha.example" not in cli("users", "list").stdout


def test_an_invitation_that_could_not_be_sent_leaves_nothing(
    engine: Engine, tenant_a: int, live_server: LiveServer
) -> None:
    from partnercast.core.errors import UserError
    from partnercast.demo.smtp_sink import free_port
    from partnercast.web.mail import SmtpServer

    partner = add_partner(
        engine, tenant_a, "Epsilon", NOW, contact_email="eve@epsilon.example", languages=["fr"]
    )
    with pytest.raises(UserError, match="was not sent"):
        invite_partner(
            engine,
            live_server.settings,
            tenant_id=tenant_a,
            partner_id=partner,
            now=NOW,
            smtp=SmtpServer(port=free_port(), timeout_seconds=5),  # nobody listens there
        )
    assert partner_users(engine, tenant_a, partner) == []
    with plain_session(engine) as session:
        assert session.exec(select(User)).all() == []
