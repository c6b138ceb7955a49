"""Who sees what at the concierge dashboard, over real HTTP through the engine's server:
another tenant's ids and an uncovered partner's are not found, a vendor marketer reads but
may not act (403), a form without its CSRF token is refused (403)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import Engine
from support.browser import LiveServer
from support.dashboard_world import COOKIE, DashboardWorld, build_dashboard_world

from partnercast.campaigns.enrollment import find_enrollment
from partnercast.concierge.models import ConciergeTask
from partnercast.core.tenancy import tenant_session
from partnercast.demo.smtp_sink import SmtpSink


@pytest.fixture
def desk(engine: Engine, tmp_path: Path, sink: SmtpSink) -> DashboardWorld:
    return build_dashboard_world(engine, tmp_path, sink.port)


class Client:
    """One browser's requests to the live server (its session cookie; no redirects followed)."""

    def __init__(self, base: str, cookie: str | None) -> None:
        self.base, self.http = base, requests.Session()
        if cookie:
            self.http.cookies.set(COOKIE, cookie)

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, allow_redirects=False, timeout=60)

    def post(self, path: str, data: dict[str, str]) -> requests.Response:
        return self.http.post(self.base + path, data=data, allow_redirects=False, timeout=60)


@pytest.fixture
def clients(live_server: LiveServer, desk: DashboardWorld) -> Iterator[dict[str, Client]]:
    made = {who: Client(live_server.url, value) for who, value in desk.cookies.items()}
    made["nobody"] = Client(live_server.url, None)
    yield made
    for client in made.values():
        client.http.close()


