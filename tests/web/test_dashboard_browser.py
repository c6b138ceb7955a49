"""A concierge at the dashboard in a real browser (Debian's chromium, headless): signs in
by magic link, clears the approvals queue by deciding on the partners' behalf with a
reason, closes a task and dismisses another (htmx fragments), and every dashboard page
passes axe-core and fits 390 px."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from support.browser import LiveServer, assert_accessible, screenshots
from support.dashboard_world import COOKIE, DashboardWorld, build_dashboard_world
from support.signin_world import link_in, wait_for_mail

from partnercast.campaigns import decisions
from partnercast.campaigns.decisions import records_for
from partnercast.campaigns.enrollment import find_enrollment
from partnercast.campaigns.models import Enrollment
from partnercast.concierge.models import ConciergeTask
from partnercast.core.tenancy import tenant_session
from partnercast.demo.smtp_sink import SmtpSink

SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots" / "dashboard"
"""The folder the screenshots go to (build/ is not committed)."""
SLOW = 180_000
"""A form's answer on a loaded 2-core machine (ms)."""


@pytest.fixture
def desk(engine: Engine, tmp_path: Path, sink: SmtpSink) -> DashboardWorld:
    return build_dashboard_world(engine, tmp_path, sink.port)


def _sign_in(page: Any, server: LiveServer, cookie: str) -> None:
    page.context.add_cookies([{"name": COOKIE, "value": cookie, "url": server.url}])


def _check(page: Any, name: str) -> None:
    assert_accessible(page)
    screenshots(page, SHOTS, name)


def _submit(page: Any, button: Any) -> None:
    """Click a button (or link) that leads to another page, and wait for that page as long
    as a loaded machine needs: a click waits for the navigation it starts only within its
    own timeout (30 s by default), which a decision's answer (the queue rendered again)
    overran at load 16 on 2 cores, as the portal's did."""
    with page.expect_navigation(timeout=SLOW):
        button.click(timeout=SLOW)


def test_a_concierge_clears_the_approval_queue_and_closes_a_task(
    live_server: LiveServer, page: Any, desk: DashboardWorld, sink: SmtpSink
) -> None:
    north = desk.north
    # Signs in by magic link, as a concierge does: asks for a link, opens it from the mail.
    page.goto(live_server.path("/dashboard"))
    assert "/sign-in" in page.url
    page.get_by_label("Email address").fill("anna@agency.example.com")
    page.get_by_role("button", name="Email me a sign-in link").click()
    page.get_by_role("status").wait_for()
    (mail,) = [m for m in wait_for_mail(sink, 1) if m["To"] == "anna@agency.example.com"]
    page.goto(link_in(mail))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard/northwind/approvals", timeout=SLOW)
    rows = page.locator("table.stack tbody tr")
    assert rows.count() == len(north.covered)  # Anna's three partners wait
    _check(page, "approvals")

    invited = rows.filter(has_text="invited").first  # not customised yet: remind them
    contact = invited.locator("[id^=who-]").inner_text().removeprefix("to ")
    _submit(page, invited.get_by_role("button", name="Send reminder"))
    assert page.get_by_role("status").first.inner_text() == "Reminder sent and recorded."
    assert [m for m in sink.received.messages if m["To"] == contact]
    assert "1 time" in rows.filter(has_text="invited").first.inner_text()

    actions = 0
    while rows.count():
        row = rows.first.locator("details.campaign-decision")  # not the one-touch form
        row.locator("summary").click()
        approve = row.get_by_label("Approve", exact=True)
        (approve if approve.count() else row.get_by_label("Decline", exact=True)).check()
        row.get_by_label("Reason (the partner sees it)").fill("Agreed with the partner by phone")
        _submit(page, row.get_by_role("button", name="Record decision"))
        actions += 1
        assert page.get_by_role("status").first.inner_text().startswith("Decision recorded")
    assert actions == len(north.covered)
    assert page.get_by_text("Nothing is waiting for a partner.").is_visible()
    _check(page, "approvals-cleared")

    with tenant_session(desk.engine, north.world.tenant_id) as session:
        ids = [e.id or 0 for e in session.exec(select(Enrollment)).all()]
        records = records_for(session, ids)
    assert len(records) == len(north.covered)
    assert all(r.on_behalf and r.reason == "Agreed with the partner by phone" for r in records)
    assert {r.partner_id for r in records} == {north.partners[p] for p in north.covered}

    _submit(page, page.get_by_role("link", name="Tasks"))
    task_id = north.tasks[north.covered[0]]
    row = page.locator(f"#task-{task_id}")
    row.get_by_label("Assign to").select_option(label="Ben")
    row.get_by_role("button", name="Assign").click()
    page.locator(f'#task-{task_id} td[data-label="Owner"]', has_text="Ben").wait_for(timeout=SLOW)
    row.get_by_label("Note").fill("Called: they launch next week")
    row.get_by_role("button", name="Add note").click()
    page.locator(f"#task-{task_id} pre.notes", has_text="they launch next week").wait_for(
        state="attached", timeout=SLOW
    )
    _check(page, "tasks")
    page.locator(f"#task-{task_id}").get_by_role("button", name="Close as done").click()
    page.locator(f"#task-{task_id}", has_text="Closed.").wait_for(timeout=SLOW)
    other = north.tasks[north.covered[1]]  # not needed any more: dismissed, not done
    page.locator(f"#task-{other}").get_by_role("button", name="Dismiss").click()
    page.locator(f"#task-{other}", has_text="Dismissed.").wait_for(timeout=SLOW)
    with tenant_session(desk.engine, north.world.tenant_id) as session:
        task = session.get(ConciergeTask, task_id)
        assert task is not None
        assert task.status == "done" and "they launch next week" in task.notes
        assert task.owner_id == north.concierges["Ben"]
        dismissed = session.get(ConciergeTask, other)
        assert dismissed is not None and dismissed.status == "dismissed"

    for name in ("partners", "capacity"):
        _submit(page, page.get_by_role("link", name=name.title()))
        assert page.url.endswith(f"/dashboard/northwind/{name}")
        _check(page, name)
    page.goto(live_server.path(f"/dashboard/northwind/partners/{north.partners[north.covered[0]]}"))
    page.get_by_label("Notes of the review held today").fill("Agreed: two posts a week")
    _submit(page, page.get_by_role("button", name="Record the review"))
    page.get_by_text("Agreed: two posts a week").first.wait_for()
    _check(page, "partner")


