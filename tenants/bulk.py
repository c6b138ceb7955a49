"""Many rows of one tenant written, or read, in one driver call: the import's fast path.

SQLAlchemy's executemany binds each value through Python (a DateTime becomes its SQLite
text one value at a time) and builds its multi-row statements per batch: for 100,000
contacts and their consent records, two thirds of an import's time. Here each column's
value is converted by the dialect's own bind processor once per distinct object (every
row's ``created_at`` is the same ``now``), and the rows go to the driver's
``executemany`` as plain tuples: the values stored are exactly those the ORM would store.

Tenant isolation: these statements bypass the ORM, so the session's tenant listener does
not see them. Each one is therefore stamped or filtered here with the tenant of the
tenant-scoped session it runs in (:func:`~partnercast.core.tenancy.session_tenant`
raises on any other session), never with a tenant id from a caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlmodel import Session, SQLModel

from partnercast.core.sql import table_of
from partnercast.core.tenancy import session_tenant

BATCH = 5000
"""Rows per executemany call."""
_NOTHING = object()


def _placeholder(session: Session) -> str:
    style = session.get_bind().dialect.paramstyle
    if style == "qmark":
        return "?"
    if style in ("format", "pyformat"):
        return "%s"
    raise NotImplementedError(f"bulk statements for the {style} parameter style")


def _quote(session: Session, name: str) -> str:
    return str(session.get_bind().dialect.identifier_preparer.quote(name))


def insert_rows(
    session: Session,
    model: type[SQLModel],
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> int:
    """Insert ``rows`` (values in ``columns`` order, Python values as the model holds
    them) into ``model``'s table, each stamped with the session's tenant; how many."""
    tenant_id = session_tenant(session)
    table = table_of(model)
    dialect = session.get_bind().dialect
    processors = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
    ]
    # Only the columns whose type converts (DateTime, and Boolean on SQLite), a value
    # converted again only when it is not the object of the row before: every row's
    # ``now`` is the same one.
    converting = [
        (position + 1, processor, [_NOTHING, None])
        for position, processor in enumerate(processors)
        if processor is not None
    ]
    names = ", ".join(_quote(session, name) for name in ("tenant_id", *columns))
    marks = ", ".join([_placeholder(session)] * (len(columns) + 1))
    sql = f"INSERT INTO {_quote(session, table.name)} ({names}) VALUES ({marks})"
    connection = session.connection()
    count = 0
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        values = [tenant_id, *row]
        for position, processor, last in converting:
            value = values[position]
            if value is last[0]:
                values[position] = last[1]
            elif value is not None:
                # The object itself is kept beside its conversion (not its id, which
                # another object could take once it is gone).
                last[0], last[1] = value, processor(value)
                values[position] = last[1]
        batch.append(tuple(values))
        if len(batch) == BATCH:
            connection.exec_driver_sql(sql, batch)
            count += len(batch)
            batch = []
    if batch:
        connection.exec_driver_sql(sql, batch)
        count += len(batch)
    return count


def select_rows(
    session: Session,
    model: type[SQLModel],
    columns: Sequence[str],
    *,
    where: Sequence[tuple[str, str, Any]] = (),
) -> Iterator[tuple[Any, ...]]:
    """The session's tenant's rows of ``model``, as the driver returns them (a boolean
    may be 0 or 1: hash and compare them, do not print them), ``columns`` in order;
    ``where`` adds (column, operator, value) conditions, operator one of = > >= < <=."""
    tenant_id = session_tenant(session)
    table = table_of(model)
    mark = _placeholder(session)
    conditions = [f"{_quote(session, 'tenant_id')} = {mark}"]
    parameters: list[Any] = [tenant_id]
    for column, operator, value in where:
        if operator not in ("=", ">", ">=", "<", "<="):
            raise ValueError(f"operator {operator!r}")
        table.c[column]  # a KeyError for a column the table does not have
        conditions.append(f"{_quote(session, column)} {operator} {mark}")
        parameters.append(value)
    names = ", ".join(_quote(session, name) for name in columns)
    sql = f"SELECT {names} FROM {_quote(session, table.name)} WHERE {' AND '.join(conditions)}"
    # Streamed (PostgreSQL: a server-side cursor): psycopg would otherwise hold all of a
    # large tenant's rows at once, 30 MB for 100,000 contacts.
    streamed = {"stream_results": True, "max_row_buffer": BATCH}
    cursor = session.connection().exec_driver_sql(
        sql, tuple(parameters), execution_options=streamed
    )
    while True:
        chunk = cursor.fetchmany(BATCH)
        if not chunk:
            return
        yield from (tuple(row) for row in chunk)
