"""Tenant isolation: two vendors whose partners share names and external ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.core.errors import NotFound
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.importing import import_contacts, import_partners
from partnercast.tenants.models import Contact, Partner, Segment
from partnercast.tenants.partners import get_partner, list_contacts
from partnercast.tenants.segments import load_segments_file, segment_members

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tenants"


@pytest.fixture
def both(engine: Engine, tenant_a: int, tenant_b: int, write_csv, partner_row) -> Path:
    """The same partners file (P1, P2) imported into A and B; B's P1 then renamed."""
    rows = [
        partner_row(
            external_id="P1", name="Shared Name", tier="gold", region="EMEA", languages="en"
        ),
        partner_row(external_id="P2", name="Second", tier="silver", region="NA"),
    ]
    path = write_csv("partners.csv", rows)
    for tenant_id in (tenant_a, tenant_b):
        with tenant_session(engine, tenant_id) as session:
            report = import_partners(session, path, now=utcnow())
            assert report.created == 2
    rows[0] = partner_row(
        external_id="P1", name="B's own P1", tier="gold", region="EMEA", languages="en"
    )
    rows.append(
        partner_row(
            external_id="B-ONLY", name="Only in B", tier="gold", region="EMEA", languages="en"
        )
    )
    with tenant_session(engine, tenant_b) as session:
        report = import_partners(session, write_csv("partners-b.csv", rows), now=utcnow())
        assert (report.created, report.updated, report.unchanged) == (1, 1, 1)
    return path


def partner(engine: Engine, tenant_id: int, external_id: str) -> Partner:
    with tenant_session(engine, tenant_id) as session:
        return get_partner(session, external_id)


def test_same_csv_into_two_tenants_stays_separate(engine, tenant_a, tenant_b, both) -> None:
    a1, b1 = partner(engine, tenant_a, "P1"), partner(engine, tenant_b, "P1")
    assert a1.id != b1.id
    assert (a1.tenant_id, a1.name) == (tenant_a, "Shared Name")
    assert (b1.tenant_id, b1.name) == (tenant_b, "B's own P1")
    with tenant_session(engine, tenant_a) as session:
        again = import_partners(session, both, now=utcnow())
        assert {p.external_id for p in session.exec(select(Partner)).all()} == {"P1", "P2"}
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_another_tenants_partner_is_simply_not_found(engine, tenant_a, tenant_b, both) -> None:
    b_only = partner(engine, tenant_b, "B-ONLY")
    with tenant_session(engine, tenant_a) as session:
        with pytest.raises(NotFound, match="no partner 'B-ONLY'"):
            get_partner(session, "B-ONLY")
        assert session.get(Partner, b_only.id) is None


def test_contacts_into_a_p1_leave_b_p1_alone(engine, tenant_a, tenant_b, both, write_csv):
    row = {"external_id": "C1", "email": "b@customer.example", "consent": "yes"}
    with tenant_session(engine, tenant_b) as session:
        import_contacts(session, write_csv("b.csv", [row]), "P1", now=utcnow())
    row = {"external_id": "C1", "email": "a@customer.example", "consent": "yes"}
    with tenant_session(engine, tenant_a) as session:
        report = import_contacts(session, write_csv("a.csv", [row]), "P1", now=utcnow())
    assert (report.created, report.updated) == (1, 0)

    with tenant_session(engine, tenant_b) as session:
        b_contacts = session.exec(select(Contact)).all()
        b_p1 = get_partner(session, "P1")
        assert [c.email for c in list_contacts(session, b_p1)] == ["b@customer.example"]
    with tenant_session(engine, tenant_a) as session:
        a_contacts = session.exec(select(Contact)).all()
    assert [(c.email, c.tenant_id) for c in b_contacts] == [("b@customer.example", tenant_b)]
    assert [(c.email, c.tenant_id) for c in a_contacts] == [("a@customer.example", tenant_a)]


def test_partner_column_cannot_reach_another_tenants_partner(
    engine, tenant_a, tenant_b, both, write_csv
) -> None:
    rows = [{"partner": "B-ONLY", "external_id": "C1", "email": "x@y.example", "consent": "yes"}]
    with tenant_session(engine, tenant_a) as session:
        report = import_contacts(session, write_csv("c.csv", rows), None, now=utcnow())
    assert [r.reason for r in report.rejected] == ["unknown partner 'B-ONLY'"]
    with tenant_session(engine, tenant_b) as session:
        assert session.exec(select(Contact)).all() == []


def test_named_partner_of_another_tenant_is_not_found(
    engine, tenant_a, tenant_b, both, write_csv
) -> None:
    rows = [{"external_id": "C1", "email": "x@y.example", "consent": "yes"}]
    with tenant_session(engine, tenant_a) as session, pytest.raises(NotFound):
        import_contacts(session, write_csv("c.csv", rows), "B-ONLY", now=utcnow())


def test_segment_members_are_the_tenants_own(engine, tenant_a, tenant_b, both) -> None:
    for tenant_id in (tenant_a, tenant_b):
        with tenant_session(engine, tenant_id) as session:
            load_segments_file(session, EXAMPLES / "segments.yaml", now=utcnow())
    with tenant_session(engine, tenant_a) as session:
        a_members = segment_members(session, "gold-emea")
    with tenant_session(engine, tenant_b) as session:
        b_members = segment_members(session, "gold-emea")
    assert [(p.external_id, p.tenant_id) for p in a_members] == [("P1", tenant_a)]
    assert [(p.external_id, p.name) for p in b_members] == [
        ("B-ONLY", "Only in B"),
        ("P1", "B's own P1"),
    ]


def test_another_tenants_segment_is_not_found(engine, tenant_a, tenant_b, both, tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text("segments:\n  b-only:\n    rule: {field: tier, eq: gold}\n")
    with tenant_session(engine, tenant_b) as session:
        load_segments_file(session, path, now=utcnow())
    with tenant_session(engine, tenant_a) as session:
        with pytest.raises(NotFound, match="no segment 'b-only'"):
            segment_members(session, "b-only")
        assert session.exec(select(Segment)).all() == []


def test_cli_show_never_shows_the_other_tenants_partner(cli, engine, both) -> None:
    shown_a = cli("partners", "show", "P1", "--tenant", "vendor-a")
    shown_b = cli("partners", "show", "P1", "--tenant", "vendor-b")
    assert "Shared Name" in shown_a.stdout
    assert "B's own P1" not in shown_a.stdout
    assert "B's own P1" in shown_b.stdout

    missing = cli("partners", "show", "B-ONLY", "--tenant", "vendor-a", expect=1)
    assert "no partner 'B-ONLY'" in missing.stderr
    assert "Only in B" not in missing.stdout + missing.stderr


def test_cli_lists_only_the_tenants_partners_and_contacts(cli, engine, both, write_csv) -> None:
    listed = cli("partners", "list", "--tenant", "vendor-a")
    assert "B-ONLY" not in listed.stdout
    assert "2 partners" in listed.stdout
    rows = [{"external_id": "C1", "email": "b@customer.example", "consent": "yes"}]
    cli("contacts", "import", "P1", str(write_csv("c.csv", rows)), "--tenant", "vendor-b")
    a_contacts = cli("contacts", "list", "P1", "--tenant", "vendor-a")
    assert "0 contacts of P1" in a_contacts.stdout
    assert "b@customer.example" not in a_contacts.stdout
    cli("contacts", "list", "B-ONLY", "--tenant", "vendor-a", expect=1)
