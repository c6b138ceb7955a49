"""The tenant-side commands, run through the real ``partnercast`` CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "tenants"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich wraps at 80 columns without a terminal; wide rows keep assertions simple."""
    monkeypatch.setenv("COLUMNS", "250")


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    return lines[0]


def test_create_and_list_tenants(cli, engine) -> None:
    created = cli(
        "tenants",
        "create",
        "acme",
        "--name",
        "Acme Networks",
        "--locale",
        "de-ch",
        "--legal-name",
        "Acme Networks AG",
        "--postal-address",
        "Bahnhofstrasse 1, Zürich",
        "--primary-color",
        "#AA0000",
    )
    assert "created tenant acme (Acme Networks)" in created.stdout
    listed = cli("tenants", "list")
    assert "acme" in listed.stdout
    assert "de_CH" in listed.stdout
    assert "Acme Networks AG" in listed.stdout

    from partnercast.core.tenancy import plain_session
    from partnercast.tenants.registry import list_tenants

    with plain_session(engine) as session:
        (tenant,) = list_tenants(session)
    assert tenant.brand == {
        "legal_name": "Acme Networks AG",
        "postal_address": "Bahnhofstrasse 1, Zürich",
        "primary_color": "#aa0000",
    }


def test_duplicate_slug_is_refused(cli, engine, tenant_a) -> None:
    result = cli("tenants", "create", "vendor-a", "--name", "Again", expect=1)
    assert "tenant 'vendor-a' already exists" in one_error_line(result)


def test_bad_tenant_values_are_refused(cli, engine) -> None:
    result = cli(
        "tenants",
        "create",
        "Bad Slug",
        "--name",
        "X",
        "--locale",
        "xx",
        "--logo-url",
        "logo",
        expect=1,
    )
    line = one_error_line(result)
    assert "slug 'Bad Slug' must be" in line
    assert "unknown locale 'xx'" in line
    assert "logo_url 'logo' is not an http(s) URL" in line


def test_partner_import_prints_summary_and_rejections(cli, tenant_a, write_csv, partner_row):
    rows = [partner_row(external_id="P1"), partner_row(external_id="P2", tier="platinum")]
    result = cli("partners", "import", str(write_csv("p.csv", rows)), "--tenant", "vendor-a")
    assert "partners: 1 created, 0 updated, 0 unchanged, 1 rejected" in result.stdout
    assert "tier 'platinum' is not one of gold, silver, registered" in result.stdout
    again = cli("partners", "import", str(write_csv("p.csv", rows)), "--tenant", "vendor-a")
    assert "partners: 0 created, 0 updated, 1 unchanged, 1 rejected" in again.stdout


def test_all_rows_rejected_exits_1(cli, tenant_a, write_csv, partner_row) -> None:
    rows = [partner_row(tier="platinum")]
    result = cli(
        "partners", "import", str(write_csv("p.csv", rows)), "--tenant", "vendor-a", expect=1
    )
    assert "every row was rejected" in one_error_line(result)
    assert "line 2" not in result.stderr  # the reasons are in the table on stdout
    assert "platinum" in result.stdout


def test_import_help_documents_the_exit_codes(cli) -> None:
    for command in (["partners", "import"], ["contacts", "import"]):
        result = cli(*command, "--help")
        text = " ".join(result.stdout.split())
        assert "Exit code 0 when at least one row was kept" in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not a text file in any encoding recognised"),
        (b"external_id,name\x00\n", "contains a NUL byte (not a text file)"),
        (
            b"external_id,nmae,legal_name,postal_address\nP1,x,y,z\n",
            "missing required columns name",
        ),
        (b"", "the file is empty"),
    ],
)
def test_unusable_file_is_one_line_and_exit_1(cli, engine, tenant_a, tmp_path, content, message):
    path = tmp_path / "p.csv"
    if content is not None:
        path.write_bytes(content)
    result = cli("partners", "import", str(path), "--tenant", "vendor-a", expect=1)
    line = one_error_line(result)
    assert message in line
    assert str(path) in line


def test_directory_instead_of_file(cli, tenant_a, tmp_path) -> None:
    result = cli("partners", "import", str(tmp_path), "--tenant", "vendor-a", expect=1)
    assert "is a directory" in one_error_line(result)


