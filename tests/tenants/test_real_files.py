"""Contact files as Excel, HubSpot, Salesforce and LibreOffice write them, imported as they are.

Each file is built byte for byte the way its tool writes it: Excel's "CSV UTF-8" (a BOM,
CRLF), its European "CSV" (Windows-1252, semicolons, a ``sep=;`` line), its "Unicode
Text" (UTF-16 with a BOM, tabs), a HubSpot export (a "Record ID" column, "First Name"
headers), cells with line breaks, a trailing separator, and a real .xlsx workbook made by
openpyxl.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.core.errors import UserError
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.importing import Rejection, import_contacts, import_partners
from partnercast.tenants.models import Contact, Partner, Tenant

HEADER = ["external_id", "email", "first_name", "last_name", "company", "locale", "consent"]
ROWS = [
    ["C1", "anna@brauhaus.example", "Anna", "Müller", "Brauhaus Kö AG", "de", "yes"],
    ["C2", "jonas@elbe.example", "Jonas", "Weiß", "Elbe & Söhne", "de", "yes"],
    ["C3", "lea@hanse.example", "Léa", "Dubois", "Hanse € Consult", "fr", "yes"],
]


@pytest.fixture
def partner(engine: Engine, tenant_a: int, write_csv, partner_row) -> int:
    with tenant_session(engine, tenant_a) as session:
        import_partners(session, write_csv("partners.csv", [partner_row()]), now=utcnow())
        return session.exec(select(Partner.id)).one()


def run(engine: Engine, tenant_id: int, path: Path, **options):
    with tenant_session(engine, tenant_id) as session:
        return import_contacts(session, path, "P1", now=utcnow(), **options)


def stored(engine: Engine, tenant_id: int) -> dict[str, Contact]:
    with tenant_session(engine, tenant_id) as session:
        return {c.external_id: c for c in session.exec(select(Contact)).all()}


def excel_csv(rows: list[list[str]], *, sep: str = ",", quote_all: bool = False) -> str:
    """Lines as Excel writes them: CRLF, a cell quoted when it holds the separator, a
    quote or a line break (every cell with ``quote_all``)."""

    def cell(text: str) -> str:
        if quote_all or any(char in text for char in (sep, '"', "\n", "\r")):
            return '"' + text.replace('"', '""') + '"'
        return text

    return "".join(sep.join(cell(text) for text in row) + "\r\n" for row in rows)


def test_excel_csv_utf8_with_bom_and_crlf(engine, tenant_a, partner, tmp_path) -> None:
    path = tmp_path / "excel-utf8.csv"
    path.write_bytes(b"\xef\xbb\xbf" + excel_csv([HEADER, *ROWS]).encode("utf-8"))
    report = run(engine, tenant_a, path)
    assert (report.created, report.rejected, report.notes) == (3, [], [])
    assert stored(engine, tenant_a)["C2"].last_name == "Weiß"


def test_european_excel_csv_cp1252_semicolons_sep_line(engine, tenant_a, partner, tmp_path):
    """German Excel's "CSV (Trennzeichen-getrennt)": Windows-1252, semicolons, and with
    the ``sep=;`` line some tools add so that Excel opens it right."""
    path = tmp_path / "excel-de.csv"
    text = "sep=;\r\n" + excel_csv([HEADER, *ROWS], sep=";")
    path.write_bytes(text.encode("cp1252"))
    report = run(engine, tenant_a, path)
    assert report.created == 3 and report.rejected == []
    assert report.notes == ["read as Windows-1252, ';'-separated"]
    contacts = stored(engine, tenant_a)
    assert contacts["C3"].company == "Hanse € Consult"
    assert contacts["C1"].last_name == "Müller"


def test_semicolons_without_a_sep_line_are_sniffed(engine, tenant_a, partner, tmp_path):
    path = tmp_path / "semicolons.csv"
    path.write_bytes(excel_csv([HEADER, *ROWS], sep=";").encode("utf-8"))
    report = run(engine, tenant_a, path)
    assert report.created == 3 and report.notes == ["read as ';'-separated"]


def test_utf16_unicode_text_with_tabs(engine, tenant_a, partner, tmp_path) -> None:
    """Excel's "Unicode Text": UTF-16 little-endian with a BOM, tab-separated."""
    path = tmp_path / "unicode.txt"
    path.write_bytes(b"\xff\xfe" + excel_csv([HEADER, *ROWS], sep="\t").encode("utf-16-le"))
    report = run(engine, tenant_a, path)
    assert report.created == 3 and report.rejected == []
    assert stored(engine, tenant_a)["C3"].first_name == "Léa"


