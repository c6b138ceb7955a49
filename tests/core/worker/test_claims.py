"""Claims, leases and fencing: each due row goes to one worker; a lost lease changes nothing."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from core.worker.worker_support import NOW, add_due_dispatches, snapshot
from sqlmodel import col, select
from support.world import World

from partnercast.campaigns import dispatching
from partnercast.campaigns.dispatching import LEASE_LOST, RunContext, run_dispatch
from partnercast.core import outbox
from partnercast.core.journal import LedgerJournal
from partnercast.core.models import Dispatch
from partnercast.core.tenancy import system_session
from partnercast.plugins.manager import default_plugins

CLAIMERS = 8
ROWS = 1000


def _owners(world: World) -> dict[int, str | None]:
    with system_session(world.engine, reason="tests read who holds which lease") as session:
        rows = session.exec(select(Dispatch.id, Dispatch.lease_owner)).all()
    return {int(dispatch_id): owner for dispatch_id, owner in rows}


def test_eight_claimers_claim_each_of_a_thousand_due_rows_exactly_once(
    bulk_world: World,
) -> None:
    ids = add_due_dispatches(bulk_world, ROWS)
    barrier = threading.Barrier(CLAIMERS)
    claimed: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def claimer(name: str) -> None:
        mine: list[int] = []
        try:
            barrier.wait(timeout=30)
            while claims := outbox.claim_due(bulk_world.engine, NOW, name, limit=25):
                mine.extend(claim.dispatch_id for claim in claims)
                assert all(claim.tenant_id == bulk_world.tenant_id for claim in claims)
        except BaseException as error:
            errors.append(error)
        claimed[name] = mine

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(CLAIMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    every = [dispatch_id for mine in claimed.values() for dispatch_id in mine]
    assert len(every) == len(set(every)) == ROWS  # nobody claimed a row twice
    assert set(every) == set(ids)  # and only the due ones
    owners = _owners(bulk_world)
    for name, mine in claimed.items():
        assert all(owners[dispatch_id] == name for dispatch_id in mine)
    if bulk_world.engine.dialect.name == "postgresql":
        assert sum(1 for mine in claimed.values() if mine) > 1  # SKIP LOCKED shares the work


def test_a_live_lease_is_not_claimed_and_an_expired_one_is_taken_over(bulk_world: World) -> None:
    [dispatch_id] = add_due_dispatches(bulk_world, 1)
    assert outbox.claim_due(bulk_world.engine, NOW, "old", lease_seconds=60) != []
    assert outbox.claim_due(bulk_world.engine, NOW + timedelta(seconds=59), "new") == []
    later = NOW + timedelta(seconds=61)
    [claim] = outbox.claim_due(bulk_world.engine, later, "new", lease_seconds=60)
    assert claim.dispatch_id == dispatch_id
    row = snapshot(bulk_world.engine, dispatch_id)
    assert row["lease_owner"] == "new"
    assert row["lease_until"] == later + timedelta(seconds=60)


def test_a_running_dispatch_whose_worker_died_is_taken_over(bulk_world: World) -> None:
    [dispatch_id] = add_due_dispatches(bulk_world, 1)
    outbox.claim_due(bulk_world.engine, NOW, "dead", lease_seconds=60)
    with system_session(bulk_world.engine, reason="test: the worker got as far as running") as s:
        row = s.get(Dispatch, dispatch_id)
        assert row is not None
        row.state = outbox.RUNNING
        row.scheduled_at = NOW + timedelta(days=30)  # running ignores the schedule
    assert outbox.claim_due(bulk_world.engine, NOW + timedelta(seconds=30), "new") == []
    claims = outbox.claim_due(bulk_world.engine, NOW + timedelta(seconds=61), "new")
    assert [claim.dispatch_id for claim in claims] == [dispatch_id]


def _context(world: World, owner: str, at: object) -> RunContext:
    lease = outbox.Lease(owner, clock=lambda: at, seconds=60)  # type: ignore[arg-type, return-value]
    return RunContext(world.engine, world.settings, default_plugins(), now=at, lease=lease)


def test_a_worker_that_lost_its_lease_changes_nothing(bulk_world: World) -> None:
    [dispatch_id] = add_due_dispatches(bulk_world, 1)
    tenant_id = bulk_world.tenant_id
    outbox.claim_due(bulk_world.engine, NOW, "old", lease_seconds=60)
    later = NOW + timedelta(seconds=90)
    outbox.claim_due(bulk_world.engine, later, "new", lease_seconds=60)  # took it over
    before = snapshot(bulk_world.engine, dispatch_id)
    old = _context(bulk_world, "old", later)  # the old worker wakes up

    assert run_dispatch(old, tenant_id, dispatch_id, later).state == LEASE_LOST
    writes = [
        lambda: dispatching._finish(old, tenant_id, dispatch_id, outbox.DONE, later, "done"),
        lambda: dispatching._finish(old, tenant_id, dispatch_id, outbox.FAILED, later, "x"),
        lambda: dispatching._retry(old, tenant_id, dispatch_id, later, "deferred", None),
        lambda: dispatching._record_outcomes(old, tenant_id, dispatch_id, [], later),
        lambda: dispatching._record_external_ids(old, tenant_id, dispatch_id, ["post-1"]),
        lambda: dispatching._open_batch(
            old,
            tenant_id,
            dispatch_id,
            [],
            now=later,
            journaled=True,
            at_most_once=False,
            sender_email="",
        ),
    ]
    for write in writes:
        with pytest.raises(outbox.LeaseLost):
            write()
    # Nor can it note a message in the delivery journal: the sender stops at once.
    journal = LedgerJournal(bulk_world.engine, tenant_id, dispatch_id, old.held())
    assert journal.record(None, 1) is False and journal.lost
    journal.close()
    assert snapshot(bulk_world.engine, dispatch_id) == before

    # Even its own lease, once expired and not yet taken, no longer lets it write.
    expired = _context(bulk_world, "new", later + timedelta(seconds=61))
    with pytest.raises(outbox.LeaseLost):
        dispatching._finish(expired, tenant_id, dispatch_id, outbox.DONE, later, "late")
    assert snapshot(bulk_world.engine, dispatch_id) == before

    # The new owner's writes go through: the partner has not approved, so it waits,
    # and its lease is given back for the next tick.
    new = _context(bulk_world, "new", later)
    assert run_dispatch(new, tenant_id, dispatch_id, later).state == "waiting"
    after = snapshot(bulk_world.engine, dispatch_id)
    assert after["lease_owner"] is None and after["lease_until"] is None
    assert after["state"] == outbox.PENDING


def test_claims_skip_rows_not_yet_due_and_finished_ones(bulk_world: World) -> None:
    due = add_due_dispatches(bulk_world, 3)
    with system_session(bulk_world.engine, reason="test: one done, one later") as session:
        rows = session.exec(select(Dispatch).where(col(Dispatch.id).in_(due))).all()
        rows[0].state = outbox.DONE
        rows[1].scheduled_at = NOW + timedelta(minutes=1)
    claims = outbox.claim_due(bulk_world.engine, NOW, "w")
    assert [claim.dispatch_id for claim in claims] == [due[2]]