def test_unknown_tenant_is_one_line(cli, engine, write_csv, partner_row) -> None:
    result = cli(
        "partners", "import", str(write_csv("p.csv", [partner_row()])), "--tenant", "nope", expect=1
    )
    assert "no tenant 'nope'" in one_error_line(result)


def test_contacts_import_unknown_partner_writes_nothing(cli, engine, tenant_a) -> None:
    cli("partners", "import", str(EXAMPLES / "partners.csv"), "--tenant", "vendor-a")
    result = cli(
        "contacts",
        "import",
        "P404",
        str(EXAMPLES / "contacts.csv"),
        "--tenant",
        "vendor-a",
        expect=1,
    )
    assert "no partner 'P404'" in one_error_line(result)
    listed = cli("contacts", "list", "P1001", "--tenant", "vendor-a")
    assert "0 contacts of P1001" in listed.stdout


def test_sample_walkthrough(cli, engine, tenant_a) -> None:
    cli("partners", "import", str(EXAMPLES / "partners.csv"), "--tenant", "vendor-a")
    imported = cli(
        "contacts", "import", "P1001", str(EXAMPLES / "contacts.csv"), "--tenant", "vendor-a"
    )
    summary = "contacts: 18 created, 0 updated, 0 unchanged, 2 rejected, 1 consent withdrawn"
    assert summary in imported.stdout
    for reason in ("bad email 'bob@'", "unknown locale 'xx_YY'"):
        assert reason in imported.stdout

    listed = cli("contacts", "list", "P1001", "--tenant", "vendor-a", "--limit", "5")
    assert "18 contacts of P1001 (first 5)" in listed.stdout
    assert "anna.schmidt@brauhaus-koenig.example" in listed.stdout

    loaded = cli("segments", "load", str(EXAMPLES / "segments.yaml"), "--tenant", "vendor-a")
    assert "loaded 4 segments" in loaded.stdout
    segments = cli("segments", "list", "--tenant", "vendor-a")
    assert "Gold partners in EMEA" in segments.stdout
    gold = cli("partners", "list", "--tenant", "vendor-a", "--segment", "gold-emea")
    assert "3 partners in segment gold-emea" in gold.stdout
    assert "P2001" not in gold.stdout

    shown = cli("partners", "show", "P1002", "--tenant", "vendor-a")
    assert "Alpenrand IT AG" in shown.stdout
    assert "contenders, gold-emea" in shown.stdout


def test_contacts_with_partner_column(cli, engine, tenant_a, write_csv) -> None:
    cli("partners", "import", str(EXAMPLES / "partners.csv"), "--tenant", "vendor-a")
    rows = [
        {"partner": "P1001", "external_id": "C1", "email": "a@x.example", "consent": "yes"},
        {"partner": "P9999", "external_id": "C2", "email": "b@x.example", "consent": "yes"},
    ]
    result = cli("contacts", "import", "-", str(write_csv("c.csv", rows)), "--tenant", "vendor-a")
    assert "1 created" in result.stdout
    assert "unknown partner 'P9999'" in result.stdout


def test_bad_segments_file_lists_every_problem(cli, engine, tenant_a, tmp_path) -> None:
    path = tmp_path / "segments.yaml"
    path.write_text(
        "segments:\n"
        "  a:\n"
        "    rule: {field: teir, eq: gold}\n"
        "  b:\n"
        "    rule: {field: tier, eqq: x}\n"
    )
    result = cli("segments", "load", str(path), "--tenant", "vendor-a", expect=1)
    assert "Traceback" not in result.stderr
    assert "2 problems in" in result.stderr
    assert "segments.yaml:3: unknown field 'teir'" in result.stderr
    assert "segments.yaml:5: unknown operator 'eqq'" in result.stderr
    assert "0 segments" in cli("segments", "list", "--tenant", "vendor-a").stdout


def test_unknown_segment_in_partner_list(cli, engine, tenant_a) -> None:
    result = cli("partners", "list", "--tenant", "vendor-a", "--segment", "nope", expect=1)
    assert "no segment 'nope'" in one_error_line(result)


def test_user_data_is_not_rich_markup(cli, engine, tenant_a, write_csv, partner_row) -> None:
    rows = [partner_row(name="[bold]Brackets[/bold] & Co")]
    cli("partners", "import", str(write_csv("p.csv", rows)), "--tenant", "vendor-a")
    assert "[bold]Brackets[/bold] & Co" in cli("partners", "list", "--tenant", "vendor-a").stdout
