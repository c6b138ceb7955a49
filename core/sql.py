"""Typed helpers over the corners of SQLAlchemy and SQLModel that are typed loosely.

Kept in one place so that the rest of the code needs no ``type: ignore`` for them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement, Table, any_, bindparam, inspect
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session
from sqlmodel import SQLModel


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched. ``Session.execute`` is typed to return a plain
    Result; for a DML statement it is a CursorResult, which has ``rowcount``."""
    return int(cast(CursorResult[Any], result).rowcount)


def among(session: Session, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """``column IN values``, written for the session's database: on PostgreSQL ``column
    = ANY(:array)``, one parameter whatever the number of values. psycopg converts a
    statement of more than 4 KB anew at every execution (no cache), and ``IN`` with 500
    values is such a statement: on the send path that cost a sixth of a worker's CPU."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        array = bindparam(None, list(values), type_=ARRAY(column.type))
        return cast(ColumnElement[bool], column == any_(array))
    return cast(ColumnElement[bool], column.in_(list(values)))


def unnested(
    columns: Mapping[str, tuple[str, Any]], name: str = "new_rows", ordinality: str = ""
) -> Any:
    """PostgreSQL's ``unnest(:a, :b, ...)`` as a derived table named ``name``: a column per
    entry of ``columns`` (column -> (array parameter, item type)), a row per index of the
    arrays, and with ``ordinality`` a column of that name numbering them from 1.
    ``INSERT ... SELECT`` from it takes a batch as one array a column: a short statement
    whatever the batch, which psycopg converts once and prepares, where a multi-row VALUES
    is a statement of another length each time, converted anew."""
    from sqlalchemy import func
    from sqlalchemy.dialects.postgresql import ARRAY

    arrays = [bindparam(param, type_=ARRAY(item)) for param, item in columns.values()]
    rows = func.unnest(*arrays).table_valued(*columns, with_ordinality=ordinality or None)
    return rows.render_derived(name, with_types=False)


def table_of(model: type[SQLModel]) -> Table:
    """The Table a table model is mapped to (``model.__table__``, which SQLModel's
    classes have at run time and no type for)."""
    return cast(Table, inspect(model).local_table)


class _Row(Protocol):
    @property
    def id(self) -> int | None: ...


def id_of(row: _Row) -> int:
    """The primary key of a row that was flushed; a row never flushed has none yet, and
    using it as a foreign key would be a bug, not a value to default."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: add it and flush first")
    return row.id
