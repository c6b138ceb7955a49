"""The import's driver-level writes and reads (tenants/bulk.py): rows stored exactly as the
ORM stores them, stamped and filtered with the session's own tenant. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import make_tenant
from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.core.errors import TenantScopeError
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.tenants.bulk import insert_rows, select_rows
from partnercast.tenants.models import ConsentRecord, Partner

AT = datetime(2026, 3, 31, 9, 30, 15, 123456, tzinfo=UTC)


def _partner(engine: Engine, tenant_id: int) -> int:
    with tenant_session(engine, tenant_id) as session:
        partner = Partner(external_id="P1", name="N", created_at=AT, updated_at=AT)
        session.add(partner)
        session.flush()
        assert partner.id is not None
        return partner.id


def test_rows_are_stored_as_the_orm_stores_them_in_the_sessions_tenant(
    any_engine: Engine,
) -> None:
    mine, other = make_tenant(any_engine, "vendor-a"), make_tenant(any_engine, "vendor-b")
    partner_id = _partner(any_engine, mine)
    columns = ("partner_id", "email", "email_hash", "granted", "occurred_at", "method",
               "text", "source", "recorded_at")  # fmt: skip
    later = datetime(2026, 4, 1, tzinfo=UTC)
    rows = [
        (partner_id, "a@x.example", "h1", True, AT, "import", "Ja, gern", "f.csv, line 2", AT),
        (partner_id, "b@x.example", "h2", False, later, "import", "", "f.csv, line 3", AT),
    ]
    with tenant_session(any_engine, mine) as session:
        assert insert_rows(session, ConsentRecord, columns, rows) == 2
    with tenant_session(any_engine, mine) as session:
        # The same row through the ORM, beside them.
        session.add(ConsentRecord(partner_id=partner_id, email="c@x.example", email_hash="h3",
                                  granted=True, occurred_at=AT, method="import",
                                  recorded_at=AT))  # fmt: skip
    with tenant_session(any_engine, mine) as session:
        stored = session.exec(select(ConsentRecord).order_by(ConsentRecord.email)).all()
        assert [
            (r.tenant_id, r.email, r.granted, r.occurred_at, r.recorded_at) for r in stored
        ] == [
            (mine, "a@x.example", True, stored[2].occurred_at, stored[2].recorded_at),
            (mine, "b@x.example", False, stored[1].occurred_at, stored[2].recorded_at),
            (mine, "c@x.example", True, stored[2].occurred_at, stored[2].recorded_at),
        ]
        assert stored[1].occurred_at.replace(tzinfo=None) == later.replace(tzinfo=None)
        assert stored[0].occurred_at == stored[2].occurred_at  # microseconds and all
        assert stored[0].text == "Ja, gern"
        emails = sorted(row[0] for row in select_rows(session, ConsentRecord, ("email",)))
        assert emails == ["a@x.example", "b@x.example", "c@x.example"]
        assert [row[0] for row in select_rows(
            session, ConsentRecord, ("email",), where=[("granted", "=", False)]
        )] == ["b@x.example"]  # fmt: skip
    with tenant_session(any_engine, other) as session:
        assert list(select_rows(session, ConsentRecord, ("email",))) == []


def test_a_session_without_a_tenant_writes_and_reads_nothing(engine: Engine) -> None:
    make_tenant(engine, "vendor-a")
    with plain_session(engine) as session:
        with pytest.raises(TenantScopeError):
            insert_rows(session, ConsentRecord, ("email_hash",), [("h",)])
        with pytest.raises(TenantScopeError):
            list(select_rows(session, ConsentRecord, ("email",)))
    with tenant_session(engine, 1) as session, pytest.raises(ValueError):
        list(select_rows(session, ConsentRecord, ("email",), where=[("id", "; --", 1)]))


def test_a_contact_another_import_wrote_first_is_rejected_and_the_rest_kept(
    any_engine: Engine, tmp_path, write_csv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between reading the stored contacts and writing its chunk, another import stores
    C2: the chunk's one statement fails on the unique key, so its rows go one by one; C2
    is rejected with the database's reason, C1 and C3 are kept with their consent records."""
    from partnercast.tenants import importing
    from partnercast.tenants.models import Contact

    tenant_id = make_tenant(any_engine, "vendor-a")
    partner_id = _partner(any_engine, tenant_id)
    load = importing._Known.load

    def load_then_lose_a_race(session, named, present):  # type: ignore[no-untyped-def]
        known = load(session, named, present)
        columns = ("partner_id", "external_id", "email", "first_name", "last_name", "company",
                   "locale", "consent", "created_at", "updated_at")  # fmt: skip
        row = (partner_id, "C2", "other@x.example", "", "", "", "en", True, AT, AT)
        insert_rows(session, Contact, columns, [row])
        return known

    monkeypatch.setattr(importing._Known, "load", staticmethod(load_then_lose_a_race))
    rows = [
        {"external_id": key, "email": f"{key.lower()}@x.example", "consent": "yes"}
        for key in ("C1", "C2", "C3")
    ]
    with tenant_session(any_engine, tenant_id) as session:
        report = importing.import_contacts(session, write_csv("c.csv", rows), "P1", now=AT)
    assert report.created == 2
    assert [(r.line, r.reason.startswith("not saved: ")) for r in report.rejected] == [(3, True)]
    with tenant_session(any_engine, tenant_id) as session:
        stored = {c.external_id: c.email for c in session.exec(select(Contact)).all()}
        records = session.exec(select(ConsentRecord.email)).all()
    assert stored == {"C1": "c1@x.example", "C2": "other@x.example", "C3": "c3@x.example"}
    assert sorted(records) == ["c1@x.example", "c3@x.example"]
