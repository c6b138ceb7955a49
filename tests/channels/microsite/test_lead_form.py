"""The lead form over HTTP: one accepted lead, and each way a form is refused (one row each)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
import time_machine
from sqlmodel import select
from support.microsite_site import Site, approve

from partnercast.campaigns.cycles import start_cycle
from partnercast.campaigns.models import Cycle, Touch
from partnercast.campaigns.store import get_campaign
from partnercast.channels.microsite.leadform import PAGE_PURPOSE
from partnercast.core.models import Event
from partnercast.core.signing import sign
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.funnel.leads import Lead

PAGE = "/p/northwind/P001/cloud-security/"


def _fields(site: Site, **overrides: str) -> dict[str, str]:
    fields = {
        "token": site.token("northwind", "P001"),
        "email": "dana@customer.example",
        "name": "Dana Smith",
        "company": "Customer Ltd",
        "message": "Please call me.",
        "consent": "yes",
        "website": "",
    }
    fields.update(overrides)
    return {key: value for key, value in fields.items() if value is not None}


def _rows(world, model) -> list:
    with tenant_session(world.engine, world.tenant_id) as session:
        return list(session.exec(select(model)).all())


def _forms(world) -> list[Event]:
    return [event for event in _rows(world, Event) if event.kind == "form"]


def test_an_accepted_form_makes_one_lead_and_one_event_in_the_right_tenant(site: Site) -> None:
    approve(site.a, "P001")
    approve(site.b, "P001")
    with tenant_session(site.a.engine, site.a.tenant_id) as session:
        cycle = start_cycle(
            session,
            get_campaign(session, "cloud-security"),
            utcnow() - timedelta(days=2),
            now=utcnow(),
        )
    page = site.get("northwind", "P001", utm_source="email", utm_content="intro")
    assert 'name="utm_content" value="intro"' in page.text  # carried in a hidden field
    token = site.token("northwind", "P001")
    fields = _fields(site, token=token, utm_source="email", utm_content="intro")
    sent = site.post_lead("northwind", "P001", fields, allow_redirects=False)
    assert sent.status_code == 303
    assert sent.headers["Location"] == f"{PAGE}thanks?lang=en"
    thanks = site.http.get(site.base + sent.headers["Location"], timeout=5)
    assert thanks.status_code == 200 and "Thank you" in thanks.text
    [lead] = _rows(site.a, Lead)
    assert (lead.email, lead.name, lead.company) == (
        "dana@customer.example",
        "Dana Smith",
        "Customer Ltd",
    )
    assert lead.stage == "lead" and lead.consent and "may contact me" in lead.consent_text
    assert lead.utm == {"utm_source": "email", "utm_content": "intro"}
    with tenant_session(site.a.engine, site.a.tenant_id) as session:
        touch = session.get(Touch, lead.touch_id)
        partner_cycle = session.get(Cycle, lead.cycle_id)
    assert touch.key == "intro" and partner_cycle.id == cycle.id
    [event] = _forms(site.a)
    assert event.partner_id == lead.partner_id and event.data["lead_id"] == lead.id
    assert _rows(site.b, Lead) == [] and _forms(site.b) == []


def test_without_utm_the_lead_is_the_landing_touchs(site: Site) -> None:
    approve(site.a, "P001")
    site.post_lead("northwind", "P001", _fields(site))
    [lead] = _rows(site.a, Lead)
    with tenant_session(site.a.engine, site.a.tenant_id) as session:
        assert session.get(Touch, lead.touch_id).key == "landing"
    assert lead.cycle_id is None  # no cycle running: not known, not guessed


def _expired_token(site: Site) -> str:
    with time_machine.travel(time.time() - 3 * 3600, tick=False):
        return sign(site.a.settings, PAGE_PURPOSE, PAGE, now=utcnow())  # as the page makes it


def _other_pages_token(site: Site) -> str:
    approve(site.a, "P005")
    return site.token("northwind", "P005")


def _exhaust_rate_limit(site: Site) -> str:
    for _ in range(5):
        site.post_lead("northwind", "P001", _fields(site, consent=None))
    return site.token("northwind", "P001")


@dataclass(frozen=True)
class Row:
    id: str
    status: int
    message: str
    overrides: dict[str, str | None]
    token: Callable[[Site], str] | None = None


ROWS = [
    Row("missing-consent", 422, "Please tick the box so that", {"consent": None}),
    Row("bad-email", 422, "Please enter a valid email address", {"email": "dana@@customer"}),
    Row("missing-name", 422, "Please fill in this field.", {"name": ""}),
    Row("too-long-message", 422, "under 4000 characters", {"message": "x" * 4001}),
    Row("honeypot-filled", 200, "Thank you", {"website": "http://spam.example"}),
    Row("forged-token", 400, "This form could not be checked", {"token": "forged.token"}),
    Row("missing-token", 400, "This form could not be checked", {"token": None}),
    Row("expired-token", 400, "This form has expired", {}, _expired_token),
    Row("other-pages-token", 400, "This form could not be checked", {}, _other_pages_token),
    Row("rate-limited", 429, "Too many attempts from your address", {}, _exhaust_rate_limit),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_a_refused_form_says_why_and_writes_no_lead(site: Site, row: Row) -> None:
    approve(site.a, "P001")
    overrides = dict(row.overrides)
    if row.token is not None:
        overrides["token"] = row.token(site)
    fields = _fields(site, **overrides)
    answer = site.post_lead("northwind", "P001", fields)
    assert answer.status_code == row.status
    assert row.message in answer.text
    assert _rows(site.a, Lead) == [] and _forms(site.a) == []
    if row.status != 200:  # the form comes back with what the visitor typed
        assert 'value="Dana Smith"' in answer.text or row.id == "missing-name"
        assert 'name="token" value="' in answer.text  # and a fresh token to send it again


def test_each_message_sits_next_to_its_field(site: Site) -> None:
    approve(site.a, "P001")
    answer = site.post_lead("northwind", "P001", _fields(site, email="nope", consent=None))
    assert answer.status_code == 422
    assert (
        'id="pc-email-error"' in answer.text and 'aria-describedby="pc-email-error"' in answer.text
    )
    assert 'id="pc-consent-error"' in answer.text
    assert 'id="pc-name-error"' not in answer.text


def test_form_inputs_come_back_escaped(site: Site) -> None:
    approve(site.a, "P001")
    attack = '"><script>alert(1)</script>'
    fields = _fields(site, name=attack, message=f"</textarea>{attack}", consent=None)
    answer = site.post_lead("northwind", "P001", fields)
    assert answer.status_code == 422
    assert "<script>" not in answer.text
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text


def test_a_form_for_an_unapproved_partner_is_404(site: Site) -> None:
    approve(site.a, "P001")
    fields = _fields(site)
    assert site.post_lead("northwind", "P002", fields).status_code == 404
    assert site.post_lead("southwind", "P001", fields).status_code == 404
    assert _rows(site.a, Lead) == [] and _rows(site.b, Lead) == []
