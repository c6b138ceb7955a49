"""Funnel metrics per partner, campaign, segment and cycle, from the rollups.

Every count (sent and delivered from the dispatches' tallies of the delivery ledger;
bounces, visits, form fills, leads, stages and unsubscribes from events) comes from the
Rollup rows, kept up to date as they are written, grouped in the database; nothing scans
the event log or the ledger.
Marketing ROI is pipeline (or won) value over spend, against the programme's 20x target.

:func:`partner_metrics` is what a partner may see: every query it makes is filtered to
that one partner, so it cannot return another partner's numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from partnercast.campaigns.models import Campaign, Cycle, Enrollment
from partnercast.core.bounds import finite
from partnercast.core.tenancy import session_tenant
from partnercast.funnel.models import PartnerRollup, Rollup, Spend
from partnercast.funnel.names import GROUPINGS
from partnercast.tenants.models import Partner

ROI_TARGET = 20.0
MARKETING = ("sent", "delivered", "bounced", "complained", "unsubscribed", "visits", "forms")
"""Complaints come from feedback-loop reports (campaigns/delivery_feedback.py)."""
SALES = ("leads", "mql", "sql", "opportunity", "won", "lost")
ENGAGEMENT = ("opened", "opens", "clicked", "clicks")
"""Email tracking: ``opened`` and ``clicked`` count messages opened / clicked at least once
by a reader (unique per message, bots left out; a reader's click on a message with no
recorded open counts as its open, web/tracking.py); ``opens`` and ``clicks`` count every
hit (and those implied opens)."""
CHANNEL = ("impressions", "engagements", "link_clicks")
"""Social posts and search ads (funnel/channel_metrics.py): what the networks counted."""
CHANNEL_VALUES = ("ad_cost", "ad_conversions")
"""Search ads: cost (the ad account's currency) and conversions, kept as rollup values."""
FUNNEL = (
    *MARKETING[:5],
    "opened",
    "clicked",
    *MARKETING[5:],
    *SALES,
    "opens",
    "clicks",
    *CHANNEL,
)
# (name, numerator, denominator)
RATES = (
    ("delivery rate", "delivered", "sent"),
    ("complaint rate", "complained", "delivered"),
    ("open rate", "opened", "delivered"),
    ("click rate", "clicked", "delivered"),
    ("visit to form", "forms", "visits"),
    ("engagement rate", "engagements", "impressions"),
    ("network click rate", "link_clicks", "impressions"),
    ("lead to MQL", "mql", "leads"),
    ("MQL to SQL", "sql", "mql"),
    ("SQL to opportunity", "opportunity", "sql"),
    ("opportunity to won", "won", "opportunity"),
)


@dataclass(frozen=True)
class Cell:
    """One number for one partner, campaign and cycle (0 where unknown)."""

    partner_id: int
    campaign_id: int
    cycle_id: int
    metric: str
    count: int
    value: float = 0.0


@dataclass
class FunnelRow:
    """The funnel of one group (a partner, a campaign, a segment, a cycle, or everything)."""

    key: str
    label: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FUNNEL, 0))
    pipeline: float = 0.0
    won_value: float = 0.0
    spend: float | None = 0.0
    values: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CHANNEL_VALUES, 0.0))

    def rate(self, numerator: str, denominator: str) -> float | None:
        bottom = self.counts.get(denominator, 0)
        return finite(self.counts.get(numerator, 0) / bottom) if bottom else None

    @property
    def rates(self) -> dict[str, float | None]:
        return {name: self.rate(top, bottom) for name, top, bottom in RATES}

    @property
    def roi_pipeline(self) -> float | None:
        """Pipeline over spend; None without spend, or when it is not a finite number
        (amounts are bounded where they come in: only rows stored before could)."""
        return finite(self.pipeline / self.spend) if self.spend else None

    @property
    def roi_won(self) -> float | None:
        return finite(self.won_value / self.spend) if self.spend else None

    @property
    def meets_target(self) -> bool:
        """Pipeline (or won) value at least 20 times the spend."""
        best = max(self.roi_pipeline or 0.0, self.roi_won or 0.0)
        return best >= ROI_TARGET

    @property
    def ad_cost(self) -> float:
        return self.values.get("ad_cost", 0.0)

    @property
    def ad_conversions(self) -> float:
        return self.values.get("ad_conversions", 0.0)

    @property
    def has_channel_metrics(self) -> bool:
        """Whether any social or search number was recorded for this group."""
        return any(self.counts.get(m) for m in CHANNEL) or any(self.values.values())

    def add(self, cell: Cell) -> None:
        self.counts[cell.metric] = self.counts.get(cell.metric, 0) + cell.count
        if cell.metric in _VALUED:
            self.add_value(cell.metric, cell.value)

    def add_value(self, metric: str, value: float) -> None:
        """Add the money (or conversions) a metric's rollups carry."""
        if metric == "opportunity":
            self.pipeline += value
        elif metric == "won":
            self.won_value += value
        elif metric in CHANNEL_VALUES:
            self.values[metric] = self.values.get(metric, 0.0) + value


