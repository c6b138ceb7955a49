"""Contacts in bulk and their consent through the API (an uploaded CSV, suppression,
erasure), a concierge token that covers some partners, and the api-tokens command."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select
from support.api_world import Client, Side

from partnercast.concierge.capacity import assign_partner
from partnercast.concierge.tasks import add_concierge
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.funnel.leads import Lead
from partnercast.tenants.access import Role
from partnercast.tenants.api_tokens import create_token
from partnercast.tenants.models import Contact, Partner, Suppression


def test_a_contact_file_is_imported_with_the_import_report(
    client: Client, sides: tuple[Side, Side], engine: Engine
) -> None:
    a, b = sides
    csv = (
        b"External ID,E-Mail,Consent,First Name\n"
        b"F1,f1@example.com,yes,Fay\n"
        b"F2,not-an-address,yes,Bad\n"
        b"F3,f3@example.com,no,Withdrawn\n"
    )
    answer = client.post(
        "/contacts/imports",
        token=a.tokens["admin"],
        files={"file": ("contacts.csv", csv)},
        data={"partner_id": str(a.partners["A1"])},
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["created"] == 2 and report["withdrawn"] == 1
    assert [r["line"] for r in report["rejected"]] == [3]
    # A partner token imports into its own partner only; another's is 404.
    answer = client.post(
        "/contacts/imports",
        token=a.tokens["partner"],
        files={"file": ("contacts.csv", csv)},
        data={"partner_id": str(a.partners["A2"])},
    )
    assert answer.status_code == 404
    answer = client.post(
        "/contacts/imports",
        token=a.tokens["admin"],
        files={"file": ("contacts.csv", b"\x00\x01binary")},
        data={"partner_id": str(a.partners["A1"])},
    )
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "file"
    with tenant_session(engine, b.tenant_id) as session:
        assert session.exec(select(Contact).where(Contact.external_id == "F1")).first() is None


def test_suppress_and_erase(client: Client, sides: tuple[Side, Side], engine: Engine) -> None:
    a, b = sides
    answer = client.post(
        "/contacts/suppressions",
        token=a.tokens["concierge"],
        json={
            "emails": ["a1c1@example.com", "A1C1@example.com", "new@example.com"],
            "reason": "asked",
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"suppressed": 2, "already": 0}
    bad = client.post(
        "/contacts/suppressions", token=a.tokens["concierge"], json={"emails": ["nope"]}
    )
    assert bad.status_code == 422
    # A partner token suppresses for its own partner only.
    mine = client.post(
        "/contacts/suppressions", token=a.tokens["partner"], json={"emails": ["x@example.com"]}
    )
    assert mine.status_code == 422 and mine.json()["errors"][0]["field"] == "body.partner_id"
    with tenant_session(engine, a.tenant_id) as session:
        session.add(
            Lead(
                partner_id=a.partners["A1"],
                email="a1c1@example.com",
                name="Ann",
                created_at=utcnow(),
                stage_changed_at=utcnow(),
            )
        )
    erased = client.post(
        "/contacts/erasures", token=a.tokens["admin"], json={"emails": ["a1c1@example.com"]}
    )
    assert erased.status_code == 200, erased.text
    result = erased.json()[0]
    assert result["contacts"] == 1 and result["leads"] == 1 and not result["erased_before"]
    with tenant_session(engine, a.tenant_id) as session:
        contact = session.exec(select(Contact).where(Contact.id == a.contacts["A1C1"])).one()
        assert contact.email == ""
        assert (
            session.exec(select(Suppression).where(Suppression.email == "a1c1@example.com")).first()
            is None
        )
    with tenant_session(engine, b.tenant_id) as session:
        assert session.exec(select(Contact).where(Contact.id == b.contacts["B1C1"])).one().email


def test_a_concierge_token_sees_the_partners_its_concierge_covers(
    client: Client, sides: tuple[Side, Side], engine: Engine
) -> None:
    a, _ = sides
    with tenant_session(engine, a.tenant_id) as session:
        concierge = add_concierge(session, "Cleo", languages=["en"], now=utcnow())
        assert concierge.id is not None
        partner = session.exec(select(Partner).where(Partner.id == a.partners["A2"])).one()
        partner.languages = ["en"]
        session.add(partner)
        assign_partner(session, partner, concierge, now=utcnow())
        _, token = create_token(
            session, name="cleo", role=Role.CONCIERGE, concierge_id=concierge.id, now=utcnow()
        )
    listed = client.get("/partners", token=token).json()["data"]
    assert [p["id"] for p in listed] == [a.partners["A2"]]
    assert client.get(f"/partners/{a.partners['A1']}", token=token).status_code == 404
    contacts = client.get("/contacts", token=token).json()["data"]
    assert {c["partner_id"] for c in contacts} == {a.partners["A2"]}
    answer = client.post(
        "/partners",
        token=token,
        json={
            "external_id": "NEW",
            "name": "New",
            "legal_name": "New Ltd",
            "postal_address": "2 Rd",
        },
    )
    assert answer.status_code == 403


def test_the_api_tokens_command(cli: Any, client: Client, sides: tuple[Side, Side]) -> None:
    made = cli(
        "api-tokens", "create", "crm sync", "--role", "vendor-marketer", "--tenant", "vendor-a"
    )
    token = made.stdout.strip()
    assert token.startswith("pct_") and "\n" not in token
    assert token not in made.stderr and "shown this once" in made.stderr
    assert client.get("/tenant", token=token).json()["token"]["role"] == "vendor_marketer"
    listed = cli("api-tokens", "list", "--tenant", "vendor-a").stdout
    public_id = token[4:16]
    assert public_id in listed and token[17:] not in listed and "crm sync" in listed
    partner = cli(
        "api-tokens",
        "create",
        "portal",
        "--role",
        "partner",
        "--partner",
        "A1",
        "--tenant",
        "vendor-a",
        "--expires",
        "30d",
    ).stdout.strip()
    assert client.get("/partners", token=partner).json()["data"][0]["external_id"] == "A1"
    cli("api-tokens", "revoke", public_id, "--tenant", "vendor-a")
    assert client.get("/tenant", token=token).status_code == 401
    # Another tenant's token id is not found; bad input is one line.
    wrong = cli("api-tokens", "revoke", public_id, "--tenant", "vendor-b", expect=1)
    assert "no API token" in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
    bad = cli("api-tokens", "create", "x", "--role", "owner", "--tenant", "vendor-a", expect=1)
    assert "--role" in bad.stderr and "Traceback" not in bad.stderr
