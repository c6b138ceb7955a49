"""The first genuine open and click of each message: what makes a tracked hit "unique".

Every pixel hit and redirect is an Event (web/tracking.py); repeated hits are all kept.
One ``Engagement`` row per (dispatch, contact, kind) is inserted, with ON CONFLICT DO
NOTHING, by the first hit that is not flagged as a bot: the insert that wrote a row is the
unique one, and its event says so (``data["unique"]``), which the rollups count. The
unique key makes this exact under concurrent hits on SQLite and PostgreSQL alike, and
no query ever scans the event log to tell.

The tracker records hits in batches (web/tracking.py): :func:`claim_first` inserts the
rows of a whole batch in one statement and says which were new.

A genuine click on a message with no ``opened`` row inserts that row too (an implied open:
the reader's client blocked the pixel), so unique opens are never fewer than the readers
who clicked, and a later pixel hit does not count the message opened a second time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import UniqueConstraint
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel

from partnercast.core.tenancy import TenantOwned


class Engagement(TenantOwned, SQLModel, table=True):
    """A contact opened (or clicked in) one dispatch's message, at least once."""

    __table_args__ = (UniqueConstraint("dispatch_id", "contact_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    dispatch_id: int = Field(foreign_key="dispatch.id")
    contact_id: int = Field(foreign_key="contact.id")
    kind: str = Field(max_length=20)  # opened | clicked
    first_at: datetime


EngagementKey = tuple[int, int, str]
"""(dispatch, contact, kind)."""


def claim_first(
    session: Session, tenant_id: int, firsts: Iterable[tuple[EngagementKey, datetime]]
) -> set[EngagementKey]:
    """Insert an Engagement row for each key unless it exists; the keys that were new.

    One INSERT ... ON CONFLICT DO NOTHING RETURNING executed for the whole batch (SQLAlchemy
    sends it as multi-row statements from one cached compilation): the unique (dispatch,
    contact, kind) makes it exact under concurrent writers (other batches, other
    processes) on SQLite and PostgreSQL alike. The statement is built once per dialect;
    on PostgreSQL it takes the rows as four arrays (``INSERT ... SELECT FROM unnest``), one
    short statement whatever the batch, which psycopg converts once and prepares: a
    multi-row VALUES is a statement of another length each batch, converted anew every
    time (an eighth of ``partnercast serve``'s CPU under wrk, py-spy).
    """
    firsts = list(firsts)
    if not firsts:
        return set()
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        found = connection.execute(
            _pg_claim_statement(),
            {
                "e_tenant_id": tenant_id,
                "e_dispatches": [dispatch for (dispatch, _, _), _ in firsts],
                "e_contacts": [contact for (_, contact, _), _ in firsts],
                "e_kinds": [kind for (_, _, kind), _ in firsts],
                "e_firsts": [at for _, at in firsts],
            },
        )
        return {(row[0], row[1], row[2]) for row in found}
    rows = [
        {
            "tenant_id": tenant_id,
            "dispatch_id": dispatch,
            "contact_id": contact,
            "kind": kind,
            "first_at": at,
        }
        for (dispatch, contact, kind), at in firsts
    ]
    found = connection.execute(_claim_statement(connection.dialect.name), rows)
    return {(row[0], row[1], row[2]) for row in found}


_claims: dict[str, Any] = {}


def _claim_statement(dialect: str) -> Any:
    """The claim's statement for a dialect, built once (built per batch, it was built and
    cache-keyed for every batch of the tracker's writer: py-spy, issue 16)."""
    statement = _claims.get(dialect)
    if statement is None:
        table = Engagement.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["dispatch_id", "contact_id", "kind"])
            .returning(table.c.dispatch_id, table.c.contact_id, table.c.kind)
        )
        _claims[dialect] = statement
    return statement


_pg_claim: list[Any] = []


def _pg_claim_statement() -> Any:
    """PostgreSQL's claim from four arrays (built once)."""
    if not _pg_claim:
        from sqlalchemy import Integer, String, bindparam
        from sqlalchemy import select as select_columns

        from partnercast.core.sql import unnested

        table = Engagement.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
        rows = unnested(
            {
                "dispatch_id": ("e_dispatches", Integer),
                "contact_id": ("e_contacts", Integer),
                "kind": ("e_kinds", String),
                "first_at": ("e_firsts", table.c.first_at.type),
            }
        )
        values = select_columns(
            bindparam("e_tenant_id", type_=Integer),
            rows.c.dispatch_id,
            rows.c.contact_id,
            rows.c.kind,
            rows.c.first_at,
        )
        columns = ["tenant_id", "dispatch_id", "contact_id", "kind", "first_at"]
        _pg_claim.append(
            pg_insert(table)
            .from_select(columns, values)
            .on_conflict_do_nothing(index_elements=["dispatch_id", "contact_id", "kind"])
            .returning(table.c.dispatch_id, table.c.contact_id, table.c.kind)
        )
    return _pg_claim[0]