_VALUED = frozenset(("opportunity", "won", *CHANNEL_VALUES))
"""The metrics whose rollups carry a value that a FunnelRow adds up."""
_PLACE = ("partner_id", "campaign_id", "cycle_id")


# The rollup columns each grouping needs; the others are summed away in the database.
GROUP_COLUMNS = {
    "partner": ("partner_id",),
    "campaign": ("campaign_id",),
    "segment": ("partner_id", "campaign_id"),
    "cycle": ("cycle_id",),
    "total": (),
}


def sums(
    session: Session,
    keep: tuple[str, ...],
    *,
    partner_id: int | None = None,
    campaign_id: int | None = None,
    metrics: tuple[str, ...] | None = None,
) -> Sequence[Sequence[Any]]:
    """Rows of (the ``keep`` columns..., metric, summed count, summed value) of the
    session's tenant's rollups, summed in the database over every other column.

    What needs neither a campaign nor a cycle (by partner, the total) reads the partner
    sums (PartnerRollup, ~17 rows a partner) instead of the rollups (~64 at the bench's
    scale). By campaign or by cycle, the database sums per (campaign, cycle, metric), the
    order of the rollups' covering index (no temporary sort of every row), and the few
    sums (6 cycles x 17 metrics at the bench's scale) are added up here."""
    # A Core query (ORM row loading costs ten times more per row), scoped by hand to the
    # session's tenant, which session_tenant() insists on.
    per_partner = campaign_id is None and set(keep) <= {"partner_id"}
    table = PartnerRollup.__table__ if per_partner else Rollup.__table__  # type: ignore[attr-defined]
    grouped = keep
    if not per_partner and partner_id is None and set(keep) <= {"campaign_id", "cycle_id"}:
        grouped = ("campaign_id", "cycle_id")
    kept = [table.c[name] for name in grouped]
    if per_partner and keep == ("partner_id",):  # one row a partner and metric already
        query = sa_select(*kept, table.c.metric, table.c.count, table.c.value)
    else:
        query = sa_select(
            *kept, table.c.metric, func.sum(table.c.count), func.sum(table.c.value)
        ).group_by(*kept, table.c.metric)
    query = query.where(table.c.tenant_id == session_tenant(session))
    if partner_id is not None:
        query = query.where(table.c.partner_id == partner_id)
    if campaign_id is not None:
        query = query.where(table.c.campaign_id == campaign_id)
    if metrics is not None:
        query = query.where(table.c.metric.in_(metrics))
    rows = session.connection().execute(query).all()
    if grouped == keep:
        return rows
    at = [grouped.index(name) for name in keep]
    folded: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        group = (*(row[i] for i in at), row[2])
        entry = folded.setdefault(group, [0, 0.0])
        entry[0] += int(row[3] or 0)
        entry[1] += float(row[4] or 0.0)
    return [(*group, count, value) for group, (count, value) in folded.items()]


