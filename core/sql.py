"""Typed helpers over the corners of SQLAlchemy and SQLModel that are typed loosely.

Kept in one place so that the rest of the code needs no ``type: ignore`` for them.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from sqlalchemy import Table, inspect
from sqlalchemy.engine import CursorResult, Result
from sqlmodel import SQLModel


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched. ``Session.execute`` is typed to return a plain
    Result; for a DML statement it is a CursorResult, which has ``rowcount``."""
    return int(cast(CursorResult[Any], result).rowcount)


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
