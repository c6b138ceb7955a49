"""A Google Ads Editor CSV of one partner's search campaign, for partners who upload by hand.

Google Ads Editor (Account > Import > From file) reads one row per item, with the
campaign and ad group named on every row to say where the item belongs. We write:

=====================  ==================================================================
Row                    Columns filled
=====================  ==================================================================
campaign               Campaign, Campaign Type (Search), Networks, Campaign Daily Budget
                       (in the account's currency, two decimals), Bid Strategy Type,
                       Campaign Status
ad group               Campaign, Ad Group, Max CPC (manual CPC only), Ad Group Status
responsive search ad   Campaign, Ad Group, Ad type (Responsive search ad), Headline 1..15,
                       Headline N position (pins), Description 1..4, Description N
                       position, Path 1, Path 2, Final URL, Status
keyword (one each)     Campaign, Ad Group, Keyword, Criterion Type (Broad, Phrase, Exact),
                       Status
location (one each)    Campaign, Location (English country name), Location ID (the geo
                       target constant's id, 2276 for Germany)
=====================  ==================================================================

Every row has every column (empty where it does not apply), UTF-8, comma-separated. A cell
that a spreadsheet would run as a formula (starting with =, +, - or @) is written with a
leading single quote (:mod:`partnercast.plugins.spreadsheet`): partners open this file in
Excel before they upload it.
"""

from __future__ import annotations

import io
from pathlib import Path

from babel import Locale

from partnercast.channels.search.ad import DESCRIPTIONS, HEADLINES, SearchAd
from partnercast.channels.search.geo import geo_target_constant
from partnercast.plugins import spreadsheet

MATCH = {"broad": "Broad", "phrase": "Phrase", "exact": "Exact"}


def columns() -> list[str]:
    """The header row, in order."""
    headline_columns = [
        name
        for n in range(1, HEADLINES[1] + 1)
        for name in (f"Headline {n}", f"Headline {n} position")
    ]
    description_columns = [
        name
        for n in range(1, DESCRIPTIONS[1] + 1)
        for name in (f"Description {n}", f"Description {n} position")
    ]
    return [
        "Campaign",
        "Campaign Type",
        "Networks",
        "Campaign Daily Budget",
        "Bid Strategy Type",
        "Campaign Status",
        "Ad Group",
        "Max CPC",
        "Ad Group Status",
        "Ad type",
        *headline_columns,
        *description_columns,
        "Path 1",
        "Path 2",
        "Final URL",
        "Keyword",
        "Criterion Type",
        "Location",
        "Location ID",
        "Status",
    ]


def editor_rows(ad: SearchAd, campaign_name: str) -> list[dict[str, str]]:
    """The rows (as column -> value) for one partner's campaign."""
    ad_group = f"{campaign_name} ad group"
    status = "Enabled" if ad.status == "enabled" else "Paused"
    rows: list[dict[str, str]] = [
        {
            "Campaign": campaign_name,
            "Campaign Type": "Search",
            "Networks": "Google search;Search Partners",
            "Campaign Daily Budget": _money(ad.daily_budget_micros),
            "Bid Strategy Type": "Manual CPC" if ad.max_cpc_micros else "Maximize clicks",
            "Campaign Status": status,
        },
        {
            "Campaign": campaign_name,
            "Ad Group": ad_group,
            "Max CPC": _money(ad.max_cpc_micros) if ad.max_cpc_micros else "",
            "Ad Group Status": "Enabled",
        },
    ]
    ad_row = {
        "Campaign": campaign_name,
        "Ad Group": ad_group,
        "Ad type": "Responsive search ad",
        "Path 1": ad.path1,
        "Path 2": ad.path2,
        "Final URL": ad.final_url,
        "Status": "Enabled",
    }
    for kind, lines in (("Headline", ad.headlines), ("Description", ad.descriptions)):
        for number, line in enumerate(lines, start=1):
            ad_row[f"{kind} {number}"] = line.text
            if line.pin:
                ad_row[f"{kind} {number} position"] = str(line.pin)
    rows.append(ad_row)
    rows += [
        {
            "Campaign": campaign_name,
            "Ad Group": ad_group,
            "Keyword": text,
            "Criterion Type": MATCH[match],
            "Status": "Enabled",
        }
        for text, match in ad.keywords
    ]
    english = Locale("en")
    rows += [
        {
            "Campaign": campaign_name,
            "Location": english.territories.get(country, country),
            "Location ID": geo_target_constant(country).rsplit("/", 1)[1],
        }
        for country in ad.countries
    ]
    return rows


def editor_csv(ad: SearchAd, campaign_name: str) -> str:
    """The whole CSV as text."""
    buffer = io.StringIO()
    writer = spreadsheet.DictWriter(buffer, fieldnames=columns(), restval="", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(editor_rows(ad, campaign_name))
    return buffer.getvalue()


def write_editor_csv(ad: SearchAd, campaign_name: str, path: str | Path) -> Path:
    """Write the CSV to ``path`` (UTF-8 with a byte-order mark, which Editor and Excel
    both read as UTF-8) and return the path."""
    target = Path(path)
    target.write_text(editor_csv(ad, campaign_name), encoding="utf-8-sig", newline="")
    return target


def _money(micros: int) -> str:
    return f"{micros / 1_000_000:.2f}"
