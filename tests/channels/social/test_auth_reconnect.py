"""An account the network refuses is held until the partner reconnects it, then resumes.

For each network, as its docs show the refusal (X: 401 problem JSON; LinkedIn: 401 with
``REVOKED_ACCESS_TOKEN``; Google Ads: 401 ``UNAUTHENTICATED``, or the token endpoint's
``400 invalid_grant`` for a revoked refresh token): the account is marked as needing
reconnection, one concierge task says so, the other partners' posts go out, and after
``partnercast accounts connect`` the held dispatch is published, once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from channels.social.test_uncertain_publish import LATER, POSTS_DAY, Digital, digital  # noqa: F401
from conftest import make_tenant
from sqlmodel import col, select

from partnercast.accounts_cli import resume_held_dispatches
from partnercast.channels.search.channel import SearchChannel
from partnercast.channels.social.linkedin import LinkedInChannel
from partnercast.channels.social.x import XChannel
from partnercast.concierge.models import ConciergeTask
from partnercast.core import accounts
from partnercast.core.models import Dispatch
from partnercast.core.secrets import secret_box
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.social_standin import LINKEDIN_POSTS, X_POSTS
from partnercast.tenants.models import Partner

LINKEDIN_REVOKED = {  # LinkedIn's documented answer to a token the member revoked
    "status": 401,
    "serviceErrorCode": 65601,
    "code": "REVOKED_ACCESS_TOKEN",
    "message": "The token used in the request has been revoked by the user",
}
GOOGLE_UNAUTHENTICATED = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential."
)


def _refuse_x(stage: Digital) -> None:
    stage.social.fail_next(X_POSTS, 401)


def _refuse_linkedin(stage: Digital) -> None:
    stage.social.fail_next(LINKEDIN_POSTS, 401, body=LINKEDIN_REVOKED)


def _refuse_google_ads(stage: Digital) -> None:
    stage.ads.fail_next("search", 401, rpc_status="UNAUTHENTICATED", message=GOOGLE_UNAUTHENTICATED)


def _revoke_refresh_token(stage: Digital) -> None:
    """One partner's stored refresh token is revoked (the stand-in answers invalid_grant)."""
    with tenant_session(stage.world.engine, stage.world.tenant_id) as session:
        first = session.exec(
            select(Dispatch).where(Dispatch.channel == "search").order_by(col(Dispatch.id))
        ).first()
        assert first is not None
        accounts.connect_account(
            session,
            partner_id=first.partner_id,
            channel="search",
            account=stage.ads.account(refresh_token="revoked"),
            box=secret_box(stage.world.settings),
            now=utcnow(),
        )


CASES: dict[str, tuple[str, type, Callable[[Digital], None], str]] = {
    "x-401": ("x", XChannel, _refuse_x, "401"),
    "linkedin-401-revoked": ("linkedin", LinkedInChannel, _refuse_linkedin, "REVOKED_ACCESS"),
    "google-ads-unauthenticated": (
        "search",
        SearchChannel,
        _refuse_google_ads,
        "UNAUTHENTICATED",
    ),
    "google-ads-invalid-grant": ("search", SearchChannel, _revoke_refresh_token, "invalid_grant"),
}


def _published(stage: Digital, channel: str) -> int:
    if channel == "x":
        return len(stage.social.x_posts())
    if channel == "linkedin":
        return len(stage.social.linkedin_posts())
    return len(stage.ads.campaigns)


def _tasks(stage: Digital, prefix: str) -> list[ConciergeTask]:
    with tenant_session(stage.world.engine, stage.world.tenant_id) as session:
        return list(
            session.exec(
                select(ConciergeTask).where(col(ConciergeTask.cause_key).startswith(prefix))
            ).all()
        )


