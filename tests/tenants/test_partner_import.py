"""Partner CSV import: upsert counts, idempotence, rejections with lines, no half rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from partnercast.core.errors import UserError
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.importing import Rejection, import_partners
from partnercast.tenants.models import Partner


def partners_of(engine: Engine, tenant_id: int) -> dict[str, Partner]:
    with tenant_session(engine, tenant_id) as session:
        return {p.external_id: p for p in session.exec(select(Partner)).all()}


def import_file(engine: Engine, tenant_id: int, path: Path):
    with tenant_session(engine, tenant_id) as session:
        return import_partners(session, path, now=utcnow())


def test_creates_then_updates_only_what_changed(engine, tenant_a, write_csv, partner_row) -> None:
    rows = [
        partner_row(external_id="P1", tier="gold", region="EMEA", languages="de; en-GB;de"),
        partner_row(external_id="P2", tier="silver", score="45.5", primary_color="#AABBCC"),
        partner_row(external_id="P3", contact_email="Dana@Lakeshore.EXAMPLE", tags="smb;;cloud"),
    ]
    first = import_file(engine, tenant_a, write_csv("p.csv", rows))
    assert (first.created, first.updated, first.unchanged, first.rejected) == (3, 0, 0, [])

    stored = partners_of(engine, tenant_a)
    assert stored["P1"].languages == ["de", "en_GB"]
    assert stored["P1"].tier == "gold"
    assert stored["P2"].score == 45.5
    assert stored["P2"].primary_color == "#aabbcc"
    assert stored["P3"].contact_email == "Dana@lakeshore.example"
    assert stored["P3"].tags == ["smb", "cloud"]
    assert stored["P3"].status == "active"
    assert stored["P3"].time_zone == "UTC"

    rows[1] = partner_row(external_id="P2", tier="gold", score="45.5", primary_color="#aabbcc")
    rows.append(partner_row(external_id="P4", name="Cascade Networks"))
    second = import_file(engine, tenant_a, write_csv("p2.csv", rows))
    assert (second.created, second.updated, second.unchanged, second.rejected) == (1, 1, 2, [])
    after = partners_of(engine, tenant_a)
    assert after["P2"].tier == "gold"
    assert after["P2"].updated_at > stored["P2"].updated_at
    assert after["P1"].updated_at == stored["P1"].updated_at


def test_same_file_twice_changes_nothing(engine, tenant_a) -> None:
    sample = Path(__file__).resolve().parents[2] / "examples" / "tenants" / "partners.csv"
    first = import_file(engine, tenant_a, sample)
    before = partners_of(engine, tenant_a)
    second = import_file(engine, tenant_a, sample)
    after = partners_of(engine, tenant_a)

    assert (first.created, first.rejected) == (8, [])
    assert (second.created, second.updated, second.unchanged) == (0, 0, 8)
    for key, partner in before.items():
        assert after[key].model_dump() == partner.model_dump()


def test_a_column_not_in_the_file_is_left_alone(engine, tenant_a, write_csv, partner_row) -> None:
    import_file(engine, tenant_a, write_csv("full.csv", [partner_row(tier="gold", region="NA")]))
    report = import_file(engine, tenant_a, write_csv("names.csv", [partner_row(name="Renamed")]))
    assert (report.updated, report.rejected) == (1, [])
    partner = partners_of(engine, tenant_a)["P1"]
    assert (partner.name, partner.tier, partner.region) == ("Renamed", "gold", "NA")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"tier": "platinum"}, "tier 'platinum' is not one of gold, silver, registered"),
        ({"status": "gone"}, "status 'gone' is not one of active, paused, offboarded"),
        ({"languages": "de;xx_YY"}, "unknown locale 'xx_YY'"),
        ({"time_zone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"score": "101"}, "score '101' is not between 0 and 100"),
        ({"score": "lots"}, "score 'lots' is not a number"),
        ({"primary_color": "red"}, "primary_color 'red' is not a #rrggbb colour"),
        ({"logo_url": "ftp://x.example/a.png"}, "logo_url 'ftp://x.example/a.png' is not an"),
        ({"contact_email": "bob@"}, "bad contact_email 'bob@': There must be something after"),
        ({"sender_email": "a b@x.example"}, "bad sender_email 'a b@x.example': The email"),
        ({"name": "  "}, "name is empty"),
        ({"legal_name": ""}, "legal_name is empty"),
        ({"external_id": ""}, "external_id is empty"),
        ({"name": "x" * 201}, "name is longer than 200 characters"),
    ],
)
def test_bad_row_is_rejected_with_its_line_and_reason(
    engine, tenant_a, write_csv, partner_row, changes, reason
) -> None:
    rows = [
        partner_row(external_id="OK1"),
        partner_row(**{"external_id": "BAD", **changes}),
        partner_row(external_id="OK2"),
    ]
    report = import_file(engine, tenant_a, write_csv("p.csv", rows))

    assert report.created == 2
    assert len(report.rejected) == 1
    assert report.rejected[0].line == 3
    assert report.rejected[0].reason.startswith(reason)
    assert set(partners_of(engine, tenant_a)) == {"OK1", "OK2"}


def test_every_problem_of_a_row_is_named(engine, tenant_a, write_csv, partner_row) -> None:
    path = write_csv("p.csv", [partner_row(tier="platinum", score="-1")])
    report = import_file(engine, tenant_a, path)
    assert report.rejected == [
        Rejection(
            2,
            "tier 'platinum' is not one of gold, silver, registered; "
            "score '-1' is not between 0 and 100",
        )
    ]


def test_physical_lines_count_quoted_newlines_and_blank_lines(engine, tenant_a, write_text) -> None:
    text = (
        "external_id,name,legal_name,postal_address,tier\n"
        'P1,One,One Ltd,"1 Road\nTown\nCountry",gold\n'
        "\n"
        "P2,Two,Two Ltd,2 Road,platinum\n"
        "P1,Again,Again Ltd,3 Road,gold\n"
        "P3,Three,Three Ltd\n"
    )
    report = import_file(engine, tenant_a, write_text("p.csv", text))
    assert report.created == 1
    assert report.rejected == [
        Rejection(6, "tier 'platinum' is not one of gold, silver, registered"),
        Rejection(7, "duplicate external_id, first seen on line 2"),
        Rejection(8, "has 3 fields, the header has 5"),
    ]
    assert partners_of(engine, tenant_a)["P1"].postal_address == "1 Road\nTown\nCountry"


def test_unknown_columns_are_ignored_with_a_note(engine, tenant_a, write_csv, partner_row) -> None:
    path = write_csv("p.csv", [partner_row(teir="gold", colour="red")])
    report = import_file(engine, tenant_a, path)
    assert report.created == 1
    assert report.notes == [
        "ignored columns 'teir', 'colour' (use --map COLUMN=FIELD to import one)"
    ]
    assert partners_of(engine, tenant_a)["P1"].tier == "registered"


def test_missing_required_column_refuses_the_whole_file(engine, tenant_a, write_csv) -> None:
    path = write_csv("p.csv", [{"external_id": "P1", "name": "One"}])
    with pytest.raises(UserError, match="missing required columns legal_name, postal_address"):
        import_file(engine, tenant_a, path)
    assert partners_of(engine, tenant_a) == {}


def test_header_names_ignore_case_and_spaces(engine, tenant_a, write_text) -> None:
    text = " External_ID , Name,LEGAL_NAME,postal_address\nP1,One,One Ltd,1 Road\n"
    assert import_file(engine, tenant_a, write_text("p.csv", text)).created == 1


def test_semicolon_separated_file_is_read(engine, tenant_a, write_text) -> None:
    text = "external_id;name;legal_name;postal_address\nP1;One;One Ltd;1 Road, Town\n"
    report = import_file(engine, tenant_a, write_text("p.csv", text))
    assert (report.created, report.notes) == (1, ["read as ';'-separated"])
    assert partners_of(engine, tenant_a)["P1"].postal_address == "1 Road, Town"


def test_utf8_with_bom_is_read(engine, tenant_a, tmp_path) -> None:
    path = tmp_path / "bom.csv"
    text = "external_id,name,legal_name,postal_address\nP1,Müller IT,Müller GmbH,Straße 1\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert import_file(engine, tenant_a, path).created == 1
    assert partners_of(engine, tenant_a)["P1"].name == "Müller IT"


def test_windows_1252_file_is_read(engine, tenant_a, tmp_path) -> None:
    path = tmp_path / "cp1252.csv"
    text = (
        "external_id,name,legal_name,postal_address\r\n"
        "P1,One,One,1\r\nP2,Müller Büro,Müller & Söhne GmbH,Straße 2 (€ 5 Gebühr)\r\n"
    )
    path.write_bytes(text.encode("cp1252"))
    report = import_file(engine, tenant_a, path)
    assert report.created == 2
    assert partners_of(engine, tenant_a)["P2"].postal_address == "Straße 2 (€ 5 Gebühr)"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        (b"\x00\x01\x02binary", "line 1: contains a NUL byte"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", r"an old Excel \(.xls\) file"),
        (b"PK\x03\x04not really a zip", "not a readable .xlsx workbook"),
    ],
)
def test_unusable_file_is_a_user_error(engine, tenant_a, tmp_path, content, message) -> None:
    path = tmp_path / "p.csv"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        import_file(engine, tenant_a, path)


def test_a_row_whose_write_fails_leaves_no_trace(engine, tenant_a, write_csv, partner_row) -> None:
    original = [partner_row(external_id=key, region="EMEA") for key in ("P1", "P2", "P3")]
    import_file(engine, tenant_a, write_csv("first.csv", original))
    changed = [partner_row(external_id=key, region="NA") for key in ("P1", "P2", "P3")]
    changed.append(partner_row(external_id="P4", region="NA"))

    def fail_after_writing(session, _context) -> None:
        # The UPDATE or INSERT has been sent; failing now must undo that row only.
        for obj in list(session.dirty) + list(session.new):
            if isinstance(obj, Partner) and obj.external_id in ("P2", "P4"):
                raise IntegrityError("UPDATE partner", {}, Exception("disk says no"))

    with tenant_session(engine, tenant_a) as session:
        event.listen(session, "after_flush", fail_after_writing)
        report = import_partners(session, write_csv("second.csv", changed), now=utcnow())

    assert (report.updated, report.created) == (2, 0)
    assert report.rejected == [
        Rejection(3, "not saved: disk says no"),
        Rejection(5, "not saved: disk says no"),
    ]
    stored = partners_of(engine, tenant_a)
    assert set(stored) == {"P1", "P2", "P3"}
    assert {key: p.region for key, p in stored.items()} == {"P1": "NA", "P2": "EMEA", "P3": "NA"}


def test_needs_a_tenant_scoped_session(engine, write_csv, partner_row) -> None:
    from partnercast.core.errors import TenantScopeError
    from partnercast.core.tenancy import plain_session

    with plain_session(engine) as session, pytest.raises(TenantScopeError):
        import_partners(session, write_csv("p.csv", [partner_row()]), now=utcnow())
