"""The microsite channel: the conformance kit, its own rules, and a page published in a cycle."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select
from support.microsite_site import Site, approve
from support.world import START

from partnercast.campaigns.cycles import start_cycle
from partnercast.campaigns.store import get_campaign
from partnercast.campaigns.ticking import tick
from partnercast.channels.microsite.channel import MicrositeAccount, MicrositeChannel
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core.models import Dispatch
from partnercast.core.settings import load_settings
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.plugins import PermanentError, RenderRequest
from partnercast.plugins.testing import ChannelCase, ChannelConformance, simple_request

BODY = "<h1>Secure your cloud</h1><!-- partnercast:lead-form --><p>Legal</p>"


def _request(content: Mapping[str, Any], body: str = BODY) -> RenderRequest:
    request = simple_request("microsite", content, body)
    return replace(request, tenant_key="north wind", partner_external_id="P/1", campaign_key="c")


class TestMicrositeConformance(ChannelConformance):
    case = ChannelCase(
        channel=MicrositeChannel,
        good_settings={"base_url": "https://engine.example"},
        bad_settings={"not-a-url": {"base_url": "engine.example"}, "empty": {"base_url": ""}},
        good_content={"title": "Secure your cloud"},
        bad_content={"empty-title": {"title": ""}, "unknown-key": {"subtitle": "x"}},
        render_request=_request,
    )


def _draft(body: str = BODY, **content: str):
    return MicrositeChannel().render(_request({"title": "A page", **content}, body))


def test_publish_returns_the_stable_url_every_time() -> None:
    channel, draft = MicrositeChannel(), _draft()
    account = MicrositeAccount(base_url="https://engine.example/")
    first = channel.publish(draft, account, idempotency_key="k")
    again = channel.publish(draft, account, idempotency_key="k")
    assert (
        first.external_ids
        == again.external_ids
        == ["https://engine.example/p/north%20wind/P%2F1/c/"]
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("<script>alert(1)</script>", "landing pages run no scripts"),
        ('<img src=x onerror="alert(1)">', "landing pages run no scripts"),
        ("   ", "the page is empty"),
    ],
    ids=["script-tag", "event-handler", "empty"],
)
def test_validate_flags_what_the_page_must_not_be(body: str, problem: str) -> None:
    problems = MicrositeChannel().validate(_draft(body))
    assert any(problem in p for p in problems)


def test_a_draft_without_its_address_cannot_be_published() -> None:
    draft = MicrositeChannel().render(simple_request("microsite", {"title": "t"}, BODY))
    assert "which tenant, partner and campaign" in " ".join(MicrositeChannel().validate(draft))
    with pytest.raises(PermanentError):
        MicrositeChannel().publish(
            draft, MicrositeAccount(base_url="http://e"), idempotency_key="k"
        )


def test_the_account_defaults_to_the_engines_public_url() -> None:
    settings = load_settings(public_base_url="https://engine.example")
    account = MicrositeChannel(settings).account_for({})
    assert account == MicrositeAccount(base_url="https://engine.example")


def test_a_cycle_publishes_the_page_and_records_its_url(site: Site) -> None:
    approve(site.a, "P001")
    with tenant_session(site.a.engine, site.a.tenant_id) as session:
        start_cycle(session, get_campaign(session, "cloud-security"), START, now=utcnow())
    tick(
        site.a.engine, site.a.settings, START + timedelta(days=1, hours=1), after=[scan_after_tick]
    )
    with tenant_session(site.a.engine, site.a.tenant_id) as session:
        dispatches = session.exec(select(Dispatch).where(Dispatch.channel == "microsite")).all()
    [dispatch] = [d for d in dispatches if d.state != "pending"]  # the others wait for approval
    assert dispatch.state == "done", dispatch.last_error
    url = site.url("northwind", "P001")
    assert dispatch.external_ids == [url]
    assert site.http.get(url, timeout=5).status_code == 200
