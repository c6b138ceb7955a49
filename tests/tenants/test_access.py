"""The one role model: users, memberships, principals and API tokens, on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from partnercast.core.errors import UserError
from partnercast.core.tenancy import plain_session, system_session, tenant_session
from partnercast.tenants import access, api_tokens, users
from partnercast.tenants.access import Role
from partnercast.tenants.models import Partner

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _partner(engine: Engine, tenant_id: int, external_id: str) -> int:
    with tenant_session(engine, tenant_id) as session:
        partner = Partner(external_id=external_id, name=external_id, created_at=NOW, updated_at=NOW)
        session.add(partner)
        session.flush()
        assert partner.id is not None
        return partner.id


def test_one_person_is_a_partner_user_with_two_vendors_and_sees_only_those(
    engine: Engine, tenant_a: int, tenant_b: int
) -> None:
    p_a = _partner(engine, tenant_a, "P1")
    p_b = _partner(engine, tenant_b, "P1")
    other = _partner(engine, tenant_a, "P2")
    with plain_session(engine) as session:
        user = users.ensure_user(session, " Ana@Example.COM ", now=NOW, name="Ana")
        users.grant(session, user, Role.PARTNER, tenant_id=tenant_a, partner_id=p_a, now=NOW)
        users.grant(session, user, Role.PARTNER, tenant_id=tenant_b, partner_id=p_b, now=NOW)
        users.grant(session, user, Role.PARTNER, tenant_id=tenant_b, partner_id=p_b, now=NOW)
        assert user.email == "ana@example.com"
        assert len(users.memberships(session, user.id or 0)) == 2
        who = users.principal_for_user(session, user.id or 0)
    assert who.visible_tenants([tenant_a, tenant_b, 999]) == [tenant_a, tenant_b]
    assert who.may(access.DECIDE, tenant_a, p_a)
    assert not who.may(access.DECIDE, tenant_a, other)
    assert not who.may(access.DECIDE, tenant_a, p_b)  # B's partner id, asked in A
    assert not who.may(access.TASKS_WRITE, tenant_a, p_a)
    assert who.partner_scope(tenant_a) == access.PartnerScope(partner_ids=frozenset({p_a}))
    assert not who.acts_on_behalf(tenant_a, p_a)
    assert who.partner_scope(999).nothing


def test_agency_admin_sees_every_tenant_and_acts_on_behalf(
    engine: Engine, tenant_a: int, tenant_b: int
) -> None:
    with plain_session(engine) as session:
        user = users.ensure_user(session, "boss@agency.example", now=NOW)
        users.grant(session, user, Role.AGENCY_ADMIN, tenant_id=None, now=NOW)
        users.grant(session, user, Role.AGENCY_ADMIN, tenant_id=None, now=NOW)
        assert len(users.memberships(session, user.id or 0)) == 1
        who = users.principal_for_user(session, user.id or 0)
    assert who.visible_tenants([tenant_a, tenant_b]) == [tenant_a, tenant_b]
    assert who.partner_scope(tenant_b).everything
    assert who.may(access.ADMIN, tenant_b)
    assert who.acts_on_behalf(tenant_a, 1)


def test_a_concierge_covers_their_partners_and_a_marketer_cannot_decide(
    engine: Engine, tenant_a: int
) -> None:
    with plain_session(engine) as session:
        con = users.ensure_user(session, "con@agency.example", now=NOW)
        users.grant(session, con, Role.CONCIERGE, tenant_id=tenant_a, concierge_id=7, now=NOW)
        vm = users.ensure_user(session, "vm@vendor.example", now=NOW)
        users.grant(session, vm, Role.VENDOR_MARKETER, tenant_id=tenant_a, now=NOW)
        concierge = users.principal_for_user(session, con.id or 0)
        marketer = users.principal_for_user(session, vm.id or 0)
    assert concierge.partner_scope(tenant_a) == access.PartnerScope(concierge_ids=frozenset({7}))
    assert concierge.may(access.TASKS_WRITE, tenant_a)
    assert not concierge.may(access.ADMIN, tenant_a)
    assert not marketer.may(access.DECIDE, tenant_a, 1)
    assert marketer.partner_scope(tenant_a).everything
    assert marketer.partner_scope(tenant_a, action=access.DECIDE).nothing


def test_grants_that_make_no_sense_are_refused(engine: Engine, tenant_a: int) -> None:
    with plain_session(engine) as session:
        user = users.ensure_user(session, "x@example.com", now=NOW)
        with pytest.raises(UserError, match="belongs to one tenant"):
            users.grant(session, user, Role.CONCIERGE, tenant_id=None, now=NOW)
        with pytest.raises(UserError, match="only a partner user"):
            users.grant(session, user, Role.PARTNER, tenant_id=tenant_a, now=NOW)
        with pytest.raises(UserError, match="not an email address"):
            users.ensure_user(session, "not an address", now=NOW)
    assert access.parse_role("Agency-Admin") is Role.AGENCY_ADMIN
    assert access.parse_role("partner user") is Role.PARTNER
    with pytest.raises(ValueError, match="one of agency-admin"):
        access.parse_role("owner")


def test_a_disabled_user_sees_nothing(engine: Engine, tenant_a: int) -> None:
    with plain_session(engine) as session:
        user = users.ensure_user(session, "gone@example.com", now=NOW)
        users.grant(session, user, Role.VENDOR_MARKETER, tenant_id=tenant_a, now=NOW)
        user.disabled = True
        session.add(user)
        session.flush()
        assert not users.principal_for_user(session, user.id or 0).sees_tenant(tenant_a)


def test_tokens_are_shown_once_kept_hashed_and_die_when_revoked_or_expired(
    engine: Engine, tenant_a: int, tenant_b: int
) -> None:
    partner = _partner(engine, tenant_a, "P1")
    with tenant_session(engine, tenant_a) as session:
        row, token = api_tokens.create_token(
            session, name="crm sync", role=Role.PARTNER, partner_id=partner, now=NOW
        )
        _, short_lived = api_tokens.create_token(
            session,
            name="temp",
            role=Role.CONCIERGE,
            now=NOW,
            expires_at=NOW + timedelta(hours=1),
        )
        assert token not in row.token_hash and row.public_id in token
        assert token.split("_")[-1] not in api_tokens.describe(row)
    with tenant_session(engine, tenant_b) as session:
        assert api_tokens.list_tokens(session) == []  # B never sees A's tokens
    with system_session(engine, reason="test: a token names its tenant") as session:
        found = api_tokens.find_live_token(session, token, now=NOW)
        assert found is not None and found.tenant_id == tenant_a
        who = api_tokens.principal_for_token(found)
        assert who.may(access.DECIDE, tenant_a, partner)
        assert not who.sees_tenant(tenant_b)
        altered = token[:-1] + ("B" if token.endswith("A") else "A")
        assert api_tokens.find_live_token(session, altered, now=NOW) is None
        assert api_tokens.find_live_token(session, token[:-2], now=NOW) is None
        assert api_tokens.find_live_token(session, "Bearer nonsense", now=NOW) is None
        assert api_tokens.find_live_token(session, short_lived, now=NOW) is not None
        later = NOW + timedelta(hours=2)
        assert api_tokens.find_live_token(session, short_lived, now=later) is None
    with tenant_session(engine, tenant_a) as session:
        api_tokens.revoke_token(session, row.public_id, now=NOW)
    with system_session(engine, reason="test") as session:
        assert api_tokens.find_live_token(session, token, now=NOW) is None
