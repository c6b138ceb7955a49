"""Consent as the law sees it: withdrawals in imports, suppress and erase, the tenant's
unsubscribe scope, consent records and their export. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io

import pytest
from conftest import make_tenant
from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.importing import Rejection, import_contacts, import_partners
from partnercast.tenants.models import (
    ConsentRecord,
    Contact,
    Erasure,
    Partner,
    PartnerSuppression,
    Suppression,
    Tenant,
)
from partnercast.tenants.suppressions import (
    email_hash,
    erase,
    suppress_by_command,
    suppressed_among,
)

PARTNER_BASE = {
    "external_id": "P1",
    "name": "Nordlicht Systemhaus",
    "legal_name": "Nordlicht Systemhaus GmbH",
    "postal_address": "Speicherstadt 12, 20457 Hamburg",
}

ANNA = "anna@brauhaus.example"


def contact(**changes: str) -> dict[str, str]:
    return {"external_id": "C1", "email": ANNA, "first_name": "Anna", "consent": "yes", **changes}


@pytest.fixture
def world(any_engine: Engine, tmp_path, write_csv) -> tuple[Engine, int, dict[str, int]]:
    """A tenant with partners P1 and P2, on SQLite or PostgreSQL."""
    tenant_id = make_tenant(any_engine, "vendor-a")
    rows = [{**PARTNER_BASE, "external_id": key} for key in ("P1", "P2")]
    with tenant_session(any_engine, tenant_id) as session:
        import_partners(session, write_csv("partners.csv", rows), now=utcnow())
        partners = {p.external_id: p.id for p in session.exec(select(Partner)).all()}
    return any_engine, tenant_id, partners


def run(engine: Engine, tenant_id: int, path, partner: str = "P1"):
    with tenant_session(engine, tenant_id) as session:
        return import_contacts(session, path, partner, now=utcnow())


def blocked(engine: Engine, tenant_id: int, partner_id: int, email: str = ANNA) -> bool:
    with tenant_session(engine, tenant_id) as session:
        return bool(suppressed_among(session, [email], partner_id=partner_id))


def records(engine: Engine, tenant_id: int) -> list[ConsentRecord]:
    with tenant_session(engine, tenant_id) as session:
        return list(session.exec(select(ConsentRecord).order_by(ConsentRecord.id)).all())


def set_scope(engine: Engine, tenant_id: int, scope: str) -> None:
    with plain_session(engine) as session:
        session.get(Tenant, tenant_id).unsubscribe_scope = scope


def test_withdrawal_in_an_import_suppresses_at_once(world, write_csv) -> None:
    engine, tenant_id, partners = world
    first = run(engine, tenant_id, write_csv("a.csv", [contact()]))
    assert (first.created, first.withdrawn) == (1, 0)
    assert not blocked(engine, tenant_id, partners["P1"])
    withdrawn = run(engine, tenant_id, write_csv("b.csv", [contact(consent="nein")]))
    assert (withdrawn.updated, withdrawn.withdrawn, withdrawn.rejected) == (1, 1, [])
    with tenant_session(engine, tenant_id) as session:
        stored = session.exec(select(Contact)).one()
        suppression = session.exec(select(Suppression)).one()
    assert stored.consent is False
    assert (suppression.email, suppression.reason) == (ANNA, "withdrawn")
    assert suppression.source == "import b.csv, line 2"
    # vendor scope (the default): every partner's mail to the address stops
    assert blocked(engine, tenant_id, partners["P1"]) and blocked(engine, tenant_id, partners["P2"])
    kept = records(engine, tenant_id)
    assert [(r.granted, r.method, r.source) for r in kept] == [
        (True, "import", "a.csv, line 2"),
        (False, "import", "b.csv, line 2"),
    ]
    again = run(engine, tenant_id, write_csv("b.csv", [contact(consent="nein")]))
    assert (again.unchanged, again.withdrawn) == (1, 0)  # nothing new to record
    assert len(records(engine, tenant_id)) == 2


def test_consent_columns_are_recorded(world, write_csv) -> None:
    engine, tenant_id, _partners = world
    row = contact(
        consent_date="2026-03-01 10:30",
        consent_text="Ja, Brauhaus darf mir E-Mails schicken.",
        consent_source="trade fair form",
    )
    assert run(engine, tenant_id, write_csv("c.csv", [row])).created == 1
    (record,) = records(engine, tenant_id)
    assert record.occurred_at.isoformat() == "2026-03-01T10:30:00+00:00"
    assert record.text == "Ja, Brauhaus darf mir E-Mails schicken."
    assert record.source == "c.csv, line 2: trade fair form"
    assert record.email_hash == email_hash(tenant_id, ANNA)
    bad = run(engine, tenant_id, write_csv("d.csv", [contact(consent_date="01/03/26")]))
    assert bad.rejected == [Rejection(2, "consent_date '01/03/26' is not an ISO date (2026-03-31)")]


def test_partner_scope_stops_only_that_partners_mail(world, write_csv) -> None:
    engine, tenant_id, partners = world
    set_scope(engine, tenant_id, "partner")
    run(engine, tenant_id, write_csv("p1.csv", [contact(consent="yes")]), "P1")
    run(engine, tenant_id, write_csv("p2.csv", [contact(consent="yes")]), "P2")
    report = run(engine, tenant_id, write_csv("w.csv", [contact(consent="opted out")]), "P1")
    assert report.withdrawn == 1
    assert blocked(engine, tenant_id, partners["P1"])
    assert not blocked(engine, tenant_id, partners["P2"])
    with tenant_session(engine, tenant_id) as session:
        assert session.exec(select(Suppression)).all() == []
        (row,) = session.exec(select(PartnerSuppression)).all()
    assert (row.partner_id, row.email, row.reason) == (partners["P1"], ANNA, "withdrawn")


def test_suppress_by_command_for_all_or_one_partner(world) -> None:
    engine, tenant_id, partners = world
    with tenant_session(engine, tenant_id) as session:
        added = suppress_by_command(
            session, ["Bob@X.example", "bob@x.example"], partner_id=None, reason="asked by phone",
            now=utcnow(),
        )  # fmt: skip
        again = suppress_by_command(
            session, ["bob@x.example"], partner_id=None, reason="manual", now=utcnow()
        )
        one = suppress_by_command(
            session, ["eve@y.example"], partner_id=partners["P2"], reason="manual", now=utcnow()
        )
    assert (added, again, one) == (1, 0, 1)
    assert blocked(engine, tenant_id, partners["P1"], "bob@x.example")
    assert blocked(engine, tenant_id, partners["P2"], "eve@y.example")
    assert not blocked(engine, tenant_id, partners["P1"], "eve@y.example")
    assert [(r.email, r.method, r.text) for r in records(engine, tenant_id)] == [
        ("bob@x.example", "command", "asked by phone"),
        ("eve@y.example", "command", "manual"),
    ]


def test_erasure_keeps_only_a_hash_and_a_later_import_is_refused(world, write_csv) -> None:
    engine, tenant_id, partners = world
    other_tenant = make_tenant(engine, "vendor-b")
    with tenant_session(engine, other_tenant) as session:
        import_partners(session, write_csv("pb.csv", [PARTNER_BASE]), now=utcnow())
    run(engine, tenant_id, write_csv("a.csv", [contact(last_name="Schmidt")]), "P1")
    run(engine, tenant_id, write_csv("b.csv", [contact(external_id="X7")]), "P2")
    run(engine, other_tenant, write_csv("c.csv", [contact()]), "P1")
    with tenant_session(engine, tenant_id) as session:
        suppress_by_command(session, [ANNA], partner_id=None, reason="manual", now=utcnow())
        result = erase(session, "  ANNA@brauhaus.example ", now=utcnow())
    assert (result.contacts, result.suppressions, result.already) == (2, 1, False)
    with tenant_session(engine, tenant_id) as session:
        contacts = session.exec(select(Contact)).all()
        assert {(c.email, c.first_name, c.last_name, c.consent) for c in contacts} == {
            ("", "", "", False)
        }
        assert all(c.external_id == f"erased-{c.id}" for c in contacts)
        assert session.exec(select(Suppression)).all() == []
        (erasure,) = session.exec(select(Erasure)).all()
        assert erasure.email_hash == email_hash(tenant_id, ANNA)
        kept = session.exec(select(ConsentRecord)).all()
    assert kept and all(r.email == "" for r in kept)
    assert all(r.email_hash == erasure.email_hash for r in kept)
    assert blocked(engine, tenant_id, partners["P1"])  # no send reaches it
    refused = run(engine, tenant_id, write_csv("again.csv", [contact()]), "P1")
    assert refused.rejected == [
        Rejection(2, "this address was erased on request; it is not imported")
    ]
    # tenant-scoped: the other vendor's contact is untouched, and still imports
    with tenant_session(engine, other_tenant) as session:
        assert session.exec(select(Contact.email)).all() == [ANNA]
    assert run(engine, other_tenant, write_csv("d.csv", [contact()]), "P1").unchanged == 1
    with tenant_session(engine, tenant_id) as session:
        assert erase(session, ANNA, now=utcnow()).already is True


def test_cli_suppress_erase_and_consent_export(cli, engine, tenant_a, write_csv, tmp_path):
    cli("partners", "import", str(write_csv("p.csv", [PARTNER_BASE])), "--tenant", "vendor-a")
    payload = '=HYPERLINK("http://evil","x")'
    rows = [
        contact(consent_text=payload),
        contact(external_id="C2", email="bob@x.example", consent="Y"),
    ]
    cli("contacts", "import", "P1", str(write_csv("c.csv", rows)), "--tenant", "vendor-a")
    done = cli("contacts", "suppress", "bob@x.example", "--tenant", "vendor-a")
    assert "suppressed 1 of 1 addresses for every partner" in done.stdout
    one = cli("contacts", "suppress", "eve@y.example", "--partner", "P1", "--tenant", "vendor-a")
    assert "for partner P1" in one.stdout
    bad = cli("contacts", "suppress", "nobody", "--tenant", "vendor-a", expect=1)
    assert "not an email address: 'nobody'" in bad.stderr
    erased = cli("contacts", "erase", ANNA, "--tenant", "vendor-a")
    assert f"erased {ANNA}: 1 contacts anonymised" in erased.stdout
    out = tmp_path / "consents.csv"
    cli("contacts", "consents", "--tenant", "vendor-a", "--out", str(out))
    exported = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [(r["consent"], r["method"], r["email"]) for r in exported] == [
        ("granted", "import", ""),  # Anna's, erased: only the hash is left
        ("granted", "import", "bob@x.example"),
        ("withdrawn", "command", "bob@x.example"),
        ("withdrawn", "command", "eve@y.example"),
        ("withdrawn", "erasure", ""),
    ]
    assert exported[0]["text"] == "'" + payload  # a spreadsheet does not run it
    assert exported[0]["email_sha256"] == exported[4]["email_sha256"] != ""
    assert exported[1]["partner"] == "P1"
    printed = cli("contacts", "consents", "--tenant", "vendor-a")
    assert printed.stdout.startswith("recorded_at,occurred_at,consent,method,partner")


def test_tenants_set_unsubscribe_scope(cli, engine, tenant_a) -> None:
    done = cli("tenants", "set", "vendor-a", "--unsubscribe-scope", "partner")
    assert "tenant vendor-a: unsubscribe scope partner (was vendor)" in done.stdout
    listed = cli("tenants", "list")
    assert "partner" in listed.stdout
    bad = cli("tenants", "set", "vendor-a", "--unsubscribe-scope", "world", expect=1)
    assert "'world' is not an unsubscribe scope (use vendor or partner)" in bad.stderr
    neither = cli("tenants", "set", "vendor-a", expect=1)
    assert "give --delivery-guarantee or --unsubscribe-scope" in neither.stderr
