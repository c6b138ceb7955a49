"""The concierge's tables at 80 columns: nothing cut, nothing dropped, rows that stay rows.

Rendered through the real CLI with COLUMNS=80, after a small cycle, with partner names,
a concierge and task texts as long as real ones get. Every line fits 80 terminal cells;
the key column (the partner) is in every table and every part of one; numbers, dates and
campaign keys are whole; text wraps at word boundaries.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from rich.cells import cell_len
from sqlmodel import select
from support.cli_tables import table
from support.world import START, World, respond, run_days, start

from partnercast.core.accounts import NEEDS_RECONNECT, ChannelAccount
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.models import Partner

AT = START + timedelta(days=3)
LONG_NAMES = {
    "P001": "Nordlicht Systemhaus Rechenzentrum GmbH & Co. KG",
    "P002": "Meridian Information Technology Consulting Partners",
    "P003": "株式会社クラウド東京 Cloud 🚀",
}
OWNER = "Anna-Katharina Lüdenscheid-Brandt"
ABOUT = "Walk the partner through reconnecting LinkedIn before the second touch goes out"


@pytest.fixture
def cycled(world: World, cli, monkeypatch: pytest.MonkeyPatch) -> World:  # type: ignore[no-untyped-def]
    respond(world, {"P001": "approve", "P002": "approve", "P003": "approve", "P004": "silent"})
    start(world)
    run_days(world, 0, 2)
    with tenant_session(world.engine, world.tenant_id) as session:
        partners = session.exec(select(Partner).order_by(Partner.external_id)).all()
        for partner in partners:
            partner.name = LONG_NAMES.get(partner.external_id, partner.name)
            session.add(partner)
            for channel in ("x", "linkedin", "search"):
                broken = partner.external_id == "P002" and channel == "x"
                session.add(
                    ChannelAccount(
                        partner_id=partner.id or 0,
                        channel=channel,
                        settings={"rate_per_day": 300} if channel == "x" else {},
                        status=NEEDS_RECONNECT if broken else "connected",
                        created_at=utcnow(),
                        updated_at=utcnow(),
                    )
                )
    monkeypatch.setenv("COLUMNS", "80")
    cli("concierges", "add", OWNER, "-t", "northwind",
        "--languages", "de,en")  # fmt: skip
    for partner in ("P001", "P002", "P003"):
        cli("tasks", "add", partner, "-t", "northwind", "--kind", "onboarding", "--title", ABOUT,
            "--owner", OWNER, "--by", "lena.vogel@agency.example")  # fmt: skip
    return world


def _fits(out: str) -> None:
    assert "…" not in out, out
    too_wide = [line for line in out.splitlines() if cell_len(line) > 80]
    assert not too_wide, "\n".join(too_wide)


def test_metrics_keep_the_partner_column_in_every_table_and_part(cycled: World, cli) -> None:  # type: ignore[no-untyped-def]
    out = cli("metrics", "--tenant", "northwind", "--by", "partner").stdout
    _fits(out)
    for title in (
        "marketing funnel by partner",
        "email engagement by partner (opened, clicked: unique)",
        "sales funnel by partner",
        "return by partner",
    ):
        rows = table(out, title)
        assert rows, title
        keys = [row["partner"] for row in rows]
        # whole labels (wrapped at word boundaries, joined back here)
        assert "P001 " + LONG_NAMES["P001"] in keys and "P002 " + LONG_NAMES["P002"] in keys
        assert "P003 " + LONG_NAMES["P003"] in keys and keys[-1] == "total"
        assert all(value != "" for row in rows for value in row.values()), rows
    marketing = table(out, "marketing funnel by partner")
    assert list(marketing[0]) == [
        "partner", "sent", "delivered", "bounced", "complained", "unsubscribed", "visits",
        "forms", "complaint rate",
    ]  # fmt: skip
    by_cycle = cli("metrics", "--tenant", "northwind", "--by", "cycle").stdout
    _fits(by_cycle)
    assert table(by_cycle, "return by cycle")[0]["cycle"] == "cloud-security cycle 1"
    scores = cli("score", "--tenant", "northwind").stdout
    _fits(scores)
    assert {row["partner"] for row in table(scores, "contender scores")} >= {"P001", "P002"}


def test_tasks_keep_each_row_on_one_line_and_what_it_is_about_whole(cycled: World, cli) -> None:  # type: ignore[no-untyped-def]
    out = cli("tasks", "--tenant", "northwind").stdout
    _fits(out)
    lines = out.splitlines()
    rows = [line for line in lines if line.startswith("#")]
    assert len(rows) >= 3
    for partner in ("P001", "P002", "P003"):
        [row] = [r for r in rows if f" {partner} " in r and "onboarding" in r]
        # due (a date: the world's cycle runs on today's clock), partner, kind, status
        assert row.split()[-1] == "open" and re.search(r" \d{4}-\d{2}-\d{2} ", row)
    assert " ".join(out.split()).count(ABOUT) == 3  # wrapped at words, whole
    assert OWNER in out  # the owner: on the row or under it
    assert "lena.vogel@agency.example" in out


def test_the_review_agenda_cuts_no_word(cycled: World, cli) -> None:  # type: ignore[no-untyped-def]
    out = cli("review", "P001", "--tenant", "northwind", "--at", AT.isoformat()).stdout
    _fits(out)
    went = table(out, "What went out since the last review")
    assert went[0]["campaign"] == "cloud-security" and went[0]["channel"] == "email"
    assert int(went[0]["sent"]) >= int(went[0]["delivered"]) > 0 and "suppressed" in went[0]
    tasks = table(out, "Open tasks")
    assert ABOUT in [row["about"] for row in tasks]
    assert OWNER in [row["owner"] for row in tasks]
    said = " ".join(out.split())
    assert LONG_NAMES["P001"] in said and "last review: none yet" in said


def test_status_sums_up_many_accounts_per_channel(cycled: World, cli) -> None:  # type: ignore[no-untyped-def]
    partners = 6
    for args in (("status", "--tenant", "northwind"), ("status",)):
        out = cli(*args).stdout
        _fits(out)
        assert len(out.splitlines()) < 50
        said = " ".join(out.split())
        where = "northwind" if len(args) > 1 else "all tenants"
        assert f"accounts ({where}): {3 * partners} on 3 channels" in said
        assert "accounts needing reconnection (1): P002 (x)" in said
        assert "every account: partnercast status --accounts" in said
        for line in out.splitlines():  # one row per channel, not one per account
            assert not line.startswith("│ P0"), line
    summary = cli("status", "--tenant", "northwind").stdout
    rows = {row["channel"]: row for row in table(summary, "accounts (northwind): 18 on 3 channels")}
    assert set(rows) == {"x", "linkedin", "search"}
    assert rows["x"]["accounts"] == str(partners) and "1 needs reconnect" in rows["x"]["state"]
    assert rows["x"]["limit"] == "300/day" and rows["search"]["state"] == "connected"
    every = cli("status", "--tenant", "northwind", "--accounts").stdout
    _fits(every)
    listed = [line for line in every.splitlines() if line.startswith("│ P0")]
    assert len(listed) == 3 * partners
