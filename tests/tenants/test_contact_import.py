"""Contact CSV import: one partner or a partner column, consent, locales, rejections."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.core.errors import NotFound, UserError
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.importing import Rejection, import_contacts, import_partners
from partnercast.tenants.models import Contact, Partner, Tenant

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tenants"


@pytest.fixture
def partners(engine: Engine, tenant_a: int, write_csv, partner_row) -> dict[str, int]:
    """Partners P1 and P2 of tenant A, by external id."""
    rows = [partner_row(external_id="P1"), partner_row(external_id="P2", name="Two")]
    with tenant_session(engine, tenant_a) as session:
        import_partners(session, write_csv("partners.csv", rows), now=utcnow())
        return {p.external_id: p.id for p in session.exec(select(Partner)).all()}


def contact(**changes: str) -> dict[str, str]:
    row = {
        "external_id": "C1",
        "email": "anna@brauhaus.example",
        "first_name": "Anna",
        "last_name": "Schmidt",
        "company": "Brauhaus",
        "locale": "de",
        "consent": "yes",
    }
    return {**row, **changes}


def run(engine: Engine, tenant_id: int, path: Path, partner: str | None):
    with tenant_session(engine, tenant_id) as session:
        return import_contacts(session, path, partner, now=utcnow())


def contacts_of(engine: Engine, tenant_id: int) -> dict[tuple[int, str], Contact]:
    with tenant_session(engine, tenant_id) as session:
        return {(c.partner_id, c.external_id): c for c in session.exec(select(Contact)).all()}


def test_imports_and_normalises(engine, tenant_a, partners, write_csv) -> None:
    rows = [
        contact(external_id="C1", email=" Anna@Brauhaus.EXAMPLE ", locale="de-ch"),
        contact(external_id="C2", email="jonas@elbe.example", locale="", consent="TRUE"),
        contact(external_id="C3", email="lea@hanse.example", locale="en_GB", consent="1"),
    ]
    report = run(engine, tenant_a, write_csv("c.csv", rows), "P1")
    assert (report.created, report.updated, report.unchanged, report.rejected) == (3, 0, 0, [])

    stored = contacts_of(engine, tenant_a)
    first = stored[(partners["P1"], "C1")]
    assert (first.email, first.locale, first.consent) == ("Anna@brauhaus.example", "de_CH", True)
    assert stored[(partners["P1"], "C2")].locale == "en"  # the tenant's default locale
    assert stored[(partners["P1"], "C3")].locale == "en_GB"


def test_empty_locale_takes_the_tenants_default(engine, tenant_a, partners, write_csv) -> None:
    with plain_session(engine) as session:
        session.get(Tenant, tenant_a).default_locale = "de"
    run(engine, tenant_a, write_csv("c.csv", [contact(locale="")]), "P1")
    assert contacts_of(engine, tenant_a)[(partners["P1"], "C1")].locale == "de"


def test_second_import_changes_nothing(engine, tenant_a, partners, write_csv) -> None:
    rows = [contact(external_id=f"C{i}", email=f"c{i}@brauhaus.example") for i in range(5)]
    path = write_csv("c.csv", rows)
    run(engine, tenant_a, path, "P1")
    before = {key: c.model_dump() for key, c in contacts_of(engine, tenant_a).items()}
    again = run(engine, tenant_a, path, "P1")
    after = {key: c.model_dump() for key, c in contacts_of(engine, tenant_a).items()}
    assert (again.created, again.updated, again.unchanged) == (0, 0, 5)
    assert after == before


def test_changed_row_is_updated(engine, tenant_a, partners, write_csv) -> None:
    run(engine, tenant_a, write_csv("c.csv", [contact()]), "P1")
    old = contacts_of(engine, tenant_a)[(partners["P1"], "C1")]
    report = run(engine, tenant_a, write_csv("c2.csv", [contact(company="Brauhaus AG")]), "P1")
    new = contacts_of(engine, tenant_a)[(partners["P1"], "C1")]
    assert (report.updated, new.company, new.id) == (1, "Brauhaus AG", old.id)
    assert new.updated_at > old.updated_at


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"email": "bob@"}, "bad email 'bob@': There must be something after the @-sign."),
        ({"email": ""}, "email is empty"),
        ({"locale": "xx_YY"}, "unknown locale 'xx_YY'"),
        ({"locale": "und"}, "unknown locale 'und'"),
        ({"consent": ""}, "no consent given (the consent cell is empty: write yes or no)"),
        ({"consent": "maybe"}, "consent 'maybe' is not a yes or a no"),
        ({"external_id": ""}, "external_id is empty"),
        ({"first_name": "x" * 101}, "first_name is longer than 100 characters"),
    ],
)
def test_bad_row_is_rejected(engine, tenant_a, partners, write_csv, changes, reason) -> None:
    second = {"external_id": "C2", "email": "jonas@elbe.example", **changes}
    rows = [contact(external_id="C1"), contact(**second)]
    report = run(engine, tenant_a, write_csv("c.csv", rows), "P1")
    assert report.created == 1
    assert len(report.rejected) == 1
    assert report.rejected[0].line == 3
    assert report.rejected[0].reason.startswith(reason)
    assert set(contacts_of(engine, tenant_a)) == {(partners["P1"], "C1")}


def test_duplicate_external_id_names_the_first_line(engine, tenant_a, partners, write_csv) -> None:
    rows = [
        contact(external_id="C1"),
        contact(external_id="C2", email="jonas@elbe.example"),
        contact(external_id="C1", email="lea@hanse.example"),
    ]
    report = run(engine, tenant_a, write_csv("c.csv", rows), "P1")
    assert report.rejected == [Rejection(4, "duplicate external_id, first seen on line 2")]


def test_sample_file_is_imported_as_its_readme_says(engine, tenant_a) -> None:
    with tenant_session(engine, tenant_a) as session:
        import_partners(session, EXAMPLES / "partners.csv", now=utcnow())
        report = import_contacts(session, EXAMPLES / "contacts.csv", "P1001", now=utcnow())
    assert (report.created, report.withdrawn) == (18, 1)  # line 12 withdrew its consent
    assert [(r.line, r.reason.split(":")[0]) for r in report.rejected] == [
        (7, "bad email 'bob@'"),
        (9, "unknown locale 'xx_YY'"),
    ]


def test_unknown_partner_writes_nothing(engine, tenant_a, partners, write_csv) -> None:
    with pytest.raises(NotFound, match="no partner 'P9'"):
        run(engine, tenant_a, write_csv("c.csv", [contact()]), "P9")
    assert contacts_of(engine, tenant_a) == {}


def test_partner_column_names_each_rows_partner(engine, tenant_a, partners, write_csv) -> None:
    rows = [
        {**contact(external_id="C1"), "partner": "P1"},
        {**contact(external_id="C1", email="other@x.example"), "partner": "P2"},
        {**contact(external_id="C2", email="c2@x.example"), "partner": "P9"},
        {**contact(external_id="C3", email="c3@x.example"), "partner": ""},
        {**contact(external_id="C1", email="c4@x.example"), "partner": "P2"},
    ]
    report = run(engine, tenant_a, write_csv("c.csv", rows), None)
    assert report.created == 2
    assert report.rejected == [
        Rejection(4, "unknown partner 'P9'"),
        Rejection(5, "partner is empty"),
        Rejection(6, "duplicate external_id, first seen on line 3"),
    ]
    stored = contacts_of(engine, tenant_a)
    assert stored[(partners["P2"], "C1")].email == "other@x.example"
    assert stored[(partners["P1"], "C1")].email == "anna@brauhaus.example"


def test_partner_column_is_required_without_a_partner(engine, tenant_a, partners, write_csv):
    with pytest.raises(UserError, match="missing required columns partner"):
        run(engine, tenant_a, write_csv("c.csv", [contact()]), None)


def test_partner_column_with_a_named_partner_is_refused(
    engine, tenant_a, partners, write_csv
) -> None:
    path = write_csv("c.csv", [{**contact(), "partner": "P1"}])
    with pytest.raises(UserError, match=r"has a partner column and a partner is named; .*'-'"):
        run(engine, tenant_a, path, "P1")
    assert contacts_of(engine, tenant_a) == {}


def test_missing_consent_column_refuses_the_file(engine, tenant_a, partners, write_csv) -> None:
    row = contact()
    del row["consent"]
    with pytest.raises(UserError, match="missing required columns consent"):
        run(engine, tenant_a, write_csv("c.csv", [row]), "P1")


def test_reimport_still_finds_duplicates_and_changes(engine, tenant_a, partners, write_csv):
    """Rows a re-import finds as stored skip the checks; a repeated row, a changed one and
    one taking another's address are still seen."""
    rows = [contact(external_id="C1"), contact(external_id="C2", email="jonas@elbe.example")]
    run(engine, tenant_a, write_csv("c.csv", rows), "P1")
    again = [
        *rows,
        contact(external_id="C1"),
        contact(external_id="C3", email="jonas@elbe.example"),
        contact(external_id="C2", email="jonas@elbe.example", company="Elbe AG"),
    ]
    report = run(engine, tenant_a, write_csv("again.csv", again), "P1")
    assert (report.unchanged, report.updated, report.created) == (2, 0, 0)
    assert report.rejected == [
        Rejection(4, "duplicate external_id, first seen on line 2"),
        Rejection(5, "email jonas@elbe.example is also on line 3 (external_id 'C2')"),
        Rejection(6, "duplicate external_id, first seen on line 3"),
    ]
