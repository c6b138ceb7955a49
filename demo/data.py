"""The demo's made-up vendor, partners and contacts (deterministic: the same every run)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from partnercast.plugins import spreadsheet

TENANT_SLUG = "northwind"
TENANT_NAME = "Northwind Cloud"
TENANT_BRAND = {
    "legal_name": "Northwind Cloud Inc.",
    "postal_address": "500 Harbor Drive, Seattle, WA 98101, USA",
    "logo_url": "https://northwind.example/logo.png",
    "primary_color": "#0b5cab",
    "secondary_color": "#f2f6fb",
}


@dataclass(frozen=True)
class SegmentPlan:
    tier: str
    region: str
    languages: tuple[str, ...]
    time_zones: tuple[str, ...]
    cities: tuple[tuple[str, str], ...]  # (city, country line)
    share: float


PLANS = (
    SegmentPlan(
        "gold",
        "EMEA",
        ("de", "en"),
        ("Europe/Berlin", "Europe/Vienna", "Europe/Zurich"),
        (
            ("Berlin", "10115 Berlin, Germany"),
            ("München", "80331 München, Germany"),
            ("Wien", "1010 Wien, Austria"),
            ("Zürich", "8001 Zürich, Switzerland"),
        ),
        0.35,
    ),
    SegmentPlan(
        "silver",
        "NA",
        ("en",),
        ("America/New_York", "America/Chicago", "America/Toronto"),
        (
            ("Boston", "Boston, MA 02110, USA"),
            ("Austin", "Austin, TX 78701, USA"),
            ("Toronto", "Toronto, ON M5H 2N2, Canada"),
        ),
        0.35,
    ),
    SegmentPlan(
        "registered",
        "APAC",
        ("en",),
        ("Asia/Singapore", "Australia/Sydney", "Asia/Tokyo"),
        (
            ("Singapore", "Singapore 048583"),
            ("Sydney", "Sydney NSW 2000, Australia"),
            ("Tokyo", "Chiyoda, Tokyo 100-0005, Japan"),
        ),
        0.30,
    ),
)

WORDS_A = (
    "Alpine",
    "Blue",
    "Cedar",
    "Delta",
    "Evergreen",
    "Falcon",
    "Granite",
    "Harbor",
    "Iron",
    "Juniper",
    "Keystone",
    "Lumen",
    "Meridian",
    "North",
    "Orbit",
    "Pioneer",
    "Quartz",
    "River",
    "Summit",
    "Tidal",
    "Union",
    "Vertex",
    "Willow",
    "Zenith",
)
WORDS_B = ("Systems", "IT", "Networks", "Solutions", "Integration", "Cloudworks", "Digital", "Data")
FIRST = (
    "Anna",
    "Ben",
    "Chloe",
    "David",
    "Elena",
    "Felix",
    "Grace",
    "Hiro",
    "Isabel",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Noah",
    "Olga",
    "Paul",
    "Rina",
    "Sam",
    "Tara",
    "Umar",
    "Vera",
    "Wei",
)
LAST = (
    "Becker",
    "Chen",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Huber",
    "Ito",
    "Jensen",
    "Kim",
    "Lopez",
    "Meyer",
    "Novak",
    "Okafor",
    "Patel",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Weber",
    "Young",
)
COMPANIES = (
    "Acme Logistics",
    "Bergmann AG",
    "Contoso Retail",
    "Dunmore Health",
    "Elbe Foods",
    "Fabrikam Bank",
    "Globex",
    "Hanse Energie",
    "Initech",
    "Kessler Bau",
    "Lakeside Labs",
    "Mosaic Media",
    "Nordlicht Versicherung",
    "Oakridge Schools",
    "Pinnacle Freight",
)


def partner_rows(count: int, rng: random.Random) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    names = [f"{a} {b}" for a in WORDS_A for b in WORDS_B]
    rng.shuffle(names)
    for index in range(count):
        plan = _plan_for(index, count)
        name = names[index % len(names)]
        _city, address = plan.cities[index % len(plan.cities)]
        slug = name.lower().replace(" ", "")
        suffix = (
            "GmbH" if plan.region == "EMEA" else ("Pte. Ltd." if plan.region == "APAC" else "LLC")
        )
        contact_first, contact_last = rng.choice(FIRST), rng.choice(LAST)
        rows.append(
            {
                "external_id": f"P{index + 1:03d}",
                "name": name,
                "tier": plan.tier,
                "region": plan.region,
                "languages": ";".join(plan.languages),
                "tags": "rising" if rng.random() < 0.2 else "",
                "score": str(rng.randint(20, 95)),
                "time_zone": plan.time_zones[index % len(plan.time_zones)],
                "legal_name": f"{name} {suffix}",
                "postal_address": f"{rng.randint(1, 200)} Market Street, {address}"
                if plan.region != "EMEA"
                else f"Hauptstraße {rng.randint(1, 200)}, {address}",
                "logo_url": f"https://{slug}.example/logo.png",
                "primary_color": f"#{rng.randint(0, 0xFFFFFF):06x}",
                "secondary_color": "#f5f5f5",
                "signature": f"{contact_first} {contact_last}, {name}",
                "sender_name": f"{contact_first} at {name}",
                "sender_email": f"marketing@{slug}.example",
                "contact_name": f"{contact_first} {contact_last}",
                "contact_email": f"{contact_first.lower()}.{contact_last.lower()}@{slug}.example",
                "status": "active",
            }
        )
    return rows


def _plan_for(index: int, count: int) -> SegmentPlan:
    gold = round(count * PLANS[0].share)
    silver = round(count * PLANS[1].share)
    if index < gold:
        return PLANS[0]
    if index < gold + silver:
        return PLANS[1]
    return PLANS[2]


def contact_rows(
    partners: list[dict[str, str]], total: int, rng: random.Random
) -> list[dict[str, str]]:
    """About ``total`` contacts spread over the partners, with a few bad rows on purpose."""
    rows: list[dict[str, str]] = []
    weights = [rng.uniform(0.4, 1.6) for _ in partners]
    scale = total / sum(weights)
    for partner, weight in zip(partners, weights, strict=True):
        german = partner["languages"].startswith("de")
        for number in range(max(5, round(weight * scale))):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            company = rng.choice(COMPANIES)
            domain = company.lower().replace(" ", "-") + ".example"
            if rng.random() < 0.01:
                domain = "bounce.example"  # the demo's SMTP server refuses these: hard bounces
            rows.append(
                {
                    "partner": partner["external_id"],
                    "external_id": f"{partner['external_id']}-C{number + 1:04d}",
                    "email": f"{first.lower()}.{last.lower()}.{number}@{domain}",
                    "first_name": first,
                    "last_name": last,
                    "company": company,
                    "locale": "de" if german and rng.random() < 0.6 else "en",
                    "consent": "yes",
                }
            )
    rows[3]["email"] = "not-an-address"
    rows[7]["locale"] = "xx_YY"
    rows[11]["consent"] = ""  # no consent given: rejected ("no" would withdraw it)
    return rows


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = spreadsheet.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
