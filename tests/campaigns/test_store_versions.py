"""Storing campaign folders: numbered immutable versions, the segment check, tenant isolation."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.campaigns.models import Campaign, CampaignVersion, Touch
from partnercast.campaigns.store import (
    campaign_versions,
    get_campaign,
    latest_version,
    list_campaigns,
    store_campaign,
    version_spec,
    version_touches,
)
from partnercast.core.errors import NotFound, TenantScopeError, UserError
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import utcnow

from .conftest import CampaignFolder


def _snapshot(engine: Engine, tenant_id: int, version_id: int) -> tuple[object, ...]:
    with tenant_session(engine, tenant_id) as session:
        version = session.get(CampaignVersion, version_id)
        assert version is not None
        touches = [
            (t.key, t.channel, t.day_offset, t.template) for t in version_touches(session, version)
        ]
        return (version.number, version.content_hash, version.spec, version.templates, touches)


def test_the_first_load_creates_version_1(
    engine: Engine, tenant_a: int, add_segments: Callable[..., None], folder: CampaignFolder
) -> None:
    add_segments(tenant_a)
    loaded = folder.read()

    with tenant_session(engine, tenant_a) as session:
        result = store_campaign(session, loaded, now=utcnow())

    assert result.created is True
    assert result.version.number == 1
    assert result.campaign.latest_version_id == result.version.id
    with tenant_session(engine, tenant_a) as session:
        campaign = get_campaign(session, "cloud-security")
        version = latest_version(session, campaign)
        touches = version_touches(session, version)
        assert campaign.name == "Secure your hybrid cloud in 45 days"
        assert campaign.tenant_id == tenant_a
        assert version.content_hash == loaded.content_hash
        assert version.cycle_days == 45
        assert version.templates == loaded.templates
        assert version_spec(version) == loaded.spec
        assert [(t.key, t.channel, t.day_offset, t.template) for t in touches] == [
            ("intro", "email", 1, "email/intro"),
            ("follow-up", "email", 14, "email/follow-up"),
            ("last-call", "email", 35, "email/last-call"),
        ]


def test_loading_the_same_folder_again_is_a_no_op(
    engine: Engine, tenant_a: int, add_segments: Callable[..., None], folder: CampaignFolder
) -> None:
    add_segments(tenant_a)
    with tenant_session(engine, tenant_a) as session:
        first = store_campaign(session, folder.read(), now=utcnow())

    with tenant_session(engine, tenant_a) as session:
        again = store_campaign(session, folder.read(), now=utcnow())

    assert again.created is False
    assert again.version.id == first.version.id
    with tenant_session(engine, tenant_a) as session:
        assert len(session.exec(select(CampaignVersion)).all()) == 1
        assert len(session.exec(select(Touch)).all()) == 3


def test_a_changed_folder_adds_version_2_and_leaves_version_1_alone(
    engine: Engine, tenant_a: int, add_segments: Callable[..., None], folder: CampaignFolder
) -> None:
    add_segments(tenant_a)
    with tenant_session(engine, tenant_a) as session:
        first = store_campaign(session, folder.read(), now=utcnow())
    before = _snapshot(engine, tenant_a, first.version.id)
    folder.edit("campaign.yaml", "cycle_days: 45", "cycle_days: 60")
    folder.edit("campaign.yaml", "day: 35", "day: 50")
    folder.edit("templates/email/intro.en.mjml", "No slides", "No slide decks")

    with tenant_session(engine, tenant_a) as session:
        second = store_campaign(session, folder.read(), now=utcnow())

    assert second.created is True
    assert second.version.number == 2
    assert second.campaign.id == first.campaign.id
    assert _snapshot(engine, tenant_a, first.version.id) == before
    with tenant_session(engine, tenant_a) as session:
        campaign = get_campaign(session, "cloud-security")
        assert campaign.latest_version_id == second.version.id
        assert [v.number for v in campaign_versions(session, campaign)] == [1, 2]
        latest = latest_version(session, campaign)
        assert latest.cycle_days == 60
        assert [t.day_offset for t in version_touches(session, latest)] == [1, 14, 50]
        assert "No slide decks" in latest.templates["email/intro.en.mjml"]


def test_a_missing_target_segment_is_refused_and_nothing_is_written(
    engine: Engine, tenant_a: int, add_segments: Callable[..., None], folder: CampaignFolder
) -> None:
    add_segments(tenant_a, ["silver-na"])
    loaded = folder.read()

    with pytest.raises(UserError) as raised, tenant_session(engine, tenant_a) as session:
        store_campaign(session, loaded, now=utcnow())

    assert str(raised.value) == (
        "campaign 'cloud-security' targets segments this tenant does not have: "
        "gold-emea, registered-apac (define them first: partnercast segments load FILE)"
    )
    with tenant_session(engine, tenant_a) as session:
        assert list_campaigns(session) == []
        assert session.exec(select(CampaignVersion)).all() == []
        assert session.exec(select(Touch)).all() == []


def test_segments_of_another_tenant_do_not_count(
    engine: Engine,
    tenant_a: int,
    tenant_b: int,
    add_segments: Callable[..., None],
    folder: CampaignFolder,
) -> None:
    add_segments(tenant_b)

    loaded = folder.read()

    with (
        pytest.raises(UserError, match="gold-emea, silver-na, registered-apac"),
        tenant_session(engine, tenant_a) as session,
    ):
        store_campaign(session, loaded, now=utcnow())


def test_the_same_key_in_two_tenants_is_two_campaigns(
    engine: Engine,
    tenant_a: int,
    tenant_b: int,
    add_segments: Callable[..., None],
    folder: CampaignFolder,
) -> None:
    add_segments(tenant_a)
    add_segments(tenant_b)
    loaded = folder.read()
    with tenant_session(engine, tenant_a) as session:
        in_a = store_campaign(session, loaded, now=utcnow())
    with tenant_session(engine, tenant_b) as session:
        in_b = store_campaign(session, loaded, now=utcnow())

    assert in_b.created is True  # the same content in A does not make B's load a no-op
    assert in_b.version.number == 1
    assert in_a.campaign.id != in_b.campaign.id
    assert in_a.version.id != in_b.version.id
    with tenant_session(engine, tenant_a) as session:
        campaign = get_campaign(session, "cloud-security")
        assert (campaign.id, campaign.tenant_id) == (in_a.campaign.id, tenant_a)
        assert [c.id for c in list_campaigns(session)] == [in_a.campaign.id]
        assert {t.tenant_id for t in session.exec(select(Touch)).all()} == {tenant_a}


def test_a_tenant_never_sees_another_tenants_campaign(
    engine: Engine,
    tenant_a: int,
    tenant_b: int,
    add_segments: Callable[..., None],
    folder: CampaignFolder,
) -> None:
    add_segments(tenant_b)
    with tenant_session(engine, tenant_b) as session:
        in_b = store_campaign(session, folder.read(), now=utcnow())

    with tenant_session(engine, tenant_a) as session:
        with pytest.raises(NotFound, match="no campaign 'cloud-security'"):
            get_campaign(session, "cloud-security")
        assert session.get(Campaign, in_b.campaign.id) is None
        assert session.get(CampaignVersion, in_b.version.id) is None
        assert session.exec(select(Campaign).where(Campaign.id == in_b.campaign.id)).all() == []
        assert list_campaigns(session) == []


def test_storing_needs_a_tenant_scope(engine: Engine, folder: CampaignFolder) -> None:
    with pytest.raises(TenantScopeError), plain_session(engine) as session:
        store_campaign(session, folder.read(), now=utcnow())
