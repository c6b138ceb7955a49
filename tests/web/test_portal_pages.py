"""The partner portal over real HTTP through the engine's server: the pages, the live
preview, decisions with their evidence, accounts, results; another partner's and another
tenant's ids are not found."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import Engine
from sqlmodel import select
from support.browser import LiveServer
from support.portal_world import DIGITAL_KEY, PortalWorld, build_portal_world

from partnercast.campaigns.enrollment import find_enrollment
from partnercast.campaigns.models import ApprovalRecord
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.web.sessions import COOKIE, open_session

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


class Browser:
    """One signed-in browser's requests (its cookie; redirects not followed)."""

    def __init__(self, base: str, cookie: str | None) -> None:
        self.base, self.http = base, requests.Session()
        self.http.headers["User-Agent"] = "PortalTest/1.0"
        if cookie:
            self.http.cookies.set(COOKIE, cookie)

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, allow_redirects=False, timeout=120)

    def post(self, path: str, data: dict[str, str], **headers: str) -> requests.Response:
        return self.http.post(
            self.base + path, data=data, headers=headers, allow_redirects=False, timeout=120
        )

    def form(self, path: str) -> dict[str, str]:
        """The page's hidden fields (the CSRF token, fingerprints) as a form posts them."""
        page = self.get(path)
        assert page.status_code == 200, page.text[:2000]
        return dict(HIDDEN.findall(page.text))


@pytest.fixture
def portal(engine: Engine, tmp_path: Path, sink: SmtpSink) -> PortalWorld:
    return build_portal_world(engine, tmp_path / "a", sink.port)


@pytest.fixture
def browsers(live_server: LiveServer, portal: PortalWorld) -> Iterator[dict[str, Browser]]:
    users = {
        "p1": portal.partner_user("P001", "ann@p001.example"),
        "p2": portal.partner_user("P002", "bob@p002.example", locale="de"),
    }
    made = {
        who: Browser(live_server.url, open_session(portal.engine, user, now=utcnow()))
        for who, user in users.items()
    }
    made["nobody"] = Browser(live_server.url, None)
    yield made
    for each in made.values():
        each.http.close()


def test_home_lists_the_offered_campaigns(browsers, portal: PortalWorld) -> None:
    page = browsers["p1"].get("/portal/northwind")
    assert page.status_code == 200, page.text[:3000]
    assert "Secure your hybrid cloud in 45 days" in page.text
    assert "Be found where your customers look" in page.text
    assert browsers["nobody"].get("/portal/northwind").status_code == 303


def test_customise_preview_and_approve_with_evidence(browsers, portal: PortalWorld) -> None:
    ann = browsers["p1"]
    eid = portal.enrollment_id(DIGITAL_KEY, "P001")
    path = f"/portal/northwind/campaigns/{eid}"
    page = ann.get(path)
    assert page.status_code == 200, page.text[:3000]
    hidden = ann.form(path)
    typed = {"social_post": "We watch your cloud, day and night.", "signature_line": "Ann"}
    live = ann.post(path + "/preview", {**hidden, **typed}, **{"HX-Request": "true"})
    assert live.status_code == 200, live.text[:3000]
    assert "We watch your cloud, day and night." in live.text
    content = dict(HIDDEN.findall(live.text))
    done = ann.post(path + "/decide", {**hidden, **content, **typed, "act": "approve"})
    assert done.status_code == 303, done.text[:3000]
    with tenant_session(portal.engine, portal.tenant_id) as session:
        enrollment = find_enrollment(session, DIGITAL_KEY, "P001")
        assert enrollment.state == "approved"
        assert enrollment.customization["social_post"] == typed["social_post"]
        (record,) = session.exec(select(ApprovalRecord)).all()
    assert record.actor_label == "ann@p001.example" and not record.on_behalf
    assert record.user_agent == "PortalTest/1.0" and record.client_address == "127.0.0.1"
    assert record.fingerprint and record.content_fingerprint == content["content"]
