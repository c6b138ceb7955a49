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
from sqlmodel import col, select
from support.browser import LiveServer
from support.portal_world import DIGITAL_KEY, EMAIL_KEY, PortalWorld, build_portal_world

from partnercast.campaigns import approval
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


@pytest.fixture
def vendor_b(engine: Engine, tmp_path: Path, sink: SmtpSink, portal: PortalWorld) -> PortalWorld:
    """A second tenant with the same partner ids and campaigns."""
    return build_portal_world(engine, tmp_path / "b", sink.port, slug="vendor-b")


def _paths(eid: int) -> list[tuple[str, str]]:
    base = f"/portal/{{slug}}/campaigns/{eid}"
    return [("GET", base), ("POST", base + "/preview"), ("POST", base + "/decide")]


def test_another_partners_and_another_tenants_ids_are_not_found(
    browsers, portal: PortalWorld, vendor_b: PortalWorld
) -> None:
    ann = browsers["p1"]
    token = ann.form("/portal/northwind")["csrf_token"]
    own = portal.enrollment_id(EMAIL_KEY, "P001")
    others = {
        "partner Q's": portal.enrollment_id(EMAIL_KEY, "P002"),
        "tenant B's": vendor_b.enrollment_id(EMAIL_KEY, "P001"),
        "none": 999_999,
    }
    for what, eid in others.items():
        for method, path in _paths(eid):
            url = path.format(slug="northwind")
            if method == "GET":
                answer = ann.get(url)
            else:
                answer = ann.post(url, {"csrf_token": token, "act": "approve"})
            assert answer.status_code == 404, (what, url, answer.status_code)
    for path in ("", "/accounts", "/results", f"/campaigns/{own}"):
        assert ann.get(f"/portal/vendor-b{path}").status_code == 404, path
    assert ann.get(f"/portal/northwind/campaigns/{own}").status_code == 200
    with tenant_session(portal.engine, portal.tenant_id) as session:
        assert session.exec(select(ApprovalRecord)).all() == []


def test_a_form_without_its_csrf_token_is_refused(browsers, portal: PortalWorld) -> None:
    eid = portal.enrollment_id(EMAIL_KEY, "P001")
    answer = browsers["p1"].post(f"/portal/northwind/campaigns/{eid}/decide", {"act": "decline"})
    assert answer.status_code == 403
    with tenant_session(portal.engine, portal.tenant_id) as session:
        assert find_enrollment(session, EMAIL_KEY, "P001").state == "invited"


def test_a_decision_on_content_changed_since_the_page_was_shown_is_refused(
    browsers, portal: PortalWorld, cli
) -> None:
    ann = browsers["p1"]
    eid = portal.enrollment_id(EMAIL_KEY, "P001")
    path = f"/portal/northwind/campaigns/{eid}"
    hidden = ann.form(path)
    # Meanwhile, someone at the agency changes the partner's words.
    cli("customise", EMAIL_KEY, "P001", "--tenant", "northwind", "--set", "signature_line=Z")
    answer = ann.post(path + "/decide", {**hidden, "act": "approve"})
    assert answer.status_code == 409
    assert "look at it again" in answer.text
    with tenant_session(portal.engine, portal.tenant_id) as session:
        assert find_enrollment(session, EMAIL_KEY, "P001").state == "customising"
        assert session.exec(select(ApprovalRecord)).all() == []


def test_a_decision_on_the_partners_behalf_shows_in_their_portal(
    browsers, portal: PortalWorld, cli
) -> None:
    cli("customise", EMAIL_KEY, "P001", "--tenant", "northwind", "--set", "signature_line=A")
    cli("submit", EMAIL_KEY, "P001", "--tenant", "northwind")
    cli("approve", EMAIL_KEY, "P001", "--tenant", "northwind", "--reason", "agreed by phone")
    home = browsers["p1"].get("/portal/northwind").text
    assert "Decided on your behalf" in home and "agreed by phone" in home
    assert "agreed by phone" not in browsers["p2"].get("/portal/northwind").text


def test_declining_one_touch_and_german_pages(browsers, portal: PortalWorld) -> None:
    bob = browsers["p2"]  # a German partner user
    eid = portal.enrollment_id(DIGITAL_KEY, "P002")
    path = f"/portal/northwind/campaigns/{eid}"
    page = bob.get(path)
    assert 'lang="de"' in page.text and "Speichern und freigeben" in page.text
    assert "Save and approve" not in page.text and "Decline this touch" not in page.text
    hidden = bob.form(path)
    live = bob.post(path + "/preview", {**hidden, "page_headline": "x" * 120})
    assert "zu lang (120 Zeichen, höchstens 100)" in live.text
    hidden = {**hidden, **dict(HIDDEN.findall(bob.get(path).text))}
    done = bob.post(path + "/decide", {**hidden, "act": "decline@launch-x"})
    assert done.status_code == 303, done.text[:2000]
    with tenant_session(portal.engine, portal.tenant_id) as session:
        enrollment = find_enrollment(session, DIGITAL_KEY, "P002")
        assert enrollment.declined_touches == ["launch-x"]
        (record,) = session.exec(select(ApprovalRecord)).all()
    assert record.touch_key == "launch-x" and record.decision == "decline"
    assert record.content_fingerprint == hidden["content@launch-x"]
    assert "Von Ihnen abgelehnt" in bob.get(path).text


