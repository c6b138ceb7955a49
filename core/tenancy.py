"""Tenant isolation: every read and write of a tenant-owned row is scoped, or it fails.

A tenant-owned table model inherits :class:`TenantOwned` (or :class:`TenantOwnedUnindexed`).
Sessions made by :func:`tenant_session` carry the tenant id; a listener adds
``tenant_id = :tid`` to every ORM query (SELECT, UPDATE, DELETE, relationship loads) that
touches a tenant-owned entity, and a flush listener refuses to write a row stamped with
another tenant. A session with no tenant scope that touches a tenant-owned entity raises
:class:`TenantScopeError` instead of returning everyone's rows: the scope fails closed.

Only :func:`system_session` (used by the engine's own cross-tenant housekeeping, such as
listing tenants to tick) may see tenant-owned rows without a scope, and it says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql import ClauseElement, Select
from sqlalchemy.sql.util import find_tables
from sqlmodel import Field, SQLModel
from sqlmodel import Session as SqlModelSession

from partnercast.core.errors import TenantScopeError

TENANT_KEY = "partnercast.tenant_id"
SYSTEM_KEY = "partnercast.system"


class TenantScoped:
    """A table model whose rows belong to one tenant: what the scope's checks look for.
    Inherit :class:`TenantOwned` or :class:`TenantOwnedUnindexed`, which add the column."""

    if TYPE_CHECKING:
        tenant_id: int
    else:
        # What the scope's criterion (with_loader_criteria) is first tried on, before it is
        # applied to each model: there only its not raising counts. Not an annotation: the
        # column is the subclasses' own.
        tenant_id = None


class TenantOwned(TenantScoped):
    """Mixin for table models whose rows belong to one tenant."""

    tenant_id: int = Field(foreign_key="tenant.id", index=True, nullable=False)


class TenantOwnedUnindexed(TenantScoped):
    """A tenant-owned table whose every lookup has a better index (one that leads with the
    tenant and goes on, or one on the dispatch or the contact): no index on the tenant
    alone, which every write of the table would keep and which the planner, before it has
    statistics, took for selective (PostgreSQL read a tenant's whole index to find a
    dispatch's ten deliveries: revision 0024)."""

    tenant_id: int = Field(foreign_key="tenant.id", nullable=False)


class TenantOwnedByParents(TenantScoped):
    """A tenant-owned table whose rows are held to their tenant by composite foreign keys,
    (tenant_id, parent_id) to each parent's (tenant_id, id): a row cannot name another
    tenant's parent, and the parents' own keys on the tenant stand for one here. The model
    declares the composite keys in its ``__table_args__``. No index on the tenant alone,
    as :class:`TenantOwnedUnindexed` (revision 0025)."""

    tenant_id: int = Field(nullable=False)


_owned_cache: tuple[int, frozenset[str]] = (-1, frozenset())


def _tenant_tables() -> frozenset[str]:
    """Names of every tenant-owned table (recomputed only when new models are mapped)."""
    global _owned_cache
    mappers = SQLModel._sa_registry.mappers
    if _owned_cache[0] != len(mappers):
        owned = frozenset(
            mapper.local_table.name
            for mapper in mappers
            if issubclass(mapper.class_, TenantScoped) and isinstance(mapper.local_table, Table)
        )
        _owned_cache = (len(mappers), owned)
    return _owned_cache[1]


def _tenant_tables_in(state: ORMExecuteState) -> tuple[set[str], set[str]]:
    """(every tenant-owned table the statement touches, those reached through a model).

    A table reached through a model (an entity in the FROM list, or a mapper the ORM
    loads) gets the tenant criterion; one named only as a plain Table would not.
    """
    statement = state.statement
    if not isinstance(statement, ClauseElement):  # every SQL statement is one
        raise TypeError(f"cannot check the tenant of {type(statement).__name__}")
    owned = _tenant_tables()
    tables = find_tables(statement, include_joins=True, include_aliases=True, include_crud=True)
    touched = {name for table in tables if (name := getattr(table, "name", None)) in owned}
    as_entities = {
        mapper.local_table.name
        for mapper in state.all_mappers
        if issubclass(mapper.class_, TenantScoped) and isinstance(mapper.local_table, Table)
    }
    if touched <= as_entities or not isinstance(statement, Select):
        return touched | as_entities, as_entities
    # Only now (a count over select_from, say) pay for resolving the FROM list.
    for from_clause in statement.get_final_froms():
        for table in find_tables(from_clause, include_joins=True, include_aliases=True):
            if getattr(table, "name", None) in owned and "parententity" in table._annotations:
                as_entities.add(table.name)
    return touched | as_entities, as_entities


@event.listens_for(Session, "do_orm_execute")
def _scope_orm_statement(state: ORMExecuteState) -> None:
    """Add the tenant criterion to every ORM statement, or refuse an unscoped one."""
    info = state.session.info
    if info.get(SYSTEM_KEY):
        return
    touched, as_entities = _tenant_tables_in(state)
    if not touched:
        return
    tenant_id = info.get(TENANT_KEY)
    if tenant_id is None:
        raise TenantScopeError(
            f"a query on tenant-owned rows ({', '.join(sorted(touched))}) "
            "was made outside a tenant scope"
        )
    unfiltered = touched - as_entities
    if unfiltered and not state.is_column_load and not state.is_relationship_load:
        # A plain Table (not an ORM entity) gets no tenant criterion: refuse rather than leak.
        raise TenantScopeError(
            "query tenant-owned tables through their models, not as plain tables: "
            + ", ".join(sorted(unfiltered))
        )
    state.statement = state.statement.options(
        with_loader_criteria(
            TenantScoped,
            lambda cls: cls.tenant_id == tenant_id,
            include_aliases=True,
            track_closure_variables=False,
        )
    )


@event.listens_for(Session, "before_flush")
def _stamp_and_check_writes(session: Session, _context: Any, _instances: Any) -> None:
    """Stamp new rows with the session's tenant; refuse rows of any other tenant."""
    if session.info.get(SYSTEM_KEY):
        return
    tenant_id = session.info.get(TENANT_KEY)
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if not isinstance(obj, TenantScoped):
            continue
        if tenant_id is None:
            raise TenantScopeError(f"{type(obj).__name__} written outside a tenant scope")
        if obj.tenant_id is None and obj in session.new:
            obj.tenant_id = tenant_id
        if obj.tenant_id != tenant_id:
            raise TenantScopeError(
                f"{type(obj).__name__} of another tenant written in tenant {tenant_id}'s scope"
            )


@contextmanager
def tenant_session(engine: Engine, tenant_id: int) -> Iterator[SqlModelSession]:
    """A session that sees and writes only ``tenant_id``'s rows. Commits on success."""
    if not isinstance(tenant_id, int) or isinstance(tenant_id, bool):
        raise TenantScopeError(f"tenant id must be an int, got {tenant_id!r}")
    with SqlModelSession(engine, expire_on_commit=False) as session:
        session.info[TENANT_KEY] = tenant_id
        with session.begin():
            yield session


@contextmanager
def plain_session(engine: Engine) -> Iterator[SqlModelSession]:
    """A session for tables that belong to no tenant (tenants themselves). Fails closed."""
    with SqlModelSession(engine, expire_on_commit=False) as session, session.begin():
        yield session


@contextmanager
def system_session(engine: Engine, *, reason: str) -> Iterator[SqlModelSession]:
    """An unscoped session for the engine's own cross-tenant housekeeping.

    ``reason`` documents at the call site why crossing tenants is right there.
    """
    if not reason:
        raise TenantScopeError("a system session needs a reason")
    with SqlModelSession(engine, expire_on_commit=False) as session:
        session.info[SYSTEM_KEY] = reason
        with session.begin():
            yield session


def session_tenant(session: Session) -> int:
    """The tenant id a session is scoped to; raises if it has none."""
    tenant_id = session.info.get(TENANT_KEY)
    if tenant_id is None:
        raise TenantScopeError("this operation needs a tenant-scoped session")
    return int(tenant_id)
