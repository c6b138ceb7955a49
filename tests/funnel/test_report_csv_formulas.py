"""Partner ids, names and campaign keys that a spreadsheet would run as formulas come out of
every report CSV as text (a leading quote), in every text column; numbers stay numbers."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

from sqlmodel import select
from support.funnel_world import Funnel, add_form_lead
from support.world import START

from partnercast.campaigns.models import Campaign
from partnercast.funnel.reports import write_reports
from partnercast.funnel.spend import add_spend
from partnercast.plugins.spreadsheet import FORMULA_STARTS
from partnercast.tenants.models import Partner

PAYLOADS = ['=HYPERLINK("http://evil","x")', "+SUM(1+1)", "@SUM(A1)", "-2+3"]
NOW = START + timedelta(days=2)
# The columns of each export that hold text; every other column holds numbers (or is empty).
TEXT_COLUMNS = {
    "funnel.csv": {"group"},
    "cycles.csv": {"cycle"},
    "scores.csv": {"partner", "component", "group", "detail"},
    "score.csv": {"partner", "component", "group", "detail"},
}


def _number(cell: str) -> bool:
    if cell in ("", "True", "False"):
        return True
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_formula_payloads_are_neutralised_in_every_text_column_of_every_export(
    funnel: Funnel, tmp_path: Path
) -> None:
    for n in range(2):
        add_form_lead(funnel, "P001", f"a{n}@c.example")
    with funnel.session() as session:
        add_spend(session, "P001", "cloud-security", 1000, now=NOW)
        partners = session.exec(select(Partner).order_by(Partner.external_id)).all()
        for partner, payload in zip(partners, PAYLOADS, strict=False):
            partner.external_id = payload
            partner.name = payload
            session.add(partner)
        campaign = session.exec(select(Campaign)).one()
        campaign.key = PAYLOADS[0]
        session.add(campaign)
    with funnel.session() as session:
        files = write_reports(session, tmp_path / "reports", now=NOW)
    exports = sorted((tmp_path / "reports").rglob("*.csv"))
    assert {path.name for path in exports} == set(TEXT_COLUMNS)
    seen: set[tuple[str, str]] = set()
    cells: list[str] = []
    for path in exports:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            for column, cell in row.items():
                cells.append(cell)
                if column in TEXT_COLUMNS[path.name]:
                    assert not cell.startswith(FORMULA_STARTS), (path, column, cell)
                    if cell.startswith("'"):
                        seen.add((path.name, column))
                else:
                    assert _number(cell), (path, column, cell)
    # every payload came out whole, as text behind its quote
    for payload in PAYLOADS:
        assert any(cell.startswith("'" + payload) for cell in cells), payload
    # the payloads came out quoted in the partner and cycle columns of every kind of export
    assert {("funnel.csv", "group"), ("cycles.csv", "cycle"), ("scores.csv", "partner")} <= seen
    assert ("score.csv", "partner") in seen
    assert all(payload in files.partners for payload in PAYLOADS)