def cells(
    session: Session,
    *,
    partner_id: int | None = None,
    campaign_id: int | None = None,
    keep: tuple[str, ...] = ("partner_id", "campaign_id", "cycle_id"),
    metrics: tuple[str, ...] | None = None,
) -> list[Cell]:
    """Every funnel number of the tenant (or of one partner / campaign).

    All of them come from the Rollup rows, which the flush listener keeps up to date (sent,
    delivered and bounced included), summed in the database over every column not in
    ``keep`` (those come back as 0), optionally only ``metrics``: one indexed, grouped
    query whatever the size of the event log.
    """
    width = len(keep)
    at = {name: keep.index(name) for name in keep}
    p_at, c_at, y_at = (at.get(name, -1) for name in _PLACE)
    out: list[Cell] = []
    summed = sums(session, keep, partner_id=partner_id, campaign_id=campaign_id, metrics=metrics)
    for row in summed:
        out.append(
            Cell(
                row[p_at] if p_at >= 0 else 0,
                row[c_at] if c_at >= 0 else 0,
                row[y_at] if y_at >= 0 else 0,
                row[width],
                int(row[width + 1] or 0),
                float(row[width + 2] or 0.0),
            )
        )
    return out


def spend_cells(
    session: Session,
    *,
    partner_id: int | None = None,
    campaign_id: int | None = None,
    keep: tuple[str, ...] = ("partner_id", "campaign_id"),
) -> list[tuple[int, int, float]]:
    """(partner, campaign, total spend) rows, summed over what is not in ``keep`` (then 0):
    per partner for the funnel by partner, per campaign by campaign."""
    # Core, scoped by hand like sums(): 20,000 rows through the ORM cost 60 ms more.
    table = Spend.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
    kept = [table.c[name] for name in keep]
    query = (
        sa_select(*kept, func.sum(table.c.amount))
        .where(table.c.tenant_id == session_tenant(session))
        .group_by(*kept)
    )
    if partner_id is not None:
        query = query.where(table.c.partner_id == partner_id)
    if campaign_id is not None:
        query = query.where(table.c.campaign_id == campaign_id)
    p_at, c_at = (keep.index(name) if name in keep else -1 for name in _PLACE[:2])
    return [
        (
            row[p_at] if p_at >= 0 else 0,
            row[c_at] if c_at >= 0 else 0,
            float(row[len(keep)] or 0),
        )
        for row in session.connection().execute(query).all()
    ]


def spend_currencies(session: Session) -> list[str]:
    """The currencies the tenant's spend is recorded in ('' = not said), sorted.

    ROI divides pipeline by spend as plain numbers: spend in two currencies adds apples
    to pears, which the metrics command says rather than hides.
    """
    rows = session.exec(select(Spend.currency).group_by(Spend.currency)).all()
    return sorted({(currency or "").upper() for currency in rows})