def test_accounts_never_show_a_secret_back(browsers, portal: PortalWorld) -> None:
    ann = browsers["p1"]
    token = ann.form("/portal/northwind/accounts")["csrf_token"]
    answer = ann.post(
        "/portal/northwind/accounts/linkedin",
        {
            "csrf_token": token,
            "access_token": "li-secret-token-123",
            "author_urn": "urn:li:person:abc123",
        },
    )
    assert answer.status_code == 303, answer.text[:2000]
    page = ann.get("/portal/northwind/accounts").text
    assert "li-secret-token-123" not in page and "urn:li:person:abc123" in page
    assert "The access token is valid until" in page
    bad = ann.post("/portal/northwind/accounts/x", {"csrf_token": token, "consumer_key": ""})
    assert bad.status_code == 422
    assert ann.post("/portal/northwind/accounts/nope", {"csrf_token": token}).status_code == 404


def test_results_are_the_partners_own(browsers, portal: PortalWorld) -> None:
    from partnercast.funnel.leads import Lead

    now = utcnow()
    with tenant_session(portal.engine, portal.tenant_id) as session:
        for external_id, name in (("P001", "Lena Own"), ("P002", "Otto Other")):
            session.add(
                Lead(
                    partner_id=portal.partner_id(external_id),
                    email=f"{name.split()[0].lower()}@example.com",
                    name=name,
                    created_at=now,
                    stage_changed_at=now,
                )
            )
    page = browsers["p1"].get("/portal/northwind/results")
    assert page.status_code == 200, page.text[:2000]
    assert "Lena Own" in page.text and "Otto Other" not in page.text
    assert "20" in page.text  # the return against the 20x target


def test_content_changed_after_the_portal_approval_is_not_sent_under_it(
    browsers, portal: PortalWorld, sink: SmtpSink
) -> None:
    """Approved in the portal; then the words change without a new approval (a hand edit
    of the stored customisation): the tick sends nothing of that partner's, and the
    record still holds the fingerprint of what was approved."""
    from support.world import run_days, start

    ann = browsers["p1"]
    eid = portal.enrollment_id(EMAIL_KEY, "P001")
    path = f"/portal/northwind/campaigns/{eid}"
    hidden = ann.form(path)
    typed = {**hidden, "signature_line": "Ann"}
    shown = dict(HIDDEN.findall(ann.post(path + "/preview", typed).text))
    done = ann.post(path + "/decide", {**typed, **shown, "act": "approve"})
    assert done.status_code == 303, done.text[:2000]
    with tenant_session(portal.engine, portal.tenant_id) as session:
        enrollment = find_enrollment(session, EMAIL_KEY, "P001")
        (record,) = session.exec(select(ApprovalRecord)).all()
        assert record.fingerprint == enrollment.approved_fingerprint
        enrollment.customization = {**enrollment.customization, "signature_line": "Not Ann"}
        session.add(enrollment)
    start(portal.world)
    run_days(portal.world, 0, 2)
    assert sink.received.count == 0  # P001 was the only partner that approved
    with tenant_session(portal.engine, portal.tenant_id) as session:
        from partnercast.core.models import Dispatch

        mine = session.exec(select(Dispatch).where(Dispatch.enrollment_id == eid)).all()
    assert mine and all(d.sent_count == 0 for d in mine)
    assert any(d.held_for == "approval" for d in mine)


def test_auto_approval_and_changes_to_one_touch(browsers, portal: PortalWorld) -> None:
    ann = browsers["p1"]
    eid = portal.enrollment_id(EMAIL_KEY, "P001")
    path = f"/portal/northwind/campaigns/{eid}"
    hidden = ann.form(path)
    asked = ann.post(
        path + "/decide",
        {**hidden, "act": "request_changes@follow-up", "note": "Our event date, please"},
    )
    assert asked.status_code == 303, asked.text[:2000]
    with tenant_session(portal.engine, portal.tenant_id) as session:
        assert find_enrollment(session, EMAIL_KEY, "P001").state == "changes_requested"
    hidden = ann.form(path)
    typed = {**hidden, "signature_line": "Ann"}
    shown = dict(HIDDEN.findall(ann.post(path + "/preview", typed).text))
    auto = ann.post(path + "/decide", {**typed, **shown, "act": "auto_approve"})
    assert auto.status_code == 303, auto.text[:2000]
    with tenant_session(portal.engine, portal.tenant_id) as session:
        enrollment = find_enrollment(session, EMAIL_KEY, "P001")
        records = session.exec(select(ApprovalRecord).order_by(col(ApprovalRecord.id))).all()
    assert enrollment.auto_approve and enrollment.customization["signature_line"] == "Ann"
    assert approval.is_approved_as_is(enrollment)  # what the partner saw, approved
    assert [(r.decision, r.touch_key, r.note) for r in records] == [
        ("request_changes", "follow-up", "Our event date, please"),
        ("auto_approve", None, "auto-approval on"),
    ]
    assert "auto-approval on" in ann.get(path).text
