"""Social and search metrics, fetched through the channels' plugins, recorded as events.

For every done dispatch of a channel that fetches metrics (``Channel.supports_metrics``)
finished in the last ``days`` days, the partner's connected account is asked, once per
partner and channel, for the numbers of all its posts (``Channel.fetch_metrics``). The
networks answer lifetime totals (cumulative); the funnel wants additions. So:

- each number becomes an Event of one of :data:`KINDS` for that dispatch, whose ``value``
  is the **difference** from what was recorded before, and whose data holds the
  cumulative total and the day of the snapshot;
- what was recorded before is the sum of the dispatch's earlier events of that kind (no
  second copy of the state to drift); a fetch that finds nothing new records nothing, so
  fetching twice, or every hour, never counts anything twice;
- the rollups turn each event into its funnel metric as it is written
  (:mod:`partnercast.funnel.rollups`), so ``partnercast metrics`` shows impressions,
  engagements and link clicks per partner, campaign, segment and cycle.

A network that lowers a number (a like withdrawn) records a negative difference: the
funnel follows the network's latest total. The dispatch row is locked (``FOR UPDATE`` on
PostgreSQL) while its differences are computed and written, so two workers fetching at
once cannot record the same difference twice; SQLite runs one writer at a time.

An account the network refuses (AuthError) is marked ``needs_reconnect``, as publishing
does, and skipped until the partner reconnects; other errors are counted and logged, and
the remaining partners are fetched.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from partnercast.campaigns.models import Enrollment
from partnercast.core import accounts
from partnercast.core.bounds import amount_problem
from partnercast.core.errors import UserError
from partnercast.core.models import Dispatch, Event
from partnercast.core.scheduler import PeriodicJob
from partnercast.core.secrets import SecretBox, SecretsError, secret_box
from partnercast.core.settings import Settings
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import as_utc
from partnercast.plugins import AuthError, Channel, ChannelError
from partnercast.plugins.manager import Plugins
from partnercast.tenants.models import Partner, Tenant

log = logging.getLogger(__name__)

DEFAULT_DAYS = 30
JOB_NAME = "channel-metrics"
JOB_EVERY = timedelta(days=1)
SOURCE = "channel-metrics"

ENGAGEMENT_COUNTS = (
    "like_count",
    "comment_count",
    "share_count",
    "retweet_count",
    "reply_count",
    "quote_count",
)
KINDS: dict[str, str] = {
    "impressions": "how many times the post or ad was shown",
    "engagements": "likes, comments, shares, reposts, replies and quotes",
    "link_clicks": "clicks the network counted (LinkedIn organisations, search ads)",
    "ad_cost": "what the ad cost, in the ad account's currency",
    "ad_conversions": "conversions Google Ads counted",
}
"""Event kinds this module records; each event's ``value`` is the difference."""


def totals(metrics: Mapping[str, Any]) -> dict[str, float]:
    """One post's numbers (as ``fetch_metrics`` gives them) as cumulative totals by kind.

    Only what the network reported: a kind it says nothing about is left out, so that a
    missing number is never mistaken for a zero that would cancel earlier counts.
    """
    found: dict[str, float] = {}
    if "impression_count" in metrics:
        found["impressions"] = float(metrics["impression_count"] or 0)
    engaged = [name for name in ENGAGEMENT_COUNTS if name in metrics]
    if engaged:
        found["engagements"] = float(sum(int(metrics[name] or 0) for name in engaged))
    if "click_count" in metrics:
        found["link_clicks"] = float(metrics["click_count"] or 0)
    if "cost_micros" in metrics:
        found["ad_cost"] = int(metrics["cost_micros"] or 0) / 1_000_000
    if "conversions" in metrics:
        found["ad_conversions"] = float(metrics["conversions"] or 0.0)
    return found


@dataclass
class FetchReport:
    """What one fetch did, for the command's summary and the tests."""

    dispatches: int = 0
    found: int = 0
    """Posts and ads of the period with a network id (``dispatches``: those read)."""
    events: int = 0
    accounts: int = 0
    reconnect: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    """(channel, partner external id, why) of every account not fetched, for summaries."""
    by_kind: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def merge(self, other: FetchReport) -> None:
        self.dispatches += other.dispatches
        self.found += other.found
        self.events += other.events
        self.accounts += other.accounts
        self.reconnect += other.reconnect
        self.errors += other.errors
        self.failed += other.failed
        for kind, value in other.by_kind.items():
            self.by_kind[kind] += value