def funnel(
    session: Session,
    *,
    by: str = "partner",
    campaign_id: int | None = None,
    partner_id: int | None = None,
    metrics: tuple[str, ...] | None = None,
) -> list[FunnelRow]:
    """Funnel rows grouped ``by`` partner, campaign, segment, cycle, or one total row;
    with ``metrics``, only those are read (the others stay 0: what the score needs of
    10,000 partners is a fifth of their funnel).

    Spend belongs to a partner and campaign, not to a cycle: grouped by cycle, spend and
    ROI are left out (None).
    """
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {GROUPINGS}")
    keyer = _keyer(session, by)
    rows: dict[str, FunnelRow] = {}

    def row_for(partner: int, campaign: int, cycle: int) -> FunnelRow:
        key, label = keyer(partner, campaign, cycle)
        if key not in rows:
            rows[key] = FunnelRow(key, label, spend=None if by == "cycle" else 0.0)
        return rows[key]

    pivoted = None
    if by == "partner" and campaign_id is None:
        pivoted = _partner_pivot(session, partner_id, metrics)
    if pivoted is not None:
        names, valued, flagged, summed_rows = pivoted
        first_value, first_flag = 1 + len(names), 1 + len(names) + len(valued)
        for summed in summed_rows:
            partner_row = row_for(summed[0], 0, 0)
            partner_row.counts.update(zip(names, map(int, summed[1:first_value]), strict=True))
            for metric, value in zip(valued, summed[first_value:first_flag], strict=True):
                if value:
                    partner_row.add_value(metric, float(value))
            for metric, present in zip(flagged, summed[first_flag:], strict=True):
                if present:  # a value-only metric: its count (0) is there, as in the loop
                    partner_row.counts.setdefault(metric, 0)
    elif by == "segment":
        for segment, cell in _segment_cells(session, partner_id, campaign_id, metrics):
            rows.setdefault("s" + segment, FunnelRow("s" + segment, segment)).add(cell)
    else:
        # The hot loop of a large tenant (10,000 partners: 170,000 summed rows): each
        # group's row is found once, and no Cell is made per row.
        keep = GROUP_COLUMNS[by]
        width = len(keep)
        at = [keep.index(name) if name in keep else -1 for name in _PLACE]
        found: dict[tuple[int, ...], FunnelRow] = {}
        summed_rows = sums(
            session, keep, partner_id=partner_id, campaign_id=campaign_id, metrics=metrics
        )
        for summed in summed_rows:
            group = tuple(summed[:width])
            target = found.get(group)
            if target is None:
                target = found[group] = row_for(*(group[i] if i >= 0 else 0 for i in at))
            metric, count, value = summed[width], int(summed[width + 1] or 0), summed[width + 2]
            counts = target.counts
            counts[metric] = counts.get(metric, 0) + count
            if metric in _VALUED:
                target.add_value(metric, float(value or 0.0))
    if by != "cycle":
        for partner, campaign, amount in spend_cells(
            session,
            partner_id=partner_id,
            campaign_id=campaign_id,
            keep=("partner_id", "campaign_id") if by == "segment" else GROUP_COLUMNS[by],
        ):
            target = row_for(partner, campaign, 0)
            target.spend = (target.spend or 0.0) + amount
    return sorted(rows.values(), key=lambda row: row.key)


_PIVOTED = (*FUNNEL, *CHANNEL_VALUES)
"""Every metric the rollups keep (funnel.rollups.metric_deltas)."""


def _partner_pivot(
    session: Session, partner_id: int | None, metrics: tuple[str, ...] | None
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], Sequence[Any]] | None:
    """The partner sums as one row a partner, a column a metric, pivoted by the database:
    (the count metrics, the valued metrics, the value-only metrics, rows of (partner,
    counts..., values..., whether each value-only metric is there...)).

    10,000 rows to read instead of 135,000 (one a partner and metric, bench's scale): on
    PostgreSQL the server does the summing; on SQLite it costs less than reading the
    rows one by one. None when a metric not in ``_PIVOTED`` is stored (then the caller
    reads the rows as they are), so that nothing is left out."""
    table = PartnerRollup.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
    wanted = [m for m in _PIVOTED if metrics is None or m in metrics]
    names = tuple(m for m in wanted if m in FUNNEL)
    valued = tuple(m for m in wanted if m in _VALUED)
    flagged = tuple(m for m in wanted if m not in FUNNEL)
    metric, count, value = table.c.metric, table.c.count, table.c.value
    columns = [
        *(func.sum(case((metric == m, count), else_=0)) for m in names),
        *(func.sum(case((metric == m, value), else_=0.0)) for m in valued),
        *(func.max(case((metric == m, 1), else_=0)) for m in flagged),
    ]
    query = (
        sa_select(table.c.partner_id, *columns, func.max(case((metric.in_(_PIVOTED), 0), else_=1)))
        .where(table.c.tenant_id == session_tenant(session))
        .group_by(table.c.partner_id)
    )
    if partner_id is not None:
        query = query.where(table.c.partner_id == partner_id)
    if metrics is not None:
        query = query.where(metric.in_(metrics))
    rows = session.connection().execute(query).all()
    if any(row[-1] for row in rows):
        return None
    return names, valued, flagged, [row[:-1] for row in rows]


