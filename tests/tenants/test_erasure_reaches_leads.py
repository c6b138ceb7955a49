"""`contacts erase` reaches the funnel's leads too, in the tenant that asked only."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.core.tenancy import tenant_session
from partnercast.funnel.leads import Lead, add_lead
from partnercast.tenants.models import Partner

ANNA = "Anna@Brauhaus.example"
AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _partner_with_a_lead(engine: Engine, tenant_id: int, cli, slug: str, write_csv) -> None:
    row = {
        "external_id": "P1",
        "name": "Nordlicht",
        "legal_name": "Nordlicht GmbH",
        "postal_address": "Hafenstr. 1, 20457 Hamburg",
    }
    cli("partners", "import", str(write_csv(f"{slug}.csv", [row])), "--tenant", slug)
    with tenant_session(engine, tenant_id) as session:
        partner = session.exec(select(Partner)).one()
        assert partner.id is not None
        lead = Lead(
            partner_id=partner.id,
            email=ANNA.lower(),
            name="Anna Brauer",
            company="Brauhaus KG",
            message="Call me on +49 30 1234567",
            stage="sql",
            created_at=AT,
            stage_changed_at=AT,
        )
        add_lead(session, lead=lead)


def _leads(engine: Engine, tenant_id: int) -> list[tuple[str, str, str, str, str]]:
    with tenant_session(engine, tenant_id) as session:
        leads = session.exec(select(Lead)).all()
        return [(x.email, x.name, x.company, x.message, x.stage) for x in leads]


def test_erasing_an_address_anonymises_its_leads_and_no_other_tenants(
    cli, engine: Engine, tenant_a: int, tenant_b: int, write_csv
) -> None:
    _partner_with_a_lead(engine, tenant_a, cli, "vendor-a", write_csv)
    _partner_with_a_lead(engine, tenant_b, cli, "vendor-b", write_csv)
    done = cli("contacts", "erase", ANNA, "--tenant", "vendor-a")
    assert ", 1 leads anonymised" in done.stdout
    assert _leads(engine, tenant_a) == [("", "", "", "", "sql")]  # the funnel still counts it
    assert _leads(engine, tenant_b) == [
        (ANNA.lower(), "Anna Brauer", "Brauhaus KG", "Call me on +49 30 1234567", "sql")
    ]
