"""The Google Ads Editor CSV, parsed back with the csv module."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from channels.search.helpers import request

from partnercast.channels.search.channel import SearchChannel
from partnercast.channels.search.editor_csv import columns

NAME = "cloud-security · Nordlicht Systemhaus · search-ad [pc:k1]"


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_editor_csv_has_a_row_per_item_with_the_documented_columns() -> None:
    channel = SearchChannel()
    text = channel.editor_csv(channel.render(request()), "k1")
    header = next(csv.reader(io.StringIO(text)))
    assert header == columns()
    assert header[:4] == ["Campaign", "Campaign Type", "Networks", "Campaign Daily Budget"]
    assert {"Headline 15", "Description 4", "Final URL", "Keyword", "Criterion Type"} <= set(header)
    rows = _rows(text)
    assert {row["Campaign"] for row in rows} == {NAME}
    campaign, group, ad, *rest = rows
    assert (campaign["Campaign Daily Budget"], campaign["Campaign Status"]) == ("20.00", "Paused")
    assert campaign["Bid Strategy Type"] == "Maximize clicks"
    assert group["Ad Group"] == f"{NAME} ad group"
    assert ad["Ad type"] == "Responsive search ad"
    assert [ad[f"Headline {n}"] for n in (1, 2, 3, 4)] == [
        "Northwind Shield Partner",
        "Hybrid Cloud sicher in 45 Tag",
        "Free Cloud Security Review",
        "",
    ]
    assert ad["Headline 2 position"] == "1" and ad["Headline 1 position"] == ""
    assert ad["Description 2"].startswith("Book a 30-minute review")
    assert ad["Final URL"].startswith("https://northwind.example/shield?ref=partner&utm_source=")
    keywords = [(row["Keyword"], row["Criterion Type"]) for row in rest if row["Keyword"]]
    assert keywords == [
        ("hybrid cloud security", "Phrase"),
        ("northwind shield", "Exact"),
        ("cloud audit", "Phrase"),
    ]
    locations = [(row["Location"], row["Location ID"]) for row in rest if row["Location"]]
    assert locations == [("Germany", "2276"), ("Austria", "2040"), ("Switzerland", "2756")]


def test_editor_csv_file_is_utf8_with_a_bom_and_keeps_partner_text(tmp_path: Path) -> None:
    channel = SearchChannel()
    context = {"brand": {"name": 'Zürich "Cloud", AG'}}
    draft = channel.render(request(context=context))
    path = channel.write_editor_csv(draft, "k1", tmp_path / "ad.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = _rows(raw.decode("utf-8-sig"))
    assert (
        rows[2]["Description 1"]
        == 'Close the gaps in your hybrid cloud in 45 days with Zürich "Cloud", AG.'
    )
