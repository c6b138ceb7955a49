"""What ``partnercast status`` shows: the queue, send rates, limits, accounts and workers.

Everything is read in the caller's session: a tenant session shows one tenant's queue,
accounts and rates; a system session (the operator, with no --tenant) shows every
tenant's, each account labelled with its tenant. Provider-wide caps and live workers
belong to no tenant and are shown to both.

Rates: "sent" comes from the ledger (Delivery.sent_at for channels with an audience,
Dispatch.finished_at of done dispatches for posts); "taken" from the rate buckets
(tokens the throttle granted), so a limit can be compared with what it let through.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rich.text import Text
from sqlalchemy import and_, case, func, or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from partnercast.campaigns.dispatching import one_line
from partnercast.campaigns.throttle import account_limits, provider_limits
from partnercast.core import outbox
from partnercast.core.accounts import NEEDS_RECONNECT, ChannelAccount
from partnercast.core.cli import plain
from partnercast.core.cli_tables import Column, print_table
from partnercast.core.heartbeat import WorkerHeartbeat, live_workers
from partnercast.core.models import Delivery, Dispatch, Event
from partnercast.core.ratelimit import ProviderBucket, RateBucket, limits_from, taken_recently
from partnercast.core.tenancy import plain_session
from partnercast.core.timeutil import as_utc
from partnercast.plugins.channel import Channel

Key = tuple[int, int, str]  # tenant, partner, channel


@dataclass
class Rates:
    sent_minute: int = 0
    sent_hour: int = 0
    taken_minute: float = 0.0
    taken_hour: float = 0.0


@dataclass
class AccountStatus:
    tenant: str
    partner: str
    channel: str
    status: str
    limit: str
    rates: Rates

    @property
    def needs_reconnect(self) -> bool:
        return self.status == NEEDS_RECONNECT


@dataclass
class ProviderStatus:
    channel: str
    limit: str
    taken_minute: float
    taken_hour: float


@dataclass
class Why:
    """One distinct reason dispatches are being retried or have failed."""

    state: str  # "retrying" or "failed"
    channel: str
    reason: str
    count: int
    tenants: list[str] = field(default_factory=list)


WHY_LINES = 8
"""The most frequent reasons shown; the rest are counted in one more line."""


@dataclass
class Status:
    queue: dict[str, dict[str, int]]
    channels: dict[str, Rates]
    channel_limits: dict[str, str]
    accounts: list[AccountStatus]
    providers: list[ProviderStatus]
    workers: list[WorkerHeartbeat] = field(default_factory=list)
    # channel -> (resent, not resent): messages on the wire when a worker died (issue 5)
    uncertain: dict[str, tuple[int, int]] = field(default_factory=dict)
    why: list[Why] = field(default_factory=list)


def _why(session: Session, slugs: dict[int | None, str]) -> list[Why]:
    """Why dispatches are being retried (pending again after a failed attempt) or have
    failed: one entry per state, channel and reason, the most frequent first. Counted in
    the database over the failed and retrying rows only (the state index finds them)."""
    retrying = and_(
        col(Dispatch.state) == outbox.PENDING,
        col(Dispatch.attempts) > 0,
        col(Dispatch.last_error).startswith("retrying: "),
    )
    rows = session.exec(
        select(  # type: ignore[call-overload]  # sqlmodel types select() up to 4 columns
            Dispatch.state,
            Dispatch.channel,
            Dispatch.last_error,
            Dispatch.tenant_id,
            func.count(),
        )
        .where(or_(col(Dispatch.state) == outbox.FAILED, retrying))
        .group_by(Dispatch.state, Dispatch.channel, Dispatch.last_error, Dispatch.tenant_id)
    ).all()
    found: dict[tuple[str, str, str], Why] = {}
    for state, channel, last_error, tenant_id, count in rows:
        label = "retrying" if state == outbox.PENDING else state
        reason = (last_error or "no reason recorded").removeprefix("retrying: ")
        why = found.setdefault((label, channel, reason), Why(label, channel, reason, 0))
        why.count += int(count)
        slug = slugs.get(tenant_id, str(tenant_id))
        if slug not in why.tenants:
            why.tenants.append(slug)
    return sorted(found.values(), key=lambda w: (w.state != "retrying", -w.count, w.reason))


def _uncertain(session: Session) -> dict[str, tuple[int, int]]:
    """Uncertain deliveries per channel, summed from the ``deliveries.uncertain`` events
    (few, and indexed by kind: the delivery table is not scanned)."""
    rows = session.exec(
        select(Dispatch.channel, Event.data)
        .join(Dispatch, col(Dispatch.id) == Event.dispatch_id)
        .where(Event.kind == "deliveries.uncertain")
    ).all()
    totals: dict[str, tuple[int, int]] = {}
    for channel, data in rows:
        resent, kept = totals.get(channel, (0, 0))
        totals[channel] = (
            resent + int((data or {}).get("resent", 0)),
            kept + int((data or {}).get("not_resent", 0)),
        )
    return totals


def _sent(session: Session, now: datetime, audience: set[str]) -> dict[tuple[int, int, str], Rates]:
    """Messages (audience channels) and posts (others) sent in the last minute and hour."""
    minute, hour = now - timedelta(minutes=1), now - timedelta(hours=1)
    rates: dict[tuple[int, int, str], Rates] = defaultdict(Rates)
    messages = session.exec(
        select(  # type: ignore[call-overload]  # sqlmodel types select() up to 4 columns
            Dispatch.tenant_id,
            Dispatch.partner_id,
            Dispatch.channel,
            func.sum(case((col(Delivery.sent_at) >= minute, 1), else_=0)),
            func.count(),
        )
        .join(Delivery, col(Delivery.dispatch_id) == col(Dispatch.id))
        .where(Delivery.state == outbox.SENT, col(Delivery.sent_at) >= hour)
        .where(col(Delivery.sent_at) <= now)  # a simulated clock may have run ahead
        .group_by(Dispatch.tenant_id, Dispatch.partner_id, Dispatch.channel)
    ).all()
    posts = session.exec(
        select(  # type: ignore[call-overload]  # sqlmodel types select() up to 4 columns
            Dispatch.tenant_id,
            Dispatch.partner_id,
            Dispatch.channel,
            func.sum(case((col(Dispatch.finished_at) >= minute, 1), else_=0)),
            func.count(),
        )
        .where(Dispatch.state == outbox.DONE, col(Dispatch.finished_at) >= hour)
        .where(col(Dispatch.finished_at) <= now)
        .group_by(Dispatch.tenant_id, Dispatch.partner_id, Dispatch.channel)
    ).all()
    for tenant_id, partner_id, channel, last_minute, last_hour in messages:
        rate = rates[(tenant_id, partner_id, channel)]
        rate.sent_minute += int(last_minute or 0)
        rate.sent_hour += int(last_hour or 0)
    for tenant_id, partner_id, channel, last_minute, last_hour in posts:
        if channel in audience:
            continue
        rate = rates[(tenant_id, partner_id, channel)]
        rate.sent_minute += int(last_minute or 0)
        rate.sent_hour += int(last_hour or 0)
    return rates


def _limit_text(limits: list[Any]) -> str:
    return ", ".join(str(limit) for limit in limits) or "none"


def gather(
    engine: Engine,
    session: Session,
    now: datetime,
    channels: dict[str, type[Channel]],
    settings: Any,
) -> Status:
    """The status as seen from ``session`` (tenant-scoped or system) at ``now``."""
    from partnercast.tenants.models import Partner, Tenant

    moment = as_utc(now)
    audience = {name for name, cls in channels.items() if cls.audience}
    queue = outbox.queue_counts(session, moment)
    sent = _sent(session, moment, audience)

    account_rows = session.exec(select(ChannelAccount)).all()
    buckets = session.exec(select(RateBucket)).all()
    partners = {p.id: p for p in session.exec(select(Partner)).all()}
    tenant_ids = {p.tenant_id for p in partners.values()}
    tenant_ids |= set(session.exec(select(Dispatch.tenant_id).distinct()).all())
    with plain_session(engine) as plain:
        slugs = {
            t.id: t.slug
            for t in plain.exec(select(Tenant).where(col(Tenant.id).in_(tenant_ids))).all()
        }

    keys: dict[Key, ChannelAccount | None] = {}
    for account in account_rows:
        keys[(account.tenant_id, account.partner_id, account.channel)] = account
    taken: dict[Key, Rates] = defaultdict(Rates)
    for bucket in buckets:
        if bucket.partner_id is None:
            continue
        key = (bucket.tenant_id, bucket.partner_id, bucket.channel)
        keys.setdefault(key, None)
        last_minute, last_hour = taken_recently(bucket, moment)
        # Several buckets (per minute, per day) count the same sends: keep the largest.
        taken[key].taken_minute = max(taken[key].taken_minute, last_minute)
        taken[key].taken_hour = max(taken[key].taken_hour, last_hour)
    for key in sent:  # an account with sends lately shows its rate even with no limit
        keys.setdefault(key, None)

    accounts: list[AccountStatus] = []
    for key, row in keys.items():
        tenant_id, partner_id, channel_name = key
        partner = partners.get(partner_id)
        channel_cls = channels.get(channel_name)
        limits = (
            account_limits(channel_cls, row.settings if row else None)
            if channel_cls
            else limits_from(row.settings if row else {})
        )
        rates = Rates(
            sent[key].sent_minute if key in sent else 0,
            sent[key].sent_hour if key in sent else 0,
            taken[key].taken_minute,
            taken[key].taken_hour,
        )
        accounts.append(
            AccountStatus(
                tenant=slugs.get(tenant_id, str(tenant_id)),
                partner=partner.external_id if partner else str(partner_id),
                channel=channel_name,
                status=row.status if row else "default",
                limit=_limit_text(limits),
                rates=rates,
            )
        )
    accounts.sort(key=lambda a: (a.tenant, a.channel, a.partner))

    per_channel: dict[str, Rates] = defaultdict(Rates)
    for (_t, _p, channel_name), rate in sent.items():
        per_channel[channel_name].sent_minute += rate.sent_minute
        per_channel[channel_name].sent_hour += rate.sent_hour
    for (_t, _p, channel_name), rate in taken.items():
        per_channel[channel_name].taken_minute += rate.taken_minute
        per_channel[channel_name].taken_hour += rate.taken_hour
    names = set(queue) | set(per_channel)
    channel_limits = {}
    own_limits = {a.channel for a in accounts if a.limit != "none"}
    for name in names:
        declared = limits_from(dict(getattr(channels.get(name), "rate_limits", {}) or {}))
        if declared:
            channel_limits[name] = f"{_limit_text(declared)} per account"
        else:  # no default: say so, and whether some accounts set their own
            channel_limits[name] = "set per account" if name in own_limits else "none"
    return Status(
        queue=queue,
        channels={name: per_channel[name] for name in sorted(names)},
        channel_limits=channel_limits,
        accounts=accounts,
        providers=_providers(engine, moment, settings),
        workers=live_workers(engine, now=moment),
        uncertain=_uncertain(session),
        why=_why(session, slugs),
    )


def _providers(engine: Engine, now: datetime, settings: Any) -> list[ProviderStatus]:
    """Provider-wide caps (system-level: the same for every tenant) and what they let through."""
    caps = dict(getattr(settings, "rate_limits", None) or {})
    with plain_session(engine) as session:  # provider_bucket belongs to no tenant
        buckets = session.exec(select(ProviderBucket)).all()
    taken: dict[str, tuple[float, float]] = {}
    for bucket in buckets:
        minute, hour = taken_recently(bucket, now)
        old = taken.get(bucket.channel, (0.0, 0.0))
        taken[bucket.channel] = (max(old[0], minute), max(old[1], hour))
    return [
        ProviderStatus(
            name, _limit_text(provider_limits(settings, name)), *taken.get(name, (0.0, 0.0))
        )
        for name in sorted(set(caps) | set(taken))
    ]


# --- what the command prints ------------------------------------------------------------


ACCOUNT_ROWS = 12
"""Up to this many channel accounts, status lists each; above, a summary per channel."""
BUSIEST = 5
"""The accounts with the most sends in the last hour listed under the summary."""


def _account_table(
    accounts: list[AccountStatus], title: str, console: Any, tenant: str | None
) -> None:
    from rich.table import Table

    table = Table(title=title)
    headers = [*(["tenant"] if not tenant else []), "partner", "channel", "account", "limit"]
    for header in headers:  # folded, never cut: each value stays whole at 80 columns
        table.add_column(header, overflow="fold")
    for header in ("sent 1m / 1h", "taken 1m / 1h"):
        table.add_column(header, justify="right", overflow="fold")
    for account in accounts:
        table.add_row(
            *([account.tenant] if not tenant else []),
            account.partner,
            account.channel,
            account.status.replace("_", " "),
            account.limit,
            f"{account.rates.sent_minute} / {account.rates.sent_hour}",
            f"{_rate(account.rates.taken_minute)} / {_rate(account.rates.taken_hour)}",
            style="red" if account.needs_reconnect else None,
        )
    if accounts:
        console.print(table)


def _counted(values: list[str]) -> str:
    """'34 connected, 1 needs reconnect': each distinct value with how many have it."""
    counts: dict[str, int] = defaultdict(int)
    for value in values:
        counts[value] += 1
    if len(counts) == 1:
        return next(iter(counts))
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{count} {value}" for value, count in ordered)


def _account_summary(
    accounts: list[AccountStatus], where: str, console: Any, tenant: str | None
) -> None:
    """One row per channel (and tenant): how many accounts, in which state, their limits
    and what they sent; then the busiest accounts."""
    groups: dict[tuple[str, str], list[AccountStatus]] = defaultdict(list)
    for account in accounts:
        groups[(account.tenant, account.channel)].append(account)
    channels = len({channel for _tenant, channel in groups})
    rows = []
    for (tenant_slug, channel), members in sorted(groups.items()):
        sent = (sum(a.rates.sent_minute for a in members), sum(a.rates.sent_hour for a in members))
        taken = (
            sum(a.rates.taken_minute for a in members),
            sum(a.rates.taken_hour for a in members),
        )
        rows.append(
            [
                *([tenant_slug] if not tenant else []),
                channel,
                str(len(members)),
                plain(_counted([a.status.replace("_", " ") for a in members])),
                plain(_counted([a.limit for a in members])),
                f"{sent[0]} / {sent[1]}",
                f"{_rate(taken[0])} / {_rate(taken[1])}",
            ]
        )
    columns = [
        *([Column("tenant", "key"), Column("channel", "word")] if not tenant else []),
        *([Column("channel", "key")] if tenant else []),
        Column("accounts"),
        Column("state", "text"),
        Column("limit", "text"),
        Column("sent 1m / 1h"),
        Column("taken 1m / 1h"),
    ]
    title = f"accounts ({where}): {len(accounts)} on {channels} channels"
    print_table(console, title, columns, rows)
    busy = [a for a in accounts if a.rates.sent_hour or a.rates.taken_hour]
    busy.sort(key=lambda a: (-a.rates.sent_hour, -a.rates.taken_hour, a.partner))
    if busy:
        _account_table(busy[:BUSIEST], "busiest accounts, last hour", console, tenant)
    more = len(busy) - BUSIEST
    if more > 0:
        console.print(f"{more} more accounts sent in the last hour", highlight=False)
    console.print("every account: partnercast status --accounts", highlight=False)


def _rate(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _show_why(why: list[Why], console: Any, tenant: str | None) -> None:
    """One entry per distinct reason dispatches are retrying or failed, never a traceback.
    Reasons are the engine's own text and a server's or a template's words: printed as
    they are (no Rich markup), folded at the console's width like the tables (80 columns
    in a pipe), never cut."""
    for item in why[:WHY_LINES]:
        noun = "dispatch" if item.count == 1 else "dispatches"
        whose = "" if tenant else f", {', '.join(item.tenants[:3])}"
        whose += ", ..." if not tenant and len(item.tenants) > 3 else ""
        console.print(
            f"{item.state} ({item.channel}, {item.count} {noun}{whose}): {one_line(item.reason)}",
            markup=False,
            highlight=False,
        )
    rest = why[WHY_LINES:]
    if rest:
        more = sum(item.count for item in rest)
        console.print(f"... and {len(rest)} more reasons ({more} dispatches)", highlight=False)


def show(
    report: Status,
    now: datetime,
    console: Any,
    tenant: str | None,
    *,
    every_account: bool = False,
) -> None:
    """Print ``report`` as ``partnercast status`` does: narrow tables that stay whole at
    80 columns (a pipe or a file gets 80), secrets never (none is in a Status). Up to
    :data:`ACCOUNT_ROWS` accounts are listed one by one; more (a programme of 40 partners
    on four channels has 140) are summed up per channel, with the busiest listed, unless
    ``every_account``."""
    from rich.table import Table

    where = tenant or "all tenants"
    # Held for the partner's approval: a line of its own, not a ninth column (80 columns).
    buckets = [bucket for bucket in outbox.QUEUE_BUCKETS if bucket != outbox.WAITING]
    queue = Table("channel", *buckets, title=f"queue ({where})")
    for name in report.channels:
        counts = report.queue.get(name, {})
        queue.add_row(name, *(str(counts.get(bucket, 0)) for bucket in buckets))
    console.print(queue)
    waiting = [
        f"{name} {report.queue[name][outbox.WAITING]}"
        for name in report.channels
        if report.queue.get(name, {}).get(outbox.WAITING)
    ]
    if waiting:
        console.print(f"waiting for the partner's approval: {', '.join(waiting)}")
    _show_why(report.why, console, tenant)

    rates = Table(
        "channel",
        "sent 1m",
        "sent 1h",
        "taken 1m",
        "taken 1h",
        "limit",
        title=f"send rates, last minute and hour ({where})",
    )
    for name, rate in report.channels.items():
        rates.add_row(
            name,
            str(rate.sent_minute),
            str(rate.sent_hour),
            _rate(rate.taken_minute),
            _rate(rate.taken_hour),
            report.channel_limits.get(name, "none"),
        )
    console.print(rates)
    for name, (resent, kept) in sorted(report.uncertain.items()):
        console.print(f"uncertain deliveries ({name}): {resent} resent, {kept} not resent")

    if len(report.accounts) <= ACCOUNT_ROWS or every_account:
        _account_table(report.accounts, f"accounts ({where})", console, tenant)
    else:
        _account_summary(report.accounts, where, console, tenant)
    reconnect = [a for a in report.accounts if a.needs_reconnect]
    if reconnect:
        names = ", ".join(f"{a.partner} ({a.channel})" for a in reconnect)
        heading = f"accounts needing reconnection ({len(reconnect)}):"
        console.print(Text.assemble((heading, "red"), " ", plain(names)))
    else:
        console.print("no account needs reconnecting")

    if report.providers:
        providers = Table("channel", "provider cap", "taken 1m", "taken 1h", title="provider caps")
        for cap in report.providers:
            providers.add_row(
                cap.channel, cap.limit, _rate(cap.taken_minute), _rate(cap.taken_hour)
            )
        console.print(providers)

    if not report.workers:
        console.print("no live worker")
        return
    workers = Table("worker", "host", "pid", "up", "last seen", title="live workers")
    for row in report.workers:
        running = (now - as_utc(row.started_at)).total_seconds()
        seen = (now - as_utc(row.last_seen)).total_seconds()
        workers.add_row(
            row.worker_id, row.host, str(row.pid), f"{running:.0f}s", f"{max(seen, 0):.0f}s ago"
        )
    console.print(workers)
