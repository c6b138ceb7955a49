"""Every CSV the engine writes goes through partnercast.plugins.spreadsheet, which neutralises
cells a spreadsheet would run as formulas (OWASP's CSV injection advice)."""

from __future__ import annotations

import ast
import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest

from partnercast.plugins import spreadsheet

REPO = Path(__file__).resolve().parents[2]
PAYLOADS = ('=HYPERLINK("http://evil","x")', "+SUM(1+1)", "@SUM(A1)", "-2+3", "\t=1", "\r=1")


def _written(row: list[object]) -> list[str]:
    buffer = io.StringIO()
    spreadsheet.writer(buffer).writerow(row)
    return next(csv.reader(io.StringIO(buffer.getvalue())))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_text_cell_that_starts_a_formula_gets_a_leading_quote(payload: str) -> None:
    assert _written([payload]) == ["'" + payload]


def test_numbers_stay_numbers_and_harmless_text_is_untouched() -> None:
    row: list[object] = [-5, -2.5, Decimal("-3.10"), 0, True, None, "Müller & Co", "a=b", ""]
    assert _written(row) == ["-5", "-2.5", "-3.10", "0", "True", "", "Müller & Co", "a=b", ""]
    # a number held as text is text: OWASP prefixes it, and so do we
    assert _written(["-5"]) == ["'-5"]
    assert _written(["\uff1dSUM(A1)"]) == ["'\uff1dSUM(A1)"]


def test_the_dict_writer_neutralises_values_and_header() -> None:
    buffer = io.StringIO()
    writer = spreadsheet.DictWriter(buffer, fieldnames=["name", "=head", "n"], restval="")
    writer.writeheader()
    writer.writerows([{"name": "+SUM(1+1)", "n": -7}, {"name": "ok", "=head": "@x"}])
    rows = list(csv.reader(io.StringIO(buffer.getvalue())))
    assert rows == [["name", "'=head", "n"], ["'+SUM(1+1)", "", "-7"], ["ok", "'@x", ""]]


def _csv_writers(path: Path) -> list[int]:
    """Lines of ``path`` that make a csv.writer or csv.DictWriter of their own."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in {"writer", "DictWriter"}
        and isinstance(node.value, ast.Name)
        and node.value.id == "csv"
    ]


# Files a person never opens, where neutralising would change the data: the reason each.
NOT_EXPORTS = {
    # An API upsert is fed to the contact and partner import as a one-row file: its cells
    # are the client's values, which must reach the import as sent.
    "web/api/rows.py": "a request handed to the import reader",
}


def test_no_module_writes_csv_around_the_shared_writer() -> None:
    folders = ("app", "core", "plugins", "channels", "tenants", "campaigns", "concierge")
    folders += ("funnel", "web", "demo", "examples", "bench")
    found = {
        str(path.relative_to(REPO)): lines
        for folder in folders
        for path in sorted((REPO / folder).rglob("*.py"))
        if path.name != "spreadsheet.py"
        and str(path.relative_to(REPO)) not in NOT_EXPORTS
        and (lines := _csv_writers(path))
    }
    assert not found, f"write CSV through partnercast.plugins.spreadsheet: {found}"