@pytest.mark.parametrize("case", list(CASES))
def test_a_refused_account_is_held_then_resumes_after_reconnecting(
    digital: Digital,  # noqa: F811
    cli,  # type: ignore[no-untyped-def]
    case: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = digital.world.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("PARTNERCAST_DATABASE_URL", url)  # the CLI on the same database
    channel, kind, refuse, shown = CASES[case]
    refuse(digital)
    digital.tick(POSTS_DAY)

    dispatches = digital.dispatches(channel)
    [held] = [d for d in dispatches if accounts.RECONNECT_REASON in d.last_error]
    assert held.state == "failed" and shown in held.last_error
    others = [d for d in dispatches if d.partner_id != held.partner_id]
    assert others and {d.state for d in others} <= {"done", "failed"}
    assert [d for d in others if d.state == "done"], "other partners' posts went out"
    assert not [d for d in others if accounts.RECONNECT_REASON in d.last_error]
    done_before = len([d for d in dispatches if d.state == "done"])
    assert _published(digital, channel) == done_before

    with tenant_session(digital.world.engine, digital.world.tenant_id) as session:
        row = accounts.find_account(session, partner_id=held.partner_id, channel=channel)
        assert row is not None and row.status == accounts.NEEDS_RECONNECT
        assert shown in row.last_error
        stored = accounts.load_account(row, kind.Account, secret_box(digital.world.settings))
        partner = session.get(Partner, held.partner_id)
        assert partner is not None
        external_id = partner.external_id
        account_id = row.id

    digital.tick(POSTS_DAY + LATER)  # still refused: nothing is tried, one task only
    assert _published(digital, channel) == done_before
    [task] = _tasks(digital, f"reconnect:a{account_id}:")
    assert task.status == "open" and channel in task.title
    # The account's task covers the dispatch it holds: no second task per held dispatch.
    held_key = f"dispatch_failed:d{held.id}"
    assert [t for t in _tasks(digital, held_key) if t.cause_key == held_key] == []

    plain, secrets = accounts.split_account(stored)
    if case == "google-ads-invalid-grant":
        secrets["refresh_token"] = "a-new-refresh-token"
    values = {**plain, **secrets}
    settings = [f"{key}={value}" for key, value in values.items() if value is not None]
    pairs = [arg for pair in settings for arg in ("--set", pair)]
    reconnected_at = (POSTS_DAY + LATER + LATER / 2).isoformat()
    result = cli(
        "accounts",
        "connect",
        external_id,
        channel,
        "--tenant",
        "northwind",
        *pairs,
        "--now",
        reconnected_at,
    )
    assert "1 dispatch(es) held for this account are due again now" in result.stdout
    for secret in secrets.values():
        assert secret not in result.stdout

    digital.tick(POSTS_DAY + 2 * LATER)

    [resumed] = [d for d in digital.dispatches(channel) if d.id == held.id]
    assert resumed.state == "done", resumed.last_error
    done = [d for d in digital.dispatches(channel) if d.state == "done"]
    assert len(done) == done_before + 1
    assert _published(digital, channel) == len(done)  # published once, nothing twice
    [task] = _tasks(digital, f"reconnect:a{account_id}:")
    assert task.status != "open"
    assert [t for t in _tasks(digital, held_key) if t.cause_key == held_key] == []


def test_a_dispatch_of_a_completed_cycle_is_not_resumed(digital: Digital, cli) -> None:  # noqa: F811
    """A touch is never sent after its cycle ended, even when the account comes back."""
    _refuse_x(digital)
    digital.tick(POSTS_DAY)
    [held] = [d for d in digital.dispatches("x") if accounts.RECONNECT_REASON in d.last_error]
    digital.tick(POSTS_DAY + timedelta(days=60))  # the cycle closes
    with tenant_session(digital.world.engine, digital.world.tenant_id) as session:
        resumed = resume_held_dispatches(
            session, partner_id=held.partner_id, channel="x", now=POSTS_DAY + timedelta(days=61)
        )
        assert resumed == 0
    [after] = [d for d in digital.dispatches("x") if d.id == held.id]
    assert after.state == "failed"


def test_resuming_stays_in_the_tenant(digital: Digital) -> None:  # noqa: F811
    """Another tenant resuming its partner with the same id resumes nothing of this one."""
    _refuse_x(digital)
    digital.tick(POSTS_DAY)
    [held] = [d for d in digital.dispatches("x") if accounts.RECONNECT_REASON in d.last_error]
    other = make_tenant(digital.world.engine, "other-vendor")
    with tenant_session(digital.world.engine, other) as session:
        resumed = resume_held_dispatches(
            session, partner_id=held.partner_id, channel="x", now=POSTS_DAY + LATER
        )
        assert resumed == 0
    with tenant_session(digital.world.engine, digital.world.tenant_id) as session:
        [again] = accounts.held_dispatches(session, partner_id=held.partner_id, channel="x")
    assert again.id == held.id and again.state == "failed"
