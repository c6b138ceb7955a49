"""The Editor CSV is opened in a spreadsheet before it is uploaded: partner text that a
spreadsheet would run as a formula is written as text (a leading quote), in every column."""

from __future__ import annotations

import csv
import io

from channels.search.helpers import CONTENT, request

from partnercast.channels.search.channel import SearchChannel
from partnercast.plugins.spreadsheet import FORMULA_STARTS

PAYLOADS = ['=HYPERLINK("http://evil","x")', "+SUM(1+1)", "@SUM(A1)", "-2+3"]


def test_formula_payloads_in_every_text_column_come_out_as_text() -> None:
    content = {
        **CONTENT,
        "headlines": [*PAYLOADS, "Free Cloud Security Review"],
        "descriptions": PAYLOADS[:3],
        "keywords": PAYLOADS,
        "path1": PAYLOADS[3],
        "path2": PAYLOADS[2],
    }
    channel = SearchChannel()
    draft = channel.render(request(content, context={"campaign": {"key": PAYLOADS[1]}}))
    assert channel.validate(draft) == []
    rows = list(csv.DictReader(io.StringIO(channel.editor_csv(draft, "k1"))))
    cells = [(column, cell) for row in rows for column, cell in row.items()]
    assert not [(c, cell) for c, cell in cells if cell.startswith(FORMULA_STARTS)]
    quoted = {column for column, cell in cells if cell.startswith("'")}
    assert {"Campaign", "Ad Group", "Keyword", "Path 1", "Path 2"} <= quoted
    assert {f"Headline {n}" for n in (1, 2, 3, 4)} <= quoted
    assert {f"Description {n}" for n in (1, 2, 3)} <= quoted
    ad = rows[2]
    assert [ad[f"Headline {n}"] for n in (1, 2, 3, 4)] == ["'" + p for p in PAYLOADS]
    assert [row["Keyword"] for row in rows if row["Keyword"]] == ["'" + p for p in PAYLOADS]
    assert rows[0]["Campaign Daily Budget"] == "20.00"  # numbers untouched