def test_an_agency_admin_moves_between_tenants(
    live_server: LiveServer, page: Any, desk: DashboardWorld
) -> None:
    _sign_in(page, live_server, desk.cookies["admin"])
    page.goto(live_server.path("/dashboard/northwind/approvals"))
    assert page.locator("table.stack tbody tr").count() == len(desk.north.partners)
    page.get_by_text("Switch vendor").click()
    _submit(page, page.get_by_role("link", name="Southwind Cloud"))
    page.wait_for_url("**/dashboard/southwind/approvals", timeout=SLOW)
    assert page.locator(".brand").inner_text() == "Southwind Cloud"
    assert all(p in page.content() for p in desk.south.covered)
    _check(page, "admin-southwind")


def test_waiting_for_us_and_one_touch_on_behalf_read_well(
    live_server: LiveServer, page: Any, desk: DashboardWorld
) -> None:
    """A partner who asked for changes waits in 'Waiting for us'; the one-touch form, opened,
    passes axe-core and fits 390 px; a touch declined there is marked left out."""
    north = desk.north
    world = north.world
    with tenant_session(desk.engine, world.tenant_id) as session:
        enrollment = find_enrollment(session, "cloud-security", north.covered[0])
        decisions.decide(
            session,
            enrollment,
            decisions.REQUEST_CHANGES,
            principal=decisions.cli_principal("test"),
            now=enrollment.state_changed_at,
            reason="the partner called",
            note="Use our new logo",
        )
        asked = enrollment.id
    _sign_in(page, live_server, desk.cookies["anna"])
    page.goto(live_server.path("/dashboard/northwind/approvals"), timeout=SLOW)
    ours = page.locator("#waiting-for-us")
    row = ours.locator(f"#enrollment-{asked}")
    assert "Use our new logo" in row.inner_text()
    form = row.locator("details.touch-decision")
    form.locator("summary").click()
    _check(page, "approvals-waiting-for-us")
    form.locator("input[name=touch]").first.check()
    form.get_by_label("Decline the touch (it is left out)").check()
    form.get_by_label("Why, for the partner to read").fill("No posts this month")
    _submit(page, form.get_by_role("button", name="Record the touch's decision"))
    assert page.get_by_role("status").first.inner_text().startswith("Decision recorded")
    marked = page.locator(f"#waiting-for-us #enrollment-{asked} details.touch-decision strong")
    assert marked.first.text_content() == "left out"  # inside the closed form
