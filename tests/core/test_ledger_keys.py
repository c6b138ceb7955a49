"""The delivery ledger's composite foreign keys (revision 0025): a delivery can only name a
dispatch and a contact of its own tenant, whatever writes it, on SQLite and PostgreSQL;
and the migration keeps the rows a database already had."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from support.world import World, build_world, start

from partnercast.core.db import alembic_config, current_revision, upgrade
from partnercast.core.errors import UserError

INSERT = text(
    "INSERT INTO delivery (tenant_id, dispatch_id, contact_id, email, state, uncertain, "
    "message_id, error, created_at) VALUES (:tenant, :dispatch, :contact, 'x@example.com', "
    "'pending', false, '', '', CURRENT_TIMESTAMP)"
)


def _first(engine: Engine, table: str, tenant_id: int) -> int:
    with engine.connect() as connection:
        found = connection.execute(
            text(f"SELECT min(id) FROM {table} WHERE tenant_id = :t"), {"t": tenant_id}
        ).scalar_one()
    assert found is not None, f"the world has no {table}"
    return int(found)


def _two_tenants(engine: Engine, tmp_path: Path) -> tuple[World, World]:
    worlds = (
        build_world(engine, tmp_path / "north", 9, slug="northwind"),
        build_world(engine, tmp_path / "south", 9, slug="southwind"),
    )
    for world in worlds:
        start(world)  # plans the cycle's dispatches
    return worlds


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM delivery")).scalar_one())


def test_a_delivery_cannot_name_another_tenants_dispatch_or_contact(
    any_engine: Engine, tmp_path: Path
) -> None:
    north, south = _two_tenants(any_engine, tmp_path)
    mine = {
        "tenant": north.tenant_id,
        "dispatch": _first(any_engine, "dispatch", north.tenant_id),
        "contact": _first(any_engine, "contact", north.tenant_id),
    }
    wrong = [
        {**mine, "tenant": south.tenant_id},  # both parents are another tenant's
        {**mine, "dispatch": _first(any_engine, "dispatch", south.tenant_id)},
        {**mine, "contact": _first(any_engine, "contact", south.tenant_id)},
    ]
    for row in wrong:
        with pytest.raises(IntegrityError), any_engine.begin() as connection:
            connection.execute(INSERT, row)
    assert _count(any_engine) == 0
    with any_engine.begin() as connection:
        connection.execute(INSERT, mine)
    assert _count(any_engine) == 1


def test_the_migration_keeps_the_ledger(any_engine: Engine, tmp_path: Path) -> None:
    """A ledger written before revision 0025 is the same after it, and held by the keys."""
    north, south = _two_tenants(any_engine, tmp_path)
    command.downgrade(alembic_config(any_engine), "0024")
    rows = [
        {
            "tenant": world.tenant_id,
            "dispatch": _first(any_engine, "dispatch", world.tenant_id),
            "contact": _first(any_engine, "contact", world.tenant_id),
        }
        for world in (north, south)
    ]
    with any_engine.begin() as connection:
        connection.execute(INSERT, rows)
        # Before 0025 the keys were one column each: another tenant's dispatch passed.
        connection.execute(INSERT, {**rows[0], "dispatch": rows[1]["dispatch"]})
        connection.execute(
            text("DELETE FROM delivery WHERE tenant_id = :t AND dispatch_id = :d"),
            {"t": rows[0]["tenant"], "d": rows[1]["dispatch"]},
        )
    with any_engine.connect() as connection:
        before = connection.execute(text("SELECT * FROM delivery ORDER BY id")).all()
    upgrade(any_engine)
    with any_engine.connect() as connection:
        assert connection.execute(text("SELECT * FROM delivery ORDER BY id")).all() == before
    with pytest.raises(IntegrityError), any_engine.begin() as connection:
        connection.execute(INSERT, {**rows[0], "dispatch": rows[1]["dispatch"]})


def test_an_upgrade_over_a_cross_tenant_row_stops_with_one_line_and_changes_nothing(
    any_engine: Engine, tmp_path: Path
) -> None:
    north, south = _two_tenants(any_engine, tmp_path)
    command.downgrade(alembic_config(any_engine), "0024")
    crossed = {
        "tenant": north.tenant_id,
        "dispatch": _first(any_engine, "dispatch", south.tenant_id),
        "contact": _first(any_engine, "contact", north.tenant_id),
    }
    with any_engine.begin() as connection:
        connection.execute(INSERT, crossed)
    with pytest.raises(UserError, match="rows already there break a new constraint") as caught:
        upgrade(any_engine)
    assert "\n" not in str(caught.value)
    assert current_revision(any_engine) == "0024"
    assert _count(any_engine) == 1
