"""Claims take turns between tenants: one tenant's backlog never keeps another waiting.

On SQLite and on PostgreSQL (where the claim is FOR UPDATE SKIP LOCKED): each tenant's
due dispatches are ranked oldest first and a claim takes every tenant's first, then every
tenant's second...; successive claims go round the tenants (issue 12).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from core.worker.worker_support import DUE, NOW, add_due_dispatches
from sqlalchemy.engine import Engine
from support.world import World, build_world, start

from partnercast.campaigns.ticking import tick
from partnercast.core import outbox


@pytest.fixture
def three(any_engine: Engine, tmp_path: Path) -> list[World]:
    """Three tenants, started (nothing sent: no SMTP server, no approval)."""
    worlds = [build_world(any_engine, tmp_path / slug, 9, slug=slug) for slug in "abc"]
    for world in worlds:
        start(world)
    return worlds


def test_a_claim_takes_each_tenants_oldest_in_turn_not_the_biggest_backlog(
    three: list[World],
) -> None:
    a, b, c = three
    backlog = add_due_dispatches(a, 30, scheduled_at=DUE - timedelta(days=1))  # older
    add_due_dispatches(b, 3)
    add_due_dispatches(c, 3)
    claims = outbox.claim_due(a.engine, NOW, "w", limit=6)
    tenants = [claim.tenant_id for claim in claims]
    assert tenants == [a.tenant_id, b.tenant_id, c.tenant_id] * 2
    assert [claim.dispatch_id for claim in claims if claim.tenant_id == a.tenant_id] == backlog[:2]


def test_successive_claims_go_round_the_tenants(three: list[World]) -> None:
    a, b, c = three
    for world in three:
        add_due_dispatches(world, 4)
    order: list[int] = []
    last = 0
    for _ in range(6):
        [claim] = outbox.claim_due(a.engine, NOW, "w", limit=1, after_tenant=last)
        order.append(claim.tenant_id)
        last = claim.tenant_id
    assert order == [a.tenant_id, b.tenant_id, c.tenant_id] * 2


def test_a_tick_runs_the_small_tenants_work_among_the_first_not_after_the_backlog(
    three: list[World],
) -> None:
    a, b, c = three
    add_due_dispatches(a, 40, scheduled_at=DUE - timedelta(days=1))
    small = set(add_due_dispatches(b, 2)) | set(add_due_dispatches(c, 2))
    report = tick(a.engine, a.settings, NOW, worker_id="w", claim_batch=3)
    assert len(report.runs) == 44  # every due dispatch ran (each waits for its approval)
    first = report.runs[:6]  # in the order they ran: two claims of three
    assert small <= {run.dispatch_id for run in first}
    assert Counter(run.tenant_id for run in first) == {
        a.tenant_id: 2,
        b.tenant_id: 2,
        c.tenant_id: 2,
    }