def test_hubspot_export_headers_and_record_id(engine, tenant_a, partner, tmp_path) -> None:
    """HubSpot's export: its own "Record ID" (ignored without a word), "First Name",
    "Email" ... and a column the engine has no use for (ignored with a one-line note)."""
    header = ["Record ID", "Contact ID", "First Name", "Last Name", "E-mail", "Company Name",
              "Preferred language", "Marketing opt-in", "Lead Status"]  # fmt: skip
    rows = [
        ["901", "C1", "Anna", "Müller", "anna@brauhaus.example", "Brauhaus", "German", "Y",
         "New"],
        ["902", "C2", "Jonas", "Weiß", "jonas@elbe.example", "Elbe", "de_DE.UTF-8", "ja", ""],
        ["903", "C3", "Léa", "Dubois", "lea@hanse.example", "Hanse", "Français", "opted in",
         "Open"],
        ["904", "C4", "Ole", "Berg", "ole@fjord.example", "Fjord", "de-de", "oui", ""],
        ["905", "C5", "Eva", "Kern", "eva@kern.example", "Kern", "Deutsch", "Opted-In", ""],
    ]  # fmt: skip
    path = tmp_path / "hubspot.csv"
    path.write_bytes(excel_csv([header, *rows], quote_all=True).encode("utf-8"))
    report = run(engine, tenant_a, path)
    assert report.created == 5 and report.rejected == []
    assert report.notes == ["ignored columns 'Lead Status' (use --map COLUMN=FIELD to import one)"]
    contacts = stored(engine, tenant_a)
    assert {key: c.locale for key, c in contacts.items()} == {
        "C1": "de", "C2": "de", "C3": "fr", "C4": "de", "C5": "de",
    }  # fmt: skip
    assert all(c.consent for c in contacts.values())
    assert contacts["C1"].first_name == "Anna"


def test_trailing_separator_on_every_line(engine, tenant_a, partner, tmp_path) -> None:
    path = tmp_path / "trailing.csv"
    path.write_text("".join(",".join(row) + ",\n" for row in [HEADER, *ROWS]), encoding="utf-8")
    report = run(engine, tenant_a, path)
    assert (report.created, report.rejected) == (3, [])


def test_multi_line_cells_read_the_same_with_crlf_or_lf(engine, tenant_a, partner, tmp_path):
    """A cell with a line break, saved by Excel (CRLF inside the cell too), then re-saved
    by an editor with LF: the second import changes nothing."""
    rows = [HEADER, ["C1", "anna@brauhaus.example", "Anna", "Müller", "Brauhaus\r\nKö AG",
                     "de", "yes"], ROWS[1]]  # fmt: skip
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(excel_csv(rows).encode("utf-8"))
    first = run(engine, tenant_a, crlf)
    assert first.created == 2 and first.rejected == []
    assert stored(engine, tenant_a)["C1"].company == "Brauhaus\nKö AG"
    lf = tmp_path / "lf.csv"
    lf.write_bytes(crlf.read_bytes().replace(b"\r\n", b"\n"))
    again = run(engine, tenant_a, lf)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


def test_a_stray_quote_rejects_its_row_and_keeps_the_others(engine, tenant_a, partner, tmp_path):
    text = (
        ",".join(HEADER) + "\n"
        "C1,anna@brauhaus.example,Anna,Müller,Brauhaus,de,yes\n"
        'C2,jonas@elbe.example,"Jonas,Weiß,Elbe,de,yes\n'
        "C3,lea@hanse.example,Léa,Dubois,Hanse,fr,yes\n"
        'C4,ole@fjord.example,Ole,Berg,"Fjord, Nord",de,yes\n'
    )
    path = tmp_path / "stray.csv"
    path.write_text(text, encoding="utf-8")
    report = run(engine, tenant_a, path)
    assert report.rejected == [Rejection(3, 'a quote (") is opened and not closed on this line')]
    assert sorted(stored(engine, tenant_a)) == ["C1", "C3", "C4"]
    assert stored(engine, tenant_a)["C4"].company == "Fjord, Nord"


