"""Tenant scoping fails closed, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.core.errors import TenantScopeError
from partnercast.core.tenancy import plain_session, system_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.models import Contact, Partner, Tenant


def _twins(engine: Engine) -> tuple[int, int, int, int]:
    """Two tenants, each with a partner named 'Same' with external id 'P1'."""
    with plain_session(engine) as session:
        a, b = (
            Tenant(slug="a", name="A", created_at=utcnow()),
            Tenant(slug="b", name="B", created_at=utcnow()),
        )
        session.add_all([a, b])
    ids = []
    for tenant in (a, b):
        with tenant_session(engine, tenant.id) as session:
            partner = Partner(
                external_id="P1",
                name="Same",
                legal_name=f"{tenant.name} Ltd",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
            session.add(partner)
            session.flush()
            session.add(
                Contact(
                    partner_id=partner.id,
                    external_id="C1",
                    email="x@example.com",
                    consent=True,
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
        ids.append(partner.id)
    return a.id, b.id, ids[0], ids[1]


def test_each_tenant_sees_only_its_rows(any_engine: Engine) -> None:
    a, _b, partner_a, partner_b = _twins(any_engine)
    with tenant_session(any_engine, a) as session:
        partners = session.exec(select(Partner)).all()
        assert [p.id for p in partners] == [partner_a]
        assert session.get(Partner, partner_b) is None  # B's id, asked for as A: not found
        assert session.exec(select(Contact).where(Contact.partner_id == partner_b)).all() == []


def test_bulk_update_and_delete_stay_inside_the_tenant(any_engine: Engine) -> None:
    a, b, _, partner_b = _twins(any_engine)
    with tenant_session(any_engine, a) as session:
        session.exec(update(Partner).values(name="changed by A"))
        session.exec(delete(Contact))
    with tenant_session(any_engine, b) as session:
        assert session.get(Partner, partner_b).name == "Same"
        assert len(session.exec(select(Contact)).all()) == 1


def test_unscoped_query_on_tenant_rows_raises(any_engine: Engine) -> None:
    _twins(any_engine)
    with pytest.raises(TenantScopeError), plain_session(any_engine) as session:
        session.exec(select(Partner)).all()


def test_writing_another_tenants_row_raises_and_writes_nothing(any_engine: Engine) -> None:
    a, b, _, _ = _twins(any_engine)
    with pytest.raises(TenantScopeError), tenant_session(any_engine, a) as session:
        session.add(
            Partner(
                tenant_id=b,
                external_id="P2",
                name="Sneaky",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
    with system_session(any_engine, reason="test counts every tenant's partners") as session:
        assert len(session.exec(select(Partner)).all()) == 2


def test_new_rows_are_stamped_with_the_scope(any_engine: Engine) -> None:
    a, _, _, _ = _twins(any_engine)
    with tenant_session(any_engine, a) as session:
        partner = Partner(external_id="P9", name="New", created_at=utcnow(), updated_at=utcnow())
        session.add(partner)
    assert partner.tenant_id == a


def test_a_tenant_scope_must_be_an_int(engine: Engine) -> None:
    with pytest.raises(TenantScopeError), tenant_session(engine, "1"):  # type: ignore[arg-type]
        pass


def test_counting_through_select_from_is_scoped_or_refused(any_engine: Engine) -> None:
    from sqlalchemy import func

    a, _, _, _ = _twins(any_engine)
    with tenant_session(any_engine, a) as session:
        assert session.exec(select(func.count()).select_from(Contact)).one() == 1
    with pytest.raises(TenantScopeError), plain_session(any_engine) as session:
        session.exec(select(func.count()).select_from(Contact)).one()


def test_plain_tables_of_tenant_rows_are_refused(any_engine: Engine) -> None:
    from sqlalchemy import func

    a, _, _, _ = _twins(any_engine)
    with (
        pytest.raises(TenantScopeError, match="through their models"),
        tenant_session(any_engine, a) as session,
    ):
        session.exec(select(func.count()).select_from(Contact.__table__)).one()


def test_a_released_savepoint_still_rolls_back_with_its_transaction(any_engine: Engine) -> None:
    a, _, _, _ = _twins(any_engine)
    with pytest.raises(RuntimeError), tenant_session(any_engine, a) as session:
        with session.begin_nested():
            session.add(
                Partner(
                    external_id="P-savepoint",
                    name="kept only if committed",
                    created_at=utcnow(),
                    updated_at=utcnow(),
                )
            )
        raise RuntimeError("the outer transaction fails")
    with tenant_session(any_engine, a) as session:
        assert (
            session.exec(select(Partner).where(Partner.external_id == "P-savepoint")).first()
            is None
        )


def test_every_tenant_owned_model_gets_the_tenant_criterion(engine: Engine) -> None:
    """Whichever mixin gives a model its tenant column (TenantOwned, TenantOwnedUnindexed
    where another index serves, or TenantOwnedByParents where composite foreign keys hold
    it), its queries are scoped."""
    from sqlalchemy import event
    from sqlmodel import SQLModel

    from partnercast.core.tenancy import (
        TenantOwned,
        TenantOwnedByParents,
        TenantOwnedUnindexed,
        TenantScoped,
    )

    models = [
        mapper.class_
        for mapper in SQLModel._sa_registry.mappers
        if issubclass(mapper.class_, TenantScoped)
    ]
    kinds = {
        kind: sum(issubclass(m, kind) for m in models)
        for kind in (TenantOwned, TenantOwnedUnindexed, TenantOwnedByParents)
    }
    assert all(count >= 1 for count in kinds.values()), kinds  # every kind in use
    with plain_session(engine) as session:
        tenant = Tenant(slug="only", name="Only", created_at=utcnow())
        session.add(tenant)
    sent: list[str] = []

    def keep(_conn, _cursor, statement: str, *_args: object) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", keep)
    try:
        with tenant_session(engine, tenant.id) as session:
            for model in models:
                sent.clear()
                session.exec(select(model).limit(1)).all()
                where = sent[-1].split("WHERE", 1)[-1]
                assert f"{model.__tablename__}.tenant_id = " in where, (model, sent[-1])
    finally:
        event.remove(engine, "before_cursor_execute", keep)
