"""The journal's note on PostgreSQL: found by primary key whatever the statistics say.

A new database's first big send runs before autovacuum has gathered the ledger's
statistics. Asked then, the planner took the tenant's and the dispatch's rows for few and
answered each note from their indexes (a BitmapAnd over every delivery of the tenant), so
that a note cost more with every message sent. The note now finds its rows by their ids.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from partnercast.core import journal


def _indexes(plan: dict[str, Any]) -> set[str]:
    """The names of the indexes a plan (EXPLAIN's JSON) reads, at any depth."""
    found = {plan["Index Name"]} if "Index Name" in plan else set()
    for child in plan.get("Plans", []):
        found |= _indexes(child)
    return found


def test_a_note_reads_the_ledger_by_primary_key_on_a_new_database(
    postgres_engine: Engine,
) -> None:
    with postgres_engine.begin() as connection:
        # A tenant's first send: 20,000 rows of one tenant and one dispatch, written too
        # recently for autovacuum to have analysed them (the rows' tenant, dispatch and
        # contact are not made: the foreign keys' triggers are off for this transaction).
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(
            text(
                "INSERT INTO delivery (tenant_id, dispatch_id, contact_id, email, state,"
                " message_id, error, created_at, uncertain) SELECT 1, 7, n, 'c' || n ||"
                " '@example.com', 'pending', '', '', now(), false"
                " FROM generate_series(1, 20000) AS n"
            )
        )
    with postgres_engine.connect() as connection:
        analysed = connection.execute(
            text("SELECT reltuples FROM pg_class WHERE relname = 'delivery'")
        ).scalar()
    assert analysed == -1  # no statistics yet
    note = journal._compiled(postgres_engine.dialect, journal.DEFAULT_WINDOW)
    explain = copy.copy(note)
    explain.sql = "EXPLAIN (FORMAT JSON) " + note.sql
    ids = list(range(1_001, 1_033))
    now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    values = {
        "j_tenant_id": 1,
        "j_dispatch_id": 7,
        "j_owner": "worker-1",
        "j_now": now,
        "j_sent": ids[:16],
        "j_back": [],
        "j_next": ids[16:],
        "j_all": ids,
    }
    raw = postgres_engine.raw_connection()
    try:
        cursor = raw.cursor()
        explain.run(cursor, values)
        (plan,) = cursor.fetchone()[0]
    finally:
        raw.close()
    read = _indexes(plan["Plan"])
    assert "delivery_pkey" in read, plan
    assert not {name for name in read if name.startswith(("ix_delivery", "delivery_"))} - {
        "delivery_pkey"
    }, plan  # no other index of the ledger: not its tenant's, not its dispatch's


def test_the_ledger_leaves_room_for_its_updates_on_postgresql(postgres_engine: Engine) -> None:
    """Each row is updated twice (sending, then sent): half-filled pages keep both
    updates on the row's page, where they need no index entries (migration 0023)."""
    with postgres_engine.connect() as connection:
        options = connection.execute(
            text("SELECT reloptions FROM pg_class WHERE relname = 'delivery'")
        ).scalar()
    assert options == ["fillfactor=50"]
