"""Social and search metrics fetched through the channels, recorded as events, in the funnel.

The digital sample campaign publishes to the X, LinkedIn and Google Ads stand-ins; the
stand-ins then report numbers in each API's documented shape; `metrics fetch` records
the differences as events, which the rollups add to the funnel per partner.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from support.cli_tables import table
from support.world import START, World, build_world

from partnercast.campaigns.ticking import tick
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core import accounts
from partnercast.core.models import Dispatch, Event
from partnercast.core.tenancy import tenant_session
from partnercast.demo import digital as demo_digital
from partnercast.demo.search_standin import GoogleAdsStandIn
from partnercast.demo.social_standin import SocialStandIn
from partnercast.funnel import rollups
from partnercast.funnel.channel_metrics import KINDS, FetchReport, failure_summary, fetch_tenant
from partnercast.funnel.metrics import funnel
from partnercast.plugins.manager import default_plugins
from partnercast.tenants.models import Partner

POSTED = START + timedelta(days=2, hours=1)
FETCH = POSTED + timedelta(days=1)


@dataclass
class Published:
    a: World
    b: World
    social: SocialStandIn
    ads: GoogleAdsStandIn

    def done(self, world: World, channel: str) -> list[Dispatch]:
        with tenant_session(world.engine, world.tenant_id) as session:
            return list(
                session.exec(
                    select(Dispatch)
                    .where(Dispatch.channel == channel, Dispatch.state == "done")
                    .order_by(col(Dispatch.id))
                ).all()
            )

    def events(self, world: World) -> list[Event]:
        with tenant_session(world.engine, world.tenant_id) as session:
            return list(session.exec(select(Event).where(col(Event.kind).in_(list(KINDS)))).all())

    def partner_of(self, world: World, dispatch: Dispatch) -> str:
        with tenant_session(world.engine, world.tenant_id) as session:
            partner = session.get(Partner, dispatch.partner_id)
            assert partner is not None
            return partner.external_id

    def fetch(self, world: World, at=FETCH, days: int = 30):  # type: ignore[no-untyped-def]
        return fetch_tenant(
            world.engine, world.settings, default_plugins(), world.tenant_id, at, days=days
        )


@pytest.fixture
def published(any_engine: Engine, tmp_path: Path) -> Iterator[Published]:
    a = build_world(any_engine, tmp_path / "a", 9, slug="northwind")
    b = build_world(any_engine, tmp_path / "b", 9, slug="southwind")
    with SocialStandIn() as social, GoogleAdsStandIn() as ads:
        for world in (a, b):
            demo_digital.set_up(
                world.engine, world.settings, world.tenant_id, social, ads, {}, START
            )
            tick(world.engine, world.settings, POSTED, after=[scan_after_tick])
        yield Published(a, b, social, ads)


def _partner_counts(world: World) -> dict[int, dict[str, int]]:
    """Funnel counts per partner id (rows are keyed ``p<id, 9 digits>``)."""
    with tenant_session(world.engine, world.tenant_id) as session:
        rows = funnel(session, by="partner")
    return {int(row.key[1:]): row.counts for row in rows if row.key.startswith("p")}


def test_fetch_records_differences_once_and_the_funnel_shows_them(published: Published) -> None:
    [first_x, *_] = published.done(published.a, "x")
    [first_li, *_] = published.done(published.a, "linkedin")
    [first_ad, *_] = published.done(published.a, "search")
    s = published.social
    s.set_metrics(first_x.external_ids[0], impression_count=500, like_count=7, retweet_count=2)
    s.set_metrics(first_li.external_ids[0], impression_count=900, click_count=31, like_count=4)
    published.ads.set_metrics(
        first_ad.external_ids[0], impressions=1200, clicks=40, cost_micros=25_500_000
    )

    report = published.fetch(published.a)
    assert not report.errors and not report.reconnect
    by_kind = {(e.dispatch_id, e.kind): e.value for e in published.events(published.a)}
    assert by_kind[(first_x.id, "impressions")] == 500
    assert by_kind[(first_x.id, "engagements")] == 9
    assert by_kind[(first_li.id, "link_clicks")] == 31  # LinkedIn organisation statistics
    assert by_kind[(first_ad.id, "link_clicks")] == 40
    assert by_kind[(first_ad.id, "ad_cost")] == pytest.approx(25.5)

    # the same totals again: nothing new is recorded, nothing counts twice
    assert published.fetch(published.a).events == 0
    # a day later the network counts more: only the difference is recorded
    s.set_metrics(first_x.external_ids[0], impression_count=650)
    again = published.fetch(published.a, at=FETCH + timedelta(days=1))
    assert again.events == 1 and again.by_kind["impressions"] == 150
    x_impressions = sorted(  # by id: the order recorded (the query has no ORDER BY)
        (
            e
            for e in published.events(published.a)
            if e.dispatch_id == first_x.id and e.kind == "impressions"
        ),
        key=lambda e: e.id or 0,
    )
    assert [e.value for e in x_impressions] == [500, 150]
    assert x_impressions[-1].data["cumulative"] == 650

    counts = _partner_counts(published.a)
    partner = counts[first_x.partner_id]
    assert partner["impressions"] >= 650  # X 650 plus this partner's LinkedIn and ad
    total_impressions = sum(c.get("impressions", 0) for c in counts.values())
    assert total_impressions == 650 + 900 + 1200
    # the rollups agree with a scan of the event log
    with tenant_session(published.a.engine, published.a.tenant_id) as session:
        scanned = rollups.scan_rollups(session)
    assert sum(v[0] for k, v in scanned.items() if k[-1] == "impressions") == 2750


def test_fetching_one_tenant_never_touches_another(published: Published) -> None:
    for world in (published.a, published.b):
        for dispatch in published.done(world, "x"):
            published.social.set_metrics(dispatch.external_ids[0], impression_count=10)
    published.fetch(published.a)
    assert published.events(published.a)
    assert published.events(published.b) == []
    asked = {
        i
        for r in published.social.requests
        if r.method == "GET" and r.path == "/2/tweets"
        for value in r.query.get("ids", [])
        for i in value.split(",")
    }
    mine = {d.external_ids[0] for d in published.done(published.a, "x")}
    theirs = {d.external_ids[0] for d in published.done(published.b, "x")}
    assert asked == mine and not asked & theirs
    assert sum(c.get("impressions", 0) for c in _partner_counts(published.b).values()) == 0


def test_a_refused_account_is_marked_for_reconnecting(published: Published) -> None:
    published.social.fail_next("/2/tweets", 401)
    report = published.fetch(published.a)
    assert len(report.reconnect) == 1
    with tenant_session(published.a.engine, published.a.tenant_id) as session:
        rows = [
            accounts.find_account(session, partner_id=d.partner_id, channel="x")
            for d in published.done(published.a, "x")
        ]
    statuses = sorted(row.status for row in rows if row is not None)
    assert statuses.count(accounts.NEEDS_RECONNECT) == 1
    assert "while fetching metrics" in next(
        row.last_error for row in rows if row and row.status == accounts.NEEDS_RECONNECT
    )
    # the others were fetched; the refused one is skipped until reconnected
    assert published.fetch(published.a).reconnect == []


def test_only_recent_dispatches_are_asked(published: Published) -> None:
    report = published.fetch(published.a, at=POSTED + timedelta(days=40), days=30)
    assert report.dispatches == 0 and report.accounts == 0


def test_the_command(published: Published, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    [first_x, *_] = published.done(published.a, "x")
    published.social.set_metrics(first_x.external_ids[0], impression_count=42)
    monkeypatch.setenv("PARTNERCAST_DATABASE_URL", str(published.a.engine.url))
    before = cli("metrics", "--tenant", "northwind", "--by", "total").stdout
    assert "social and search" not in before and "partnercast metrics fetch" in before
    fetched_at = FETCH.isoformat()
    result = cli("metrics", "fetch", "--tenant", "northwind", "--days", "30", "--now", fetched_at)
    said = " ".join(result.stdout.split())
    assert ": 1 new metric events" in said and "impressions │ 42" in said
    # The tenant may come before the subcommand, as with `partnercast metrics --tenant T`.
    again = cli("metrics", "--tenant", "northwind", "fetch", "--days", "30", "--now", fetched_at)
    assert ": 0 new metric events" in " ".join(again.stdout.split())
    wrong = cli("metrics", "fetsh", "--tenant", "northwind", expect=None)
    assert wrong.exit_code != 0 and "fetch" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    nameless = cli("metrics", "fetch", expect=1)
    assert "--tenant" in nameless.stderr and "Traceback" not in nameless.stderr

    # The funnel tables show what the networks counted, per partner and in total.
    for args in (("metrics",), ("metrics", "show")):
        out = cli(*args, "--tenant", "northwind", "--by", "total").stdout
        [row] = table(out, "social and search by total (as the networks count them)")
        names, cells = list(row), list(row.values())
        assert names[1:] == [
            "impressions",
            "engaged",
            "eng. rate",
            "clicks",
            "ad cost",
            "conv.",
        ]
        assert cells[1] == "42" and cells[2] == "0"
        assert "marketing funnel" in out
    partner = published.partner_of(published.a, first_x)
    mine = cli("metrics", "--tenant", "northwind", "--partner", partner).stdout
    assert "social and search" in mine and "42" in mine


def test_failures_are_summarised_per_channel() -> None:
    report = FetchReport()
    for n in range(1, 8):
        report.failed.append(("x", f"P{n:03d}", f"cannot reach X: refused at /2/tweets?ids={n}"))
    report.failed.append(("search", "P002", "x" * 500))
    lines = failure_summary(report)
    assert lines[0].startswith("search: 1 partner (P002): xxx") and len(lines[0]) < 250
    assert lines[1] == (
        "x: 7 partners (P001, P002, P003, P004, P005, ...): cannot reach X: refused at "
        "/2/tweets?ids=1"
    )


def test_the_worker_job_fetches_every_tenant(published: Published) -> None:
    from partnercast.funnel.channel_metrics import JOB_EVERY, job

    for world in (published.a, published.b):
        [first, *_] = published.done(world, "x")
        published.social.set_metrics(first.external_ids[0], impression_count=3)
    periodic = job(published.a.engine, published.a.settings, default_plugins())
    assert periodic.name == "channel-metrics" and periodic.every == JOB_EVERY and periodic.once
    report = periodic.function(FETCH)
    assert report.events == 2
    assert len(published.events(published.a)) == len(published.events(published.b)) == 1
