"""--now on the concierge commands: the one instant the command acts at, on any date."""

from __future__ import annotations

import re

from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.concierge.models import ConciergeTask
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import as_utc

A = ("--tenant", "vendor-a")


def test_a_task_is_due_and_overdue_as_seen_at_now(
    engine: Engine, tenant_a: int, add_partners, cli
) -> None:
    add_partners(tenant_a, {"P1": ["de"]})
    cli("concierges", "add", "Anna", *A, "--languages", "de", "--now", "2026-11-01T08:00")
    added = cli("tasks", "add", "P1", *A, "--kind", "onboarding", "--now", "2026-11-02T10:00")
    task_id = re.search(r"task (\d+) added", added.stdout).group(1)  # type: ignore[union-attr]
    cli("tasks", "note", task_id, "called", *A, "--by", "anna", "--now", "2026-11-03T11:00")
    with tenant_session(engine, tenant_a) as session:
        task = session.exec(select(ConciergeTask)).one()
    assert as_utc(task.created_at).isoformat() == "2026-11-02T10:00:00+00:00"
    assert "[2026-11-03 11:00" in task.notes
    due = as_utc(task.due_at)
    assert due > as_utc(task.created_at)  # task_due_days after --now, not after today
    day_before, day_after = f"{due:%Y-%m-%d}T00:00", f"{due:%Y-%m-%d}T23:59"
    before = cli("tasks", *A, "--overdue", "--now", day_before).stdout
    after = cli("tasks", *A, "--overdue", "--now", day_after).stdout
    assert before.startswith("0 tasks")
    assert after.startswith("1 task") and "overdue" in after
    shown = cli("tasks", "show", task_id, *A, "--now", day_after).stdout
    assert f"{due:%Y-%m-%d} overdue" in shown


def test_review_takes_now_as_well_as_at(tenant_a: int, add_partners, cli) -> None:
    add_partners(tenant_a, {"P1": ["de"]})
    at = cli("review", "P1", *A, "--at", "2026-12-15T10:00").stdout
    now = cli("review", "P1", *A, "--now", "2026-12-15T10:00").stdout
    assert at == now and "2026-12-15" in at
