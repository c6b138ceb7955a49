"""Rollups equal a scan of the events; funnel counts, ROI against 20x; partners see only
their own numbers, tenants only theirs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import func, select
from support.cli_tables import table
from support.funnel_world import Funnel, add_form_lead, write_csv
from support.world import START

from partnercast.campaigns.models import Campaign
from partnercast.core.models import Delivery, Event
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.funnel import rollups
from partnercast.funnel.crm_import import import_leads
from partnercast.funnel.metrics import funnel as funnel_rows
from partnercast.funnel.metrics import partner_metrics, total
from partnercast.funnel.spend import add_spend
from partnercast.tenants.models import Tenant

HEADER = "partner,email,campaign,stage,deal_value,currency,occurred_at\n"
# The funnel fixture ran the world to its day 2: what the CRM sends arrives then.
NOW = START + timedelta(days=2)


@pytest.fixture
def results(funnel: Funnel, tmp_path: Path) -> Funnel:
    add_form_lead(funnel, "P001", "a1@c.example", visits=3)
    add_form_lead(funnel, "P001", "a2@c.example")
    add_form_lead(funnel, "P002", "b1@c.example", visits=2)
    csv = write_csv(
        tmp_path / "crm.csv",
        HEADER
        + "P001,a1@c.example,,mql,,,2026-12-05\n"
        + "P001,a1@c.example,,sql,,,2026-12-06\n"
        + "P001,a1@c.example,,opportunity,30000,EUR,2026-12-07\n"
        + "P001,a2@c.example,,mql,,,2026-12-05\n"
        + "P002,b1@c.example,,won,4000,EUR,2026-12-09\n"
        + "P002,b9@c.example,cloud-security,lost,,,2026-12-09\n",
    )
    with funnel.session() as session:
        assert not import_leads(session, csv, now=NOW).rejected
        add_spend(session, "P001", "cloud-security", 1000, now=NOW)
        add_spend(session, "P002", "cloud-security", 500, kind="other", now=NOW)
    return funnel


def test_rollups_equal_a_scan_of_the_event_log(results: Funnel) -> None:
    with results.session() as session:
        stored = rollups.stored_rollups(session)
        assert stored == rollups.scan_rollups(session)
        assert stored  # something was counted
        rollups.rebuild_rollups(session)
        assert rollups.stored_rollups(session) == stored


def test_funnel_counts_rates_values_and_roi(results: Funnel) -> None:
    p1, p2 = results.partners["P001"], results.partners["P002"]
    with results.session() as session:
        a = partner_metrics(session, p1)
        b = partner_metrics(session, p2)
        sent = session.exec(
            select(func.count()).select_from(Delivery).where(Delivery.state == "sent")
        ).one()
        everything = total(funnel_rows(session, by="partner"))
    assert a.counts["visits"] == 4 and a.counts["forms"] == 2 and a.counts["leads"] == 2
    assert (a.counts["mql"], a.counts["sql"], a.counts["opportunity"]) == (2, 1, 1)
    assert a.rate("sql", "mql") == 0.5
    assert a.pipeline == 30000 and a.spend == 1000
    assert a.roi_pipeline == 30 and a.meets_target
    # b1 went straight to won (through opportunity); b9 was lost, a new CRM lead
    assert (b.counts["leads"], b.counts["opportunity"], b.counts["won"], b.counts["lost"]) == (
        2,
        1,
        1,
        1,
    )
    assert b.won_value == 4000 and b.roi_won == 8 and not b.meets_target
    assert everything.counts["delivered"] == sent > 0
    assert everything.counts["sent"] >= sent


def test_groupings_add_up_to_the_same_total(results: Funnel) -> None:
    with results.session() as session:
        totals = {
            by: total(funnel_rows(session, by=by)).counts
            for by in ("partner", "campaign", "segment", "cycle", "total")
        }
    first = totals["partner"]
    assert all(counts == first for counts in totals.values())


def test_some_metrics_read_are_those_of_the_whole_funnel(results: Funnel) -> None:
    """funnel(metrics=...) (what the score reads of 10,000 partners): the same numbers
    for those metrics, in every grouping, and 0 for the others."""
    some = ("leads", "mql", "sql", "opportunity")
    with results.session() as session:
        for by in ("partner", "campaign", "segment", "cycle", "total"):
            whole = {row.key: row for row in funnel_rows(session, by=by)}
            part = {row.key: row for row in funnel_rows(session, by=by, metrics=some)}
            assert set(part) <= set(whole), by
            for key, row in part.items():
                assert {m: row.counts[m] for m in some} == {
                    m: whole[key].counts[m] for m in some
                }, (by, key)
                assert (row.pipeline, row.spend) == (whole[key].pipeline, whole[key].spend)
                assert not any(n for m, n in row.counts.items() if m not in some), (by, key)
            assert any(row.counts["leads"] for row in part.values()), by


def test_partner_metrics_never_show_another_partners_numbers(results: Funnel) -> None:
    p3 = results.partners["P003"]
    with results.session() as session:
        nothing = partner_metrics(session, p3)
    assert nothing.counts["leads"] == 0 and nothing.pipeline == 0 and nothing.spend == 0
    assert nothing.counts["visits"] == 0


def test_another_tenant_sees_none_of_it(results: Funnel) -> None:
    with plain_session(results.engine) as session:
        other = Tenant(slug="southwind", name="Southwind", created_at=utcnow())
        session.add(other)
    with tenant_session(results.engine, other.id or 0) as session:
        rows = funnel_rows(session, by="partner")
        assert rows == []
        with pytest.raises(LookupError):
            partner_metrics(session, results.partners["P001"])


def test_metrics_command_prints_the_target(results: Funnel, cli) -> None:
    out = cli("metrics", "--tenant", "northwind", "--by", "partner")
    assert "target 20x" in out.stdout and "30.0x" in out.stdout
    by_cycle = cli("metrics", "--tenant", "northwind", "--by", "cycle")
    assert "cloud-security cycle 1" in by_cycle.stdout
    mine = cli("metrics", "--tenant", "northwind", "--partner", "P002")
    assert "P001" not in mine.stdout
    cli("metrics", "--tenant", "northwind", "--by", "nonsense", expect=1)


def test_spend_commands(results: Funnel, cli) -> None:
    cli("spend", "add", "P003", "cloud-security", "250", "--kind", "mdf", "--tenant", "northwind")
    listed = cli("spend", "list", "--tenant", "northwind")
    assert "total 1,750.00" in listed.stdout
    bad = cli(
        "spend", "add", "P003", "cloud-security", "5", "--kind", "gift", "-t", "northwind", expect=1
    )
    assert "kind" in bad.stderr
    cli("spend", "add", "P404", "cloud-security", "5", "-t", "northwind", expect=1)


def _channel_events(results: Funnel, external_id: str, **values: float) -> None:
    """What `metrics fetch` records for one of the partner's posts or ads: differences."""
    with results.session() as session:
        campaign = session.exec(select(Campaign)).first()
        assert campaign is not None
        for kind, value in values.items():
            session.add(
                Event(
                    kind=kind,
                    occurred_at=NOW,
                    partner_id=results.partners[external_id],
                    campaign_id=campaign.id,
                    value=value,
                    source="channel-metrics",
                    data={"cumulative": value, "channel": "search"},
                )
            )