def fetch_tenant(
    engine: Engine,
    settings: Settings,
    plugins: Plugins,
    tenant_id: int,
    now: datetime,
    *,
    days: int = DEFAULT_DAYS,
    box: SecretBox | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> FetchReport:
    """Fetch and record the metrics of one tenant's recent social and search dispatches;
    ``on_progress(done, total)`` after each account read."""
    if days < 1:
        raise UserError("must be at least 1", where="--days")
    moment = as_utc(now)
    classes = {
        name: cls for name, cls in plugins.channel_classes().items() if cls.supports_metrics()
    }
    report = FetchReport()
    if not classes:
        return report
    with tenant_session(engine, tenant_id) as session:
        rows = session.exec(
            select(Dispatch).where(
                Dispatch.state == "done",
                col(Dispatch.channel).in_(list(classes)),
                col(Dispatch.finished_at) >= moment - timedelta(days=days),
            )
        ).all()
        groups: dict[tuple[int, str], list[Dispatch]] = defaultdict(list)
        for dispatch in rows:
            if dispatch.external_ids:
                groups[(dispatch.partner_id, dispatch.channel)].append(dispatch)
                report.found += 1
    channels: dict[str, Channel] = {}
    try:
        for done, ((partner_id, name), dispatches) in enumerate(sorted(groups.items()), 1):
            channel = channels.get(name) or channels.setdefault(
                name, _channel(plugins, name, settings, moment)
            )
            box = box or secret_box(settings)
            report.merge(
                _fetch_account(engine, tenant_id, channel, partner_id, dispatches, moment, box)
            )
            if on_progress:
                on_progress(done, len(groups))
    finally:
        for channel in channels.values():
            close = getattr(channel, "close", None)
            if callable(close):
                close()
    return report


def fetch_all(
    engine: Engine,
    settings: Settings,
    plugins: Plugins,
    now: datetime,
    *,
    days: int = DEFAULT_DAYS,
    tenant_ids: Iterable[int] | None = None,
) -> FetchReport:
    """:func:`fetch_tenant` for every tenant (or those given), each in its own scope."""
    if tenant_ids is None:
        with plain_session(engine) as session:
            tenant_ids = [t.id for t in session.exec(select(Tenant)).all() if t.id is not None]
    report = FetchReport()
    for tenant_id in tenant_ids:
        report.merge(fetch_tenant(engine, settings, plugins, tenant_id, now, days=days))
    return report


def _fetch_account(
    engine: Engine,
    tenant_id: int,
    channel: Channel,
    partner_id: int,
    dispatches: Sequence[Dispatch],
    now: datetime,
    box: SecretBox,
) -> FetchReport:
    report = FetchReport()
    with tenant_session(engine, tenant_id) as session:
        row = accounts.find_account(session, partner_id=partner_id, channel=channel.name)
        partner = session.get(Partner, partner_id)
    if row is None or row.status == accounts.NEEDS_RECONNECT:
        return report  # nothing connected, or waiting for the partner to reconnect
    label = partner.external_id if partner is not None else str(partner_id)
    where = f"partner {label} on {channel.name}"

    def failed(why: str) -> FetchReport:
        report.errors.append(f"{where}: {why}")
        report.failed.append((channel.name, label, why))
        return report

    try:
        account: BaseModel = accounts.load_account(row, type(channel).Account, box)
    except (SecretsError, UserError) as error:
        return failed(f"the stored account cannot be read: {error}")
    ids = [external for dispatch in dispatches for external in dispatch.external_ids]
    try:
        answers = channel.fetch_metrics(account, ids)
    except AuthError as error:
        with tenant_session(engine, tenant_id) as session:
            stored = accounts.find_account(session, partner_id=partner_id, channel=channel.name)
            if stored is not None:
                accounts.mark_needs_reconnect(stored, f"while fetching metrics: {error}", now=now)
                session.add(stored)
        log.warning("the %s account of partner %s needs reconnecting", channel.name, partner_id)
        report.reconnect.append(where)
        return report
    except ChannelError as error:
        # Info, not a warning: one per account would bury the summary when a network is
        # down for everyone; the command and the job report the failures grouped.
        log.info("metrics of %s not fetched: %s", where, error)
        return failed(str(error))
    report.accounts += 1
    by_id = {str(answer.get("external_id")): answer for answer in answers}
    for dispatch in dispatches:
        found: dict[str, float] = defaultdict(float)
        for external in dispatch.external_ids:
            try:
                numbers = totals(by_id.get(external, {}))
            except (TypeError, ValueError) as error:  # the network answered junk
                log.info("metrics of %s for %s not numbers: %s", where, external, error)
                continue
            for kind, value in numbers.items():
                if amount_problem(value) is None:  # finite, 0 to a trillion: core/bounds
                    found[kind] += value
                else:
                    log.info("%s %r of %s for %s not recorded", kind, value, where, external)
        report.dispatches += 1
        if found:
            _record(engine, tenant_id, dispatch.id or 0, dict(found), now, channel.name, report)
    return report


def _record(
    engine: Engine,
    tenant_id: int,
    dispatch_id: int,
    found: dict[str, float],
    now: datetime,
    channel: str,
    report: FetchReport,
) -> None:
    """Events for the differences between ``found`` and what the dispatch has recorded."""
    with tenant_session(engine, tenant_id) as session:
        dispatch = session.exec(
            select(Dispatch).where(Dispatch.id == dispatch_id).with_for_update()
        ).one()
        recorded = recorded_totals(session, dispatch_id)
        enrollment = session.get(Enrollment, dispatch.enrollment_id)
        for kind, cumulative in sorted(found.items()):
            delta = round(cumulative - recorded.get(kind, 0.0), 6)
            if delta == 0:
                continue
            session.add(
                Event(
                    kind=kind,
                    occurred_at=now,
                    partner_id=dispatch.partner_id,
                    campaign_id=enrollment.campaign_id if enrollment else None,
                    enrollment_id=dispatch.enrollment_id,
                    dispatch_id=dispatch_id,
                    value=delta,
                    source=SOURCE,
                    data={
                        "cumulative": cumulative,
                        "day": now.date().isoformat(),
                        "channel": channel,
                        "cycle_id": dispatch.cycle_id,
                    },
                )
            )
            report.events += 1
            report.by_kind[kind] += delta


def recorded_totals(session: Session, dispatch_id: int) -> dict[str, float]:
    """What the dispatch's metric events add up to so far, by kind (its last totals)."""
    rows = session.exec(
        select(Event.kind, func.sum(Event.value))
        .where(Event.dispatch_id == dispatch_id, col(Event.kind).in_(list(KINDS)))
        .group_by(Event.kind)
    ).all()
    return {kind: float(total or 0.0) for kind, total in rows}


def _channel(plugins: Plugins, name: str, settings: Settings, moment: datetime) -> Channel:
    """The channel ``name`` built with the plugins' config, on a clock that reads the
    fetch's instant: whatever the channel stamps is the time the fetch is for."""
    return plugins.channel(name, settings, clock=lambda: moment)


def job(engine: Engine, settings: Settings, plugins: Plugins) -> PeriodicJob:
    """The worker's daily job: every tenant's metrics, for the instant it runs for."""

    def run(now: datetime) -> FetchReport:
        report = fetch_all(engine, settings, plugins, now)
        for line in failure_summary(report):
            log.warning("channel metrics not fetched: %s", line)
        log.info(
            "channel metrics: %d dispatches, %d events, %d accounts to reconnect, %d errors",
            report.dispatches,
            report.events,
            len(report.reconnect),
            len(report.errors),
        )
        return report

    return PeriodicJob(JOB_NAME, run, JOB_EVERY)


def failure_summary(report: FetchReport, *, names: int = 5, width: int = 200) -> list[str]:
    """One line per channel that failed: how many partners, which, and the first reason.

    A network that is down fails for every partner with the same cause; forty copies of
    one connection error would hide what matters.
    """
    by_channel: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for channel, partner, why in report.failed:
        by_channel[channel].append((partner, why))
    lines = []
    for channel, failures in sorted(by_channel.items()):
        partners = [partner for partner, _ in failures]
        shown = ", ".join(partners[:names]) + (", ..." if len(partners) > names else "")
        why = failures[0][1]
        why = why if len(why) <= width else why[: width - 3] + "..."
        count = f"{len(partners)} partner" + ("s" if len(partners) != 1 else "")
        lines.append(f"{channel}: {count} ({shown}): {why}")
    return lines


__all__ = [
    "KINDS",
    "FetchReport",
    "failure_summary",
    "fetch_all",
    "fetch_tenant",
    "job",
    "recorded_totals",
    "totals",
]