def _segment_cells(
    session: Session,
    partner_id: int | None,
    campaign_id: int | None,
    metrics: tuple[str, ...] | None = None,
) -> list[tuple[str, Cell]]:
    """(segment, summed cell) per segment and metric, joined and grouped in the database.

    The segment of a rollup is its partner's enrollment's in that campaign; "(none)" when
    there is none (the same rule as the keyer). Scoped by hand like :func:`cells`.
    """
    tenant_id = session_tenant(session)
    table = Rollup.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
    enrollment = Enrollment.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
    segment = func.coalesce(func.nullif(enrollment.c.segment_key, ""), "(none)")
    joined = table.outerjoin(
        enrollment,
        and_(
            enrollment.c.tenant_id == table.c.tenant_id,
            enrollment.c.partner_id == table.c.partner_id,
            enrollment.c.campaign_id == table.c.campaign_id,
        ),
    )
    query = (
        sa_select(segment, table.c.metric, func.sum(table.c.count), func.sum(table.c.value))
        .select_from(joined)
        .where(table.c.tenant_id == tenant_id)
        .group_by(segment, table.c.metric)
    )
    if partner_id is not None:
        query = query.where(table.c.partner_id == partner_id)
    if campaign_id is not None:
        query = query.where(table.c.campaign_id == campaign_id)
    if metrics is not None:
        query = query.where(table.c.metric.in_(metrics))
    return [
        (name, Cell(0, 0, 0, metric, int(count or 0), float(value or 0.0)))
        for name, metric, count, value in session.connection().execute(query).all()
    ]


def total(rows: Iterable[FunnelRow], label: str = "total") -> FunnelRow:
    """All rows added up."""
    out = FunnelRow("total", label)
    for row in rows:
        for metric, count in row.counts.items():
            out.counts[metric] = out.counts.get(metric, 0) + count
        out.pipeline += row.pipeline
        out.won_value += row.won_value
        for metric, value in row.values.items():
            out.values[metric] = out.values.get(metric, 0.0) + value
        if row.spend is None:
            out.spend = None
        elif out.spend is not None:
            out.spend += row.spend
    return out


def partner_metrics(session: Session, partner_id: int) -> FunnelRow:
    """One partner's own funnel and return: no other partner's rows are ever read."""
    partner = session.get(Partner, partner_id)
    if partner is None:
        raise LookupError(f"no partner {partner_id}")
    rows = funnel(session, by="partner", partner_id=partner_id)
    mine = [row for row in rows if row.key == f"p{partner_id:09d}"]
    return (
        total(mine, label=partner.name) if mine else FunnelRow(f"p{partner_id:09d}", partner.name)
    )


def partner_cycles(session: Session, partner_id: int) -> list[FunnelRow]:
    """One partner's funnel per cycle (for its trend), in cycle order."""
    return funnel(session, by="cycle", partner_id=partner_id)


def _keyer(session: Session, by: str) -> Callable[[int, int, int], tuple[str, str]]:
    if by == "total":
        return lambda p, c, y: ("total", "total")
    if by == "partner":
        partner = Partner.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
        query = sa_select(partner.c.id, partner.c.external_id, partner.c.name).where(
            partner.c.tenant_id == session_tenant(session)
        )  # Core, scoped by hand: 10,000 partners through the ORM cost 50 ms more
        names = {
            pid: f"{external_id} {name}"
            for pid, external_id, name in session.connection().execute(query).all()
        }
        return lambda p, c, y: (f"p{p:09d}", names.get(p, "(no partner)"))
    campaigns = {c.id: c.key for c in session.exec(select(Campaign)).all()}
    if by == "campaign":
        return lambda p, c, y: (f"c{c:09d}", campaigns.get(c, "(no campaign)"))
    if by == "segment":
        segments = {
            (partner, campaign): segment or "(none)"
            for partner, campaign, segment in session.exec(
                select(Enrollment.partner_id, Enrollment.campaign_id, Enrollment.segment_key)
            ).all()
        }
        return lambda p, c, y: (
            "s" + segments.get((p, c), "(none)"),
            segments.get((p, c), "(none)"),
        )
    cycles = {
        y.id: (campaigns.get(y.campaign_id, "?"), y.number) for y in session.exec(select(Cycle))
    }

    def by_cycle(p: int, c: int, y: int) -> tuple[str, str]:
        if y not in cycles:
            return "y~", "(no cycle)"
        key, number = cycles[y]
        return f"y{key}#{number:05d}", f"{key} cycle {number}"

    return by_cycle