def test_social_and_search_numbers_are_in_every_grouping_and_table(results: Funnel, cli) -> None:
    _channel_events(results, "P001", impressions=1200, engagements=30, link_clicks=12)
    _channel_events(results, "P001", ad_cost=84.5, ad_conversions=2)
    _channel_events(results, "P002", impressions=300, link_clicks=3, ad_cost=10.25)
    with results.session() as session:
        assert rollups.stored_rollups(session) == rollups.scan_rollups(session)
        a = partner_metrics(session, results.partners["P001"])
        b = partner_metrics(session, results.partners["P002"])
        nobody = partner_metrics(session, results.partners["P003"])
        sums = {by: total(funnel_rows(session, by=by)) for by in ("partner", "segment", "cycle")}
    assert (a.counts["impressions"], a.counts["engagements"], a.counts["link_clicks"]) == (
        1200,
        30,
        12,
    )
    assert (a.ad_cost, a.ad_conversions) == (84.5, 2.0)
    assert a.rates["engagement rate"] == pytest.approx(30 / 1200)
    assert (b.counts["impressions"], b.ad_cost) == (300, 10.25)
    assert not nobody.has_channel_metrics and a.has_channel_metrics
    for row in sums.values():
        assert row.counts["impressions"] == 1500 and row.ad_cost == pytest.approx(94.75)

    out = cli("metrics", "--tenant", "northwind", "--by", "partner").stdout
    shown = table(out, "social and search by partner (as the networks count them)")
    assert list(shown[0])[1:] == [
        "impressions",
        "engaged",
        "eng. rate",
        "clicks",
        "ad cost",
        "conv.",
    ]
    rows = {row["partner"].split()[0]: list(row.values())[1:] for row in shown}
    assert rows["P001"] == ["1,200", "30", "2%", "12", "84.50", "2.0"]
    assert rows["total"][0] == "1,500" and rows["total"][4] == "94.75"
    # A partner's own view carries its numbers and no other partner's.
    mine = cli("metrics", "--tenant", "northwind", "--partner", "P002").stdout
    assert "10.25" in mine and "1,200" not in mine and "P001" not in mine


def test_the_metrics_subcommands(results: Funnel, cli) -> None:
    shown = cli("metrics", "show", "--tenant", "northwind", "--by", "campaign").stdout
    assert "return by campaign" in shown and "target 20x" in shown
    assert "partnercast metrics fetch" in shown  # nothing fetched yet: says how
    rebuilt = cli("metrics", "rebuild", "--tenant", "northwind").stdout
    assert "rebuilt" in rebuilt
    again = cli("metrics", "--tenant", "northwind", "--by", "campaign").stdout
    assert again == shown
    missing = cli("metrics", expect=1)
    assert "--tenant" in missing.stderr and "Traceback" not in missing.stderr
    unknown = cli("metrics", "--tenant", "northwind", "--campaign", "nope", expect=1)
    assert "--campaign" in unknown.stderr


def test_spend_in_two_currencies_is_said_not_hidden(results: Funnel, cli) -> None:
    quiet = cli("metrics", "--tenant", "northwind", "--by", "total")
    assert "currency" not in quiet.stderr  # the fixture's spend names no currency
    cli("spend", "add", "P001", "cloud-security", "100", "--currency", "eur", "-t", "northwind")
    cli("spend", "add", "P002", "cloud-security", "100", "--currency", "USD", "-t", "northwind")
    mixed = cli("metrics", "--tenant", "northwind", "--by", "total")
    assert "more than one currency ((none given), EUR, USD)" in " ".join(mixed.stderr.split())
    assert "return" in mixed.stdout  # the numbers are still shown
