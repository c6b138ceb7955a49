"""Concierge commands as a user runs them: one-line errors, and no way across tenants."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.concierge.models import Concierge, ConciergeTask, Review
from partnercast.core.tenancy import tenant_session


@pytest.fixture
def two_tenants(engine: Engine, tenant_a: int, tenant_b: int, add_partners, cli) -> tuple[int, int]:
    """Both tenants have partner P1 and a concierge Anna; B has a task and a review."""
    for tenant in (tenant_a, tenant_b):
        add_partners(tenant, {"P1": ["de"], "P2": ["en"]})
    cli("concierges", "add", "Anna", "--tenant", "vendor-a", "--languages", "de,en")
    cli("concierges", "add", "Bert", "--tenant", "vendor-b", "--languages", "de")
    cli("tasks", "add", "P1", "--tenant", "vendor-b", "--kind", "onboarding", "--title", "B secret")
    cli("review", "P1", "--tenant", "vendor-b", "--notes", "B's notes")
    return tenant_a, tenant_b


def _b_task_id(engine: Engine, tenant_b: int) -> int:
    with tenant_session(engine, tenant_b) as session:
        task = session.exec(select(ConciergeTask)).one()
    return task.id or 0


def test_tasks_of_another_tenant_are_invisible_and_unchangeable(
    engine: Engine, two_tenants, cli
) -> None:
    _a, b = two_tenants
    task_id = str(_b_task_id(engine, b))
    listed = cli("tasks", "--tenant", "vendor-a", "--status", "all")
    assert "B secret" not in listed.stdout and "0 tasks" in listed.stdout
    for args in (
        ("tasks", "close", task_id, "--note", "x"),
        ("tasks", "note", task_id, "hello"),
        ("tasks", "assign", task_id, "Anna"),
        ("tasks", "start", task_id),
        ("tasks", "show", task_id),
    ):
        result = cli(*args, "--tenant", "vendor-a", expect=1)
        assert f"no task {task_id}" in result.stderr
        assert "Traceback" not in result.stderr
    with tenant_session(engine, b) as session:
        task = session.exec(select(ConciergeTask)).one()
    assert task.status == "open" and "hello" not in task.notes and task.owner_id is None


def test_concierges_and_reviews_of_another_tenant_are_not_found(
    engine: Engine, two_tenants, cli
) -> None:
    a, _b = two_tenants
    assert "Bert" not in cli("concierges", "list", "--tenant", "vendor-a").stdout
    result = cli(
        "tasks", "add", "P1", "--tenant", "vendor-a", "--kind", "x", "--owner", "Bert", expect=1
    )
    assert "no concierge 'Bert'" in result.stderr
    assert "0 reviews" in cli("reviews", "P1", "--tenant", "vendor-a").stdout
    with tenant_session(engine, a) as session:
        assert session.exec(select(Review)).all() == []
        assert [c.name for c in session.exec(select(Concierge)).all()] == ["Anna"]


def test_the_same_cli_flow_within_one_tenant(engine: Engine, two_tenants, cli) -> None:
    added = cli(
        "tasks", "add", "P1", "--tenant", "vendor-a", "--kind", "onboarding", "--due", "2020-01-05"
    )
    task_id = re.search(r"task (\d+) added", added.stdout).group(1)  # type: ignore[union-attr]
    cli("tasks", "assign", task_id, "Anna", "--tenant", "vendor-a")
    cli("tasks", "note", task_id, "left a voicemail", "--tenant", "vendor-a", "--by", "anna")
    assert task_id in cli("tasks", "--tenant", "vendor-a", "--owner", "Anna", "--overdue").stdout
    assert "0 tasks" in cli("tasks", "--tenant", "vendor-a", "--kind", "weekly-review").stdout
    cli("tasks", "close", task_id, "--tenant", "vendor-a", "--note", "kick-off booked")
    closed = cli("tasks", "close", task_id, "--tenant", "vendor-a", expect=1)
    assert "already done" in closed.stderr
    assert "kick-off booked" not in cli("tasks", "--tenant", "vendor-a").stdout
    assert task_id in cli("tasks", "list", "--tenant", "vendor-a", "--status", "done").stdout
    shown = cli("tasks", "show", task_id, "--tenant", "vendor-a").stdout
    lines = shown.splitlines()
    assert lines[1].split()[:6] == [f"#{task_id}", "2020-01-05", "P1", "onboarding", "Anna", "done"]
    notes = lines[lines.index("notes:") + 1 :]
    assert [note.split("] ", 1)[1] for note in notes] == [
        "assigned to Anna",
        "anna: left a voicemail",
        "kick-off booked",
    ]


def test_the_task_list_keeps_what_a_task_is_about_whole(two_tenants, cli, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # piped output is as wide as it needs otherwise
    about = "Walk the partner through reconnecting LinkedIn before the second touch goes out"
    cli("tasks", "add", "P2", "--tenant", "vendor-a", "--kind", "onboarding", "--title", about)
    cli("tasks", "add", "P1", "--tenant", "vendor-a", "--kind", "call", "--due", "2020-01-01")
    listed = cli("tasks", "--tenant", "vendor-a").stdout  # an 80-column terminal
    assert all(len(line) <= 80 for line in listed.splitlines())
    assert about in " ".join(listed.split())
    lines = listed.splitlines()
    assert lines[0] == "2 tasks" and lines[1].split() == [
        "task",
        "due",
        "partner",
        "kind",
        "owner",
        "status",
    ]
    assert lines[2].split()[1:4] == ["2020-01-01", "overdue", "P1"]  # by due date


def test_the_readiness_overview_lists_every_partner(two_tenants, cli) -> None:
    cli("partners", "readiness", "P1", "--tenant", "vendor-a", "--set", "strategic=yes")
    for item in ("competent", "contact", "weekly_review", "feedback"):
        cli("partners", "readiness", "P1", "--tenant", "vendor-a", "--set", f"{item}=yes")
    cli("partners", "readiness", "P2", "--tenant", "vendor-a", "--set", "strategic=no")
    out = cli("partners", "readiness", "--tenant", "vendor-a").stdout
    rows = {
        cells[0]: cells[1:]
        for line in out.splitlines()
        if (cells := [c.strip() for c in re.split(r"[│┃]", line) if c.strip()])
        and cells[0] in ("P1", "P2")
    }
    assert rows["P1"] == ["yes", "yes", "yes", "yes", "yes", "ready"]
    assert rows["P2"][0] == "no" and rows["P2"][-1] == "-"
    assert "1 of 2 partners ready" in out
    wrong = cli("partners", "readiness", "--tenant", "vendor-a", "--set", "strategic=yes", expect=1)
    assert "name the partner" in wrong.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("tasks", "add", "NOPE", "--kind", "call"), "no partner 'NOPE'"),
        (
            ("tasks", "add", "P1", "--kind", "call", "--due", "2026-13-01"),
            "--due: '2026-13-01' is not",
        ),
        (("tasks", "add", "P1", "--kind", "Call me!"), "--kind: task kind"),
        (("tasks", "--status", "later"), "status 'later' is not one of"),
        (("review", "NOPE"), "no partner 'NOPE'"),
        (("review", "P1", "--at", "yesterday"), "--at: 'yesterday' is not"),
        (("partners", "readiness", "NOPE"), "no partner 'NOPE'"),
        (("concierges", "add", "Cleo", "--languages", "xx_YY"), "unknown locale"),
        (("concierges", "add", "Anna", "--languages", "de"), "already a concierge named 'Anna'"),
        (("concierges", "settings", "--bounce-threshold", "2"), "must be a rate above 0"),
    ],
    ids=lambda value: value if isinstance(value, str) else "-".join(value[:2]),
)
def test_mistakes_are_one_line_errors(two_tenants, cli, args, message) -> None:
    result = cli(*args, "--tenant", "vendor-a", expect=1)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_tenant_and_missing_tenant(two_tenants, cli) -> None:
    assert "no tenant 'nobody'" in cli("tasks", "--tenant", "nobody", expect=1).stderr
    assert "--tenant" in cli("tasks", expect=1).stderr
