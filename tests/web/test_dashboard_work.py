"""What a concierge does at the dashboard beyond the first version, over real HTTP through
the engine's server: dismiss a task (not only close it as done), see the enrollments
waiting on the agency (changes requested) in their own section of the queue, decide one
touch on the partner's behalf, and read the capacity page's reasons in German."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import Engine
from support.browser import LiveServer
from support.dashboard_world import COOKIE, DashboardWorld, build_dashboard_world

from partnercast.campaigns import approval, decisions
from partnercast.campaigns.enrollment import find_enrollment
from partnercast.campaigns.models import Enrollment
from partnercast.concierge.models import ConciergeTask
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.tenants.users import find_user


@pytest.fixture
def desk(engine: Engine, tmp_path: Path, sink: SmtpSink) -> DashboardWorld:
    return build_dashboard_world(engine, tmp_path, sink.port)


class Client:
    """One browser's requests to the live server (its session cookie; no redirects followed)."""

    def __init__(self, base: str, cookie: str) -> None:
        self.base, self.http = base, requests.Session()
        self.http.cookies.set(COOKIE, cookie)

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, allow_redirects=False, timeout=60)

    def post(
        self, path: str, data: dict[str, str], headers: dict[str, str] | None = None
    ) -> requests.Response:
        return self.http.post(
            self.base + path, data=data, headers=headers, allow_redirects=False, timeout=60
        )

    def token(self, path: str) -> str:
        page = self.get(path)
        assert page.status_code == 200, page.text[:500]
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found, "no CSRF field on " + path
        return found.group(1)


@pytest.fixture
def clients(live_server: LiveServer, desk: DashboardWorld) -> Iterator[dict[str, Client]]:
    made = {who: Client(live_server.url, value) for who, value in desk.cookies.items()}
    yield made
    for client in made.values():
        client.http.close()


def _speaks(desk: DashboardWorld, email: str, locale: str) -> None:
    with plain_session(desk.engine) as session:
        user = find_user(session, email)
        assert user is not None
        user.locale = locale
        session.add(user)