def test_a_quote_inside_a_cell_is_kept(engine, tenant_a, partner, tmp_path) -> None:
    path = tmp_path / "inner.csv"
    text = ",".join(HEADER) + '\nC1,anna@brauhaus.example,Anna,Mül"ler,B,de,yes\n'
    path.write_text(text, encoding="utf-8")
    assert run(engine, tenant_a, path).created == 1
    assert stored(engine, tenant_a)["C1"].last_name == 'Mül"ler'


def test_xlsx_workbook_is_read_directly(engine, tenant_a, partner, tmp_path) -> None:
    """A workbook saved by openpyxl: numbers as numbers (an id 1001 comes back as
    "1001", not "1001.0"), a boolean consent, a cell with a line break."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Customer ID", "Email Address", "First Name", "Company", "Opt In"])
    sheet.append([1001, "anna@brauhaus.example", "Anna", "Brauhaus\nKö AG", True])
    sheet.append([1002, "jonas@elbe.example", "Jonas", "Elbe", "ja"])
    sheet.append([1003, "not an address", "Bob", "X", "yes"])
    path = tmp_path / "contacts.xlsx"
    workbook.save(path)
    report = run(engine, tenant_a, path)
    assert report.created == 2
    assert [(r.line, r.reason.split(":")[0]) for r in report.rejected] == [
        (4, "bad email 'not an address'")
    ]
    contacts = stored(engine, tenant_a)
    assert sorted(contacts) == ["1001", "1002"]
    assert contacts["1001"].company == "Brauhaus\nKö AG" and contacts["1001"].consent


def test_duplicate_email_under_another_external_id_is_reported(
    engine, tenant_a, partner, write_csv
) -> None:
    rows = [dict(zip(HEADER, row, strict=True)) for row in ROWS]
    rows.append({**rows[0], "external_id": "C9"})
    report = run(engine, tenant_a, write_csv("c.csv", rows))
    assert report.rejected == [
        Rejection(5, "email anna@brauhaus.example is also on line 2 (external_id 'C1')")
    ]
    again = run(engine, tenant_a, write_csv("c2.csv", [{**rows[0], "external_id": "C8"}]))
    assert again.rejected == [
        Rejection(2, "email anna@brauhaus.example is already contact 'C1' of this partner")
    ]
    assert sorted(stored(engine, tenant_a)) == ["C1", "C2", "C3"]


def test_map_names_a_column_and_is_remembered_per_tenant(
    cli, engine, tenant_a, tenant_b, partner, tmp_path
) -> None:
    path = tmp_path / "crm.csv"
    header = ["Kundennr", "E-Mail", "Vorname", "Newsletter", "Notiz"]
    path.write_text(
        excel_csv([header, ["K1", "anna@brauhaus.example", "Anna", "ja", "VIP"]]),
        encoding="utf-8",
    )
    refused = cli("contacts", "import", "P1", str(path), "--tenant", "vendor-a", expect=1)
    assert "missing required columns external_id, consent" in refused.stderr
    done = cli(
        "contacts", "import", "P1", str(path), "--tenant", "vendor-a",
        "--map", "Kundennr=external_id", "--map", "newsletter=consent", "--map", "Notiz=-",
    )  # fmt: skip
    assert "contacts: 1 created" in done.stdout
    assert "ignored columns" not in done.stdout
    again = cli("contacts", "import", "P1", str(path), "--tenant", "vendor-a")
    assert "contacts: 0 created, 0 updated, 1 unchanged" in again.stdout
    with plain_session(engine) as session:
        tenants = {t.slug: t.import_columns for t in session.exec(select(Tenant)).all()}
    assert tenants["vendor-a"] == {
        "contacts": {"kundennr": "external_id", "newsletter": "consent", "notiz": "-"}
    }
    assert tenants["vendor-b"] == {}
    bad = cli("contacts", "import", "P1", str(path), "--tenant", "vendor-a",
              "--map", "Kundennr=kundennummer", expect=1)  # fmt: skip
    assert "--map: 'kundennummer' is not a contacts field" in bad.stderr


def test_two_columns_for_one_field_is_one_clear_error(engine, tenant_a, partner, tmp_path):
    path = tmp_path / "two.csv"
    path.write_text("external_id,Email,E-mail,consent\nC1,a@x.example,b@x.example,yes\n")
    with pytest.raises(UserError, match="columns 'Email' and 'E-mail' both give email"):
        run(engine, tenant_a, path)


def test_salesforce_export_email_opt_out_is_consent_the_other_way_round(
    engine, tenant_a, partner, tmp_path
) -> None:
    """A Salesforce report export: every cell quoted, "Contact ID", a language field, and
    no consent column but "Email Opt Out" (1 or true: the person opted out)."""
    header = ["Contact ID", "First Name", "Last Name", "Account Name", "Email",
              "Email Opt Out", "Preferred Language"]  # fmt: skip
    rows = [
        ["0035g00000AaAaA", "Anna", "Müller", "Brauhaus", "anna@brauhaus.example", "0",
         "de_DE.UTF-8"],
        ["0035g00000BbBbB", "Jonas", "Weiß", "Elbe", "jonas@elbe.example", "1", "German"],
        ["0035g00000CcCcC", "Léa", "Dubois", "Hanse", "lea@hanse.example", "false", "fr"],
        ["0035g00000DdDdD", "Ole", "Hansen", "Fjord", "ole@fjord.example", "true", "da"],
        ["0035g00000EeEeE", "Eve", "Null", "Void", "eve@void.example", "", "en"],
        ["0035g00000FfFfF", "Max", "Maybe", "Perhaps", "max@perhaps.example", "vielleicht",
         "de"],
    ]  # fmt: skip
    path = tmp_path / "salesforce.csv"
    path.write_bytes(excel_csv([header, *rows], quote_all=True).encode("utf-8"))
    report = run(engine, tenant_a, path)
    assert report.created == 4 and report.withdrawn == 2, report
    assert report.rejected == [
        Rejection(6, "opt_out is empty (write yes if the person opted out, else no)"),
        Rejection(7, "opt_out 'vielleicht' is not a yes or a no (such as true, false, 1, 0)"),
    ]
    contacts = stored(engine, tenant_a)
    consent = {key[-5:]: (c.consent, c.locale) for key, c in contacts.items()}
    assert consent == {
        "AaAaA": (True, "de"),
        "BbBbB": (False, "de"),
        "CcCcC": (True, "fr"),
        "DdDdD": (False, "da"),
    }
    # The same file again changes nothing (its opt-outs read as stored).
    again = run(engine, tenant_a, path)
    assert (again.created, again.updated, again.unchanged, again.withdrawn) == (0, 0, 4, 0)
    # A Data Loader export's API name for it too; 'false' in capitals.
    loader = tmp_path / "dataloader.csv"
    loader.write_text(
        '"ID","EMAIL","HASOPTEDOUTOFEMAIL"\n"0035g00000AaAaA","anna@brauhaus.example","TRUE"\n',
        encoding="utf-8",
    )
    changed = run(engine, tenant_a, loader)
    assert (changed.updated, changed.withdrawn) == (1, 1)
    assert stored(engine, tenant_a)["0035g00000AaAaA"].consent is False


def test_a_file_with_consent_and_an_opt_out_column_is_refused(
    engine, tenant_a, partner, tmp_path
) -> None:
    path = tmp_path / "both.csv"
    path.write_text(
        "external_id,email,consent,Email Opt Out\nC1,anna@brauhaus.example,yes,0\n",
        encoding="utf-8",
    )
    with pytest.raises(UserError) as refused:
        run(engine, tenant_a, path)
    assert "columns 'consent' and 'Email Opt Out' both give consent" in refused.value.message
    assert '--map "Email Opt Out=-"' in refused.value.message
    neither = tmp_path / "neither.csv"
    neither.write_text("external_id,email\nC1,anna@brauhaus.example\n", encoding="utf-8")
    with pytest.raises(UserError) as missing:
        run(engine, tenant_a, neither)
    assert "missing required columns consent (or opt_out)" in missing.value.message