def _token(client: Client, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "no CSRF field on " + path
    return found.group(1)


def _enrollment(desk: DashboardWorld, vendor: str, partner: str) -> int:
    world = getattr(desk, vendor).world
    with tenant_session(world.engine, world.tenant_id) as session:
        return find_enrollment(session, "cloud-security", partner).id or 0


def _task(desk: DashboardWorld, vendor: str, partner: str) -> ConciergeTask:
    world = getattr(desk, vendor).world
    with tenant_session(world.engine, world.tenant_id) as session:
        task = session.get(ConciergeTask, getattr(desk, vendor).tasks[partner])
        assert task is not None
        return task


def test_every_page_answers_a_concierge_for_their_own_tenant(clients, desk) -> None:
    anna = clients["anna"]
    north = desk.north
    home = anna.get("/dashboard")
    assert home.status_code == 303 and home.headers["location"] == "/dashboard/northwind/approvals"
    for path in (
        "approvals",
        "partners",
        "tasks",
        "capacity",
        f"partners/{north.partners[north.covered[0]]}",
    ):
        answer = anna.get(f"/dashboard/northwind/{path}")
        assert answer.status_code == 200, (path, answer.text[:500])
    queue = anna.get("/dashboard/northwind/approvals").text
    for partner in north.covered:
        assert partner in queue
    for partner in north.uncovered:  # Ben's partners are not Anna's to see
        assert partner not in queue
    assert clients["nobody"].get("/dashboard/northwind/approvals").status_code == 303


def test_another_tenants_ids_are_not_found(clients, desk) -> None:
    anna, south = clients["anna"], desk.south
    token = _token(anna, "/dashboard/northwind/tasks")
    assert anna.get("/dashboard/southwind/approvals").status_code == 404
    assert anna.get("/dashboard/southwind").status_code == 404
    their_partner = south.partners[south.covered[0]]
    assert anna.get(f"/dashboard/northwind/partners/{their_partner}").status_code == 404
    their_task = south.tasks[south.covered[0]]
    for action in ("close", "note", "assign"):
        answer = anna.post(
            f"/dashboard/northwind/tasks/{their_task}/{action}",
            data={"csrf_token": token, "text": "x", "concierge": "1"},
        )
        assert answer.status_code == 404, action
    their_enrollment = _enrollment(desk, "south", south.covered[0])
    for action in ("remind", "decide"):
        answer = anna.post(
            f"/dashboard/northwind/approvals/{their_enrollment}/{action}",
            data={"csrf_token": token, "decision": "approve", "reason": "r"},
        )
        assert answer.status_code == 404, action
    assert _task(desk, "south", south.covered[0]).status == "open"
    mine = desk.north.tasks[desk.north.covered[0]]
    their_concierge = south.concierges["Sara"]
    answer = anna.post(
        f"/dashboard/northwind/tasks/{mine}/assign",
        data={"csrf_token": token, "concierge": str(their_concierge)},
    )
    assert answer.status_code == 404
    assert _task(desk, "north", desk.north.covered[0]).owner_id != their_concierge
    # The admin moves between both tenants.
    admin = clients["admin"]
    assert admin.get("/dashboard/southwind/approvals").status_code == 200
    assert admin.get("/dashboard/northwind/approvals").status_code == 200


def test_an_uncovered_partner_is_not_found(clients, desk) -> None:
    anna, north = clients["anna"], desk.north
    token = _token(anna, "/dashboard/northwind/tasks")
    bens = north.uncovered[0]
    assert anna.get(f"/dashboard/northwind/partners/{north.partners[bens]}").status_code == 404
    answer = anna.post(
        f"/dashboard/northwind/tasks/{north.tasks[bens]}/close", data={"csrf_token": token}
    )
    assert answer.status_code == 404
    answer = anna.post(
        f"/dashboard/northwind/approvals/{_enrollment(desk, 'north', bens)}/decide",
        data={"csrf_token": token, "decision": "decline", "reason": "not mine"},
    )
    assert answer.status_code == 404
    assert _task(desk, "north", bens).status == "open"
    tasks_page = anna.get("/dashboard/northwind/tasks").text
    assert f"task-{north.tasks[bens]}" not in tasks_page
    assert f"task-{north.tasks[north.covered[0]]}" in tasks_page


def test_a_vendor_marketer_reads_but_may_not_close_a_task(clients, desk) -> None:
    marketer, north = clients["marketer"], desk.north
    page = marketer.get("/dashboard/northwind/tasks")
    assert page.status_code == 200
    assert "Close as done" not in page.text  # read-only: no forms for concierge work
    queue = marketer.get("/dashboard/northwind/approvals").text
    assert "Send reminder" not in queue and "Record decision" not in queue
    assert all(partner in queue for partner in north.partners)  # the whole tenant, read-only
    token = _token(marketer, "/dashboard/northwind/approvals")
    task = north.tasks[north.covered[0]]
    answer = marketer.post(f"/dashboard/northwind/tasks/{task}/close", data={"csrf_token": token})
    assert answer.status_code == 403
    assert _task(desk, "north", north.covered[0]).status == "open"
    enrollment = _enrollment(desk, "north", north.covered[0])
    answer = marketer.post(
        f"/dashboard/northwind/approvals/{enrollment}/decide",
        data={"csrf_token": token, "decision": "approve", "reason": "because"},
    )
    assert answer.status_code == 403


def test_a_partner_user_has_no_dashboard(clients) -> None:
    assert clients["partner"].get("/dashboard/northwind/approvals").status_code == 404
    assert clients["partner"].get("/dashboard").status_code == 404


def test_a_form_without_its_csrf_token_is_refused(clients, desk) -> None:
    anna, north = clients["anna"], desk.north
    task = north.tasks[north.covered[0]]
    assert anna.post(f"/dashboard/northwind/tasks/{task}/close", data={}).status_code == 403
    other = _token(clients["admin"], "/dashboard/northwind/tasks")  # another session's
    answer = anna.post(f"/dashboard/northwind/tasks/{task}/close", data={"csrf_token": other})
    assert answer.status_code == 403
    assert _task(desk, "north", north.covered[0]).status == "open"
    token = _token(anna, "/dashboard/northwind/tasks")
    answer = anna.post(f"/dashboard/northwind/tasks/{task}/close", data={"csrf_token": token})
    assert answer.status_code == 303
    assert _task(desk, "north", north.covered[0]).status == "done"


def test_a_decision_on_behalf_needs_a_reason_and_is_recorded(clients, desk) -> None:
    from partnercast.campaigns.decisions import records_for

    anna, north = clients["anna"], desk.north
    token = _token(anna, "/dashboard/northwind/approvals")
    enrollment = _enrollment(desk, "north", north.covered[0])
    path = f"/dashboard/northwind/approvals/{enrollment}/decide"
    refused = anna.post(path, data={"csrf_token": token, "decision": "approve", "reason": " "})
    assert refused.status_code == 422 and "Give a reason: the partner sees it." in refused.text
    done = anna.post(
        path, data={"csrf_token": token, "decision": "approve", "reason": "approved by phone"}
    )
    assert done.status_code == 303
    world = north.world
    with tenant_session(world.engine, world.tenant_id) as session:
        (record,) = records_for(session, [enrollment])
    assert record.on_behalf and record.reason == "approved by phone"
    assert record.actor_label == "anna@agency.example.com" and record.state_after == "approved"
    assert north.covered[0] not in anna.get("/dashboard/northwind/approvals").text


def test_a_reminder_mails_the_point_of_contact_in_their_language_and_is_recorded(
    clients, desk, sink
) -> None:
    from sqlmodel import select

    from partnercast.core.models import Event
    from partnercast.tenants.models import Partner

    anna, north = clients["anna"], desk.north
    partner_key = north.covered[2]  # still invited
    world = north.world
    with tenant_session(world.engine, world.tenant_id) as session:
        partner = session.get(Partner, north.partners[partner_key])
        assert partner is not None
        partner.languages = ["de_CH"]
        session.add(partner)
        contact = partner.contact_email
    enrollment = _enrollment(desk, "north", partner_key)
    token = _token(anna, "/dashboard/northwind/approvals")
    answer = anna.post(
        f"/dashboard/northwind/approvals/{enrollment}/remind", data={"csrf_token": token}
    )
    assert answer.status_code == 303
    (message,) = [m for m in sink.received.messages if m["To"] == contact]
    assert "wartet" in message["Subject"]  # German, from the dashboard catalogue
    body = message.get_body(("plain",)).get_content()
    assert "Nichts wird in Ihrem Namen versendet" in body and "/portal/northwind" in body
    assert '<html lang="de">' in message.get_body(("html",)).get_content()
    with tenant_session(world.engine, world.tenant_id) as session:
        (event,) = session.exec(select(Event).where(Event.kind == "enrollment.reminded")).all()
    assert event.enrollment_id == enrollment and event.data["to"] == contact
    assert event.source == "anna@agency.example.com"
    queue = anna.get("/dashboard/northwind/approvals?reminded=1").text
    assert "Reminder sent and recorded." in queue and "1 time," in queue


def test_a_german_concierge_reads_the_dashboard_in_german(clients, desk) -> None:
    from partnercast.core.tenancy import plain_session
    from partnercast.tenants.users import find_user

    with plain_session(desk.engine) as session:
        user = find_user(session, "anna@agency.example.com")
        assert user is not None
        user.locale = "de_DE"
        session.add(user)
    for path in ("approvals", "tasks", "capacity", "partners"):
        page = clients["anna"].get(f"/dashboard/northwind/{path}").text
        assert '<html lang="de">' in page
        for english in ("Send reminder", "Close as done", "Proposed balance", "Every state"):
            assert english not in page
    assert "Erinnerung senden" in clients["anna"].get("/dashboard/northwind/approvals").text


def test_inviting_a_partner_mails_its_contact_and_shows_who_accepted(clients, desk, sink) -> None:
    from partnercast.core.tenancy import plain_session
    from partnercast.tenants.models import Partner
    from partnercast.tenants.users import find_user, mark_signed_in

    anna, north = clients["anna"], desk.north
    partner_id = north.partners[north.covered[1]]
    world = north.world
    with tenant_session(world.engine, world.tenant_id) as session:
        partner = session.get(Partner, partner_id)
        assert partner is not None
        contact = partner.contact_email
    path = f"/dashboard/northwind/partners/{partner_id}"
    token = _token(anna, path)
    assert anna.post(path + "/invite", data={"csrf_token": token}).status_code == 303
    assert [m for m in sink.received.messages if m["To"] == contact]
    page = anna.get(path).text
    assert contact in page and "not accepted yet" in page
    with plain_session(desk.engine) as session:
        user = find_user(session, contact)
        assert user is not None
        mark_signed_in(session, user, now=user.created_at)
    assert "accepted on" in anna.get(path).text
    marketer = clients["marketer"]
    answer = marketer.post(path + "/invite", data={"csrf_token": _token(marketer, path)})
    assert answer.status_code == 403


def test_a_proposed_capacity_move_is_applied_alone(clients, desk) -> None:
    from partnercast.concierge import capacity

    anna, north = clients["anna"], desk.north
    world = north.world
    with tenant_session(world.engine, world.tenant_id) as session:
        proposal = capacity.propose_balance(session)
    mine = [m for m in proposal.moves if m.partner in north.covered]
    assert mine, "the world's balance moves one of Anna's partners"
    move = mine[0]
    page = anna.get("/dashboard/northwind/capacity").text
    assert f"/capacity/moves/{move.partner_id}" in page
    others = [m for m in proposal.moves if m.partner not in north.covered]
    assert ("you do not cover" in page) == bool(others)  # counted, not shown
    assert all(f"/capacity/moves/{m.partner_id}" not in page for m in others)
    token = _token(anna, "/dashboard/northwind/capacity")
    answer = clients["marketer"].post(
        f"/dashboard/northwind/capacity/moves/{move.partner_id}",
        data={"csrf_token": _token(clients["marketer"], "/dashboard/northwind/capacity")},
    )
    assert answer.status_code == 403
    answer = anna.post(
        f"/dashboard/northwind/capacity/moves/{move.partner_id}", data={"csrf_token": token}
    )
    assert answer.status_code == 303
    with tenant_session(world.engine, world.tenant_id) as session:
        assigned = capacity.assignments(session)[move.partner_id]
        again = capacity.propose_balance(session)
    assert assigned.concierge_id == move.to_id and assigned.language == move.language
    assert move.partner_id not in {m.partner_id for m in again.moves}
    assert "The partner was moved." in anna.get(answer.headers["location"]).text
    # The partner is Ben's now: no longer Anna's to see, move or open.
    stale = anna.post(
        f"/dashboard/northwind/capacity/moves/{move.partner_id}", data={"csrf_token": token}
    )
    assert stale.status_code == 404
    admin = clients["admin"]
    stale = admin.post(
        f"/dashboard/northwind/capacity/moves/{move.partner_id}",
        data={"csrf_token": _token(admin, "/dashboard/northwind/capacity")},
    )
    assert stale.status_code == 303  # the admin sees it, but the move is not proposed now
    assert "no longer proposed" in admin.get(stale.headers["location"]).text
    south_partner = desk.south.partners[desk.south.covered[0]]
    answer = anna.post(
        f"/dashboard/northwind/capacity/moves/{south_partner}", data={"csrf_token": token}
    )
    assert answer.status_code == 404


def test_a_long_queue_shows_the_longest_waiting_first_and_says_so(clients, monkeypatch) -> None:
    from partnercast.web import dashboard, dashboard_views

    monkeypatch.setattr(dashboard_views, "SHOWN", 2)
    monkeypatch.setattr(dashboard, "SHOWN", 2)
    queue = clients["admin"].get("/dashboard/northwind/approvals").text
    assert queue.count('id="enrollment-') == 2
    assert "6 enrollments are waiting" in queue and "The 2 longest waiting are shown" in queue
    tasks_page = clients["admin"].get("/dashboard/northwind/tasks").text
    assert tasks_page.count('<tr id="task-') == 2
    assert "The 2 earliest due of 6 open tasks are shown" in tasks_page