def test_a_concierge_dismisses_a_task(clients, desk) -> None:
    anna, north = clients["anna"], desk.north
    task_id = north.tasks[north.covered[0]]
    path = "/dashboard/northwind/tasks"
    page = anna.get(path).text
    assert f"/tasks/{task_id}/close" in page and 'value="dismissed"' in page
    answer = anna.post(
        f"{path}/{task_id}/close",
        data={"csrf_token": anna.token(path), "status": "dismissed", "text": "not needed"},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200 and "Dismissed." in answer.text  # the row htmx swaps in
    world = north.world
    with tenant_session(world.engine, world.tenant_id) as session:
        task = session.get(ConciergeTask, task_id)
        assert task is not None
        assert task.status == "dismissed" and "not needed" in task.notes
    assert f'id="task-{task_id}"' not in anna.get(path).text  # no longer open
    other = north.tasks[north.covered[1]]
    refused = anna.post(
        f"{path}/{other}/close", data={"csrf_token": anna.token(path), "status": "forgotten"}
    )
    assert refused.status_code >= 400  # a task closes as done or dismissed, nothing else
    with tenant_session(world.engine, world.tenant_id) as session:
        still = session.get(ConciergeTask, other)
        assert still is not None and still.status == "open"
    _speaks(desk, "anna@agency.example.com", "fr_FR")
    assert "Écarter" in anna.get(path).text


def _enrollment(desk: DashboardWorld, partner: str) -> int:
    world = desk.north.world
    with tenant_session(world.engine, world.tenant_id) as session:
        return find_enrollment(session, "cloud-security", partner).id or 0


def _row(page: str, enrollment: int) -> str:
    found = re.search(rf'<tr id="enrollment-{enrollment}">.*?</tr>', page, re.S)
    assert found, f"no row of enrollment {enrollment}"
    return found.group(0)


def _section(page: str) -> str:
    found = re.search(r'<section id="waiting-for-us".*?</section>', page, re.S)
    assert found, "no 'Waiting for us' section"
    return found.group(0)


def test_partners_who_asked_for_changes_wait_for_us_in_their_own_section(clients, desk) -> None:
    anna, north = clients["anna"], desk.north
    path = "/dashboard/northwind/approvals"
    assert "No partner is waiting for changes from us." in _section(anna.get(path).text)
    world = north.world
    asked = {}
    for partner in (north.covered[0], north.uncovered[0]):  # Anna's and Ben's, both submitted
        asked[partner] = _enrollment(desk, partner)
        with tenant_session(world.engine, world.tenant_id) as session:
            enrollment = session.get(Enrollment, asked[partner])
            assert enrollment is not None
            if enrollment.state != "submitted":  # Ben's partner had not submitted yet
                approval.transition(
                    session, enrollment, "submit", actor="test", now=enrollment.state_changed_at
                )
            decisions.decide(
                session,
                enrollment,
                decisions.REQUEST_CHANGES,
                principal=decisions.cli_principal("test"),
                now=enrollment.state_changed_at,
                reason="the partner called",
                note="Use our new logo",
            )
    page = anna.get(path).text
    ours = _section(page)
    mine, bens = asked[north.covered[0]], asked[north.uncovered[0]]
    assert "1 partner asked for changes and waits for us." in ours
    assert "Use our new logo" in _row(ours, mine)
    assert f"enrollment-{bens}" not in page  # Ben's partner: not Anna's to see
    partners_table = page.split('<section id="waiting-for-us"')[0]
    assert f"enrollment-{mine}" not in partners_table  # no longer waiting for the partner
    assert "Record decision" in _row(ours, mine)  # decline on their behalf stays possible
    admin_ours = _section(clients["admin"].get(path).text)
    assert "2 partners asked for changes and wait for us." in admin_ours
    marketer_ours = _section(clients["marketer"].get(path).text)
    assert f"enrollment-{mine}" in marketer_ours and "Record decision" not in marketer_ours
    assert f"enrollment-{mine}" not in _section(anna.get(path + "?campaign=nothing-such").text)
    _speaks(desk, "anna@agency.example.com", "de_DE")
    assert "Wartet auf uns" in anna.get(path).text


def test_one_touch_is_decided_on_the_partners_behalf_with_a_reason(clients, desk) -> None:
    anna, north = clients["anna"], desk.north
    path = "/dashboard/northwind/approvals"
    enrollment = _enrollment(desk, north.covered[2])  # still invited
    row = _row(anna.get(path).text, enrollment)
    touches = re.findall(r'name="touch" value="([^"]+)"', row)
    assert len(touches) >= 2, row
    shown = re.search(r'name="shown" value="([^"]+)"', row)
    assert shown
    touch = touches[-1]
    decide = f"{path}/{enrollment}/decide"
    form = {"csrf_token": anna.token(path), "shown": shown.group(1), "touch": touch}
    refused = anna.post(decide, data={**form, "decision": "decline", "reason": " "})
    assert refused.status_code == 422 and "Give a reason: the partner sees it." in refused.text
    unknown = anna.post(
        decide, data={**form, "touch": "no-such", "decision": "decline", "reason": "r"}
    )
    assert unknown.status_code == 422
    done = anna.post(decide, data={**form, "decision": "decline", "reason": "no ads this month"})
    assert done.status_code == 303
    world = north.world
    with tenant_session(world.engine, world.tenant_id) as session:
        row_now = session.get(Enrollment, enrollment)
        assert row_now is not None
        assert row_now.declined_touches == [touch] and row_now.state == "invited"
        (record,) = decisions.records_for(session, [enrollment])
    assert record.touch_key == touch and record.on_behalf and record.reason == "no ads this month"
    assert record.decision == "decline" and record.actor_label == "anna@agency.example.com"
    row = _row(anna.get(path).text, enrollment)
    assert re.search(rf'value="{touch}"[^<]*<strong>left out</strong>', row), row
    again = anna.post(decide, data={**form, "decision": "approve", "reason": "they agreed"})
    assert again.status_code == 303
    with tenant_session(world.engine, world.tenant_id) as session:
        row_now = session.get(Enrollment, enrollment)
        assert row_now is not None and row_now.declined_touches == []
        assert [r.decision for r in decisions.records_for(session, [enrollment])] == [
            "approve",
            "decline",
        ]
    assert "<strong>left out</strong>" not in _row(anna.get(path).text, enrollment)
    marketer = clients["marketer"]
    answer = marketer.post(
        decide,
        data={
            "csrf_token": marketer.token(path),
            "touch": touch,
            "decision": "decline",
            "reason": "r",
        },
    )
    assert answer.status_code == 403


def test_the_dashboard_words_the_reasons_in_german_and_french() -> None:
    from partnercast.concierge import capacity
    from partnercast.web.dashboard_reasons import worded

    spread = capacity.Reason(
        capacity.SPREAD,
        {"language": "de", "partners": 1200, "concierges": 1, "names": "Anna", "target": 1200},
    )
    over = capacity.Reason(capacity.OVER_CAP, {"cap": 100, "language": "de", "needed": 12})
    assert worded([spread, over], "de_DE") == (
        "de: 1.200 Partner auf 1 Concierge (Anna): höchstens 1.200 je Concierge; "
        "über der Obergrenze von 100: de braucht 12 Concierges"
    )
    share = capacity.Reason(capacity.OVER_SHARE, {"concierge": "Anna", "share": 3})
    room = capacity.Reason(capacity.MOST_ROOM, {"concierge": "Ben", "language": "fr"})
    assert worded([share, room], "fr") == (
        "Anna dépasse la part égale de 3 ; Ben a le plus de place en fr"
    )
    assert worded([capacity.Reason(capacity.NOT_ASSIGNED), room], "en") == (
        "not assigned yet; Ben has the most room in fr"
    )


def test_the_capacity_page_gives_its_reasons_in_the_visitors_language(clients, desk) -> None:
    from partnercast.concierge import capacity

    world = desk.north.world
    with tenant_session(world.engine, world.tenant_id) as session:
        proposal = capacity.propose_balance(session)
    assert proposal.moves and proposal.explanations
    admin, path = clients["admin"], "/dashboard/northwind/capacity"
    english = admin.get(path).text
    assert all(move.reason in english for move in proposal.moves)  # the CLI's words
    assert "concierge(s)" not in english and " concierges (" in english  # but plurals
    _speaks(desk, "admin@agency.example.com", "de_DE")
    german = admin.get(path).text
    assert "den meisten Platz" in german and "höchstens" in german
    for english_word in ("has the most room", "at most", "not assigned yet", "even share"):
        assert english_word not in german
    _speaks(desk, "admin@agency.example.com", "fr_FR")
    assert "a le plus de place" in admin.get(path).text
