"""The contender score: an explainable 0-100 per partner.

Seven components, each a value from 0 to 1 times its weight (the weights add up to 100):
engagement (how fast the partner approves, how much it really changed the vendor's copy,
how many of its dispatches went out), outcomes (its leads against the tenant's best, MQL
to SQL conversion, pipeline per unit of spend against the 20x target) and the trend of its
leads and opportunities from one cycle to the next. The component that loses the most
points is named as what holds the partner back.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import DateTime, func, type_coerce
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from partnercast.campaigns.models import Campaign, CampaignVersion, Cycle, Enrollment
from partnercast.campaigns.spec import localize
from partnercast.core.models import Dispatch, Event
from partnercast.core.tenancy import session_tenant
from partnercast.funnel.metrics import ROI_TARGET, FunnelRow, funnel
from partnercast.funnel.models import Rollup
from partnercast.tenants.models import Partner
from partnercast.tenants.partners import find_partner

WEIGHTS: dict[str, float] = {
    "approval speed": 15,
    "customisation": 15,
    "activity": 10,
    "leads": 20,
    "MQL to SQL": 15,
    "pipeline per spend": 15,
    "trend": 10,
}
GROUPS = {
    "approval speed": "engagement",
    "customisation": "engagement",
    "activity": "engagement",
    "leads": "outcomes",
    "MQL to SQL": "outcomes",
    "pipeline per spend": "outcomes",
    "trend": "trend",
}
SCORED_METRICS = ("leads", "mql", "sql", "opportunity")
"""The funnel metrics the score reads (leads, MQL to SQL, pipeline per spend)."""
FAST_DAYS, SLOW_DAYS = 1.0, 14.0
ADVICE = {
    "approval speed": "review and approve each campaign within a day or two of the invitation",
    "customisation": "rewrite more of the vendor's copy in your own words and for your customers",
    "activity": "keep your channel accounts connected so every scheduled touch goes out",
    "leads": "follow up clicks and page visits; ask the concierge which touches bring leads",
    "MQL to SQL": "qualify marketing leads faster: call each within 48 hours",
    "pipeline per spend": "turn more of the MDF into opportunities, or spend it where leads come",
    "trend": "keep the momentum: this cycle brought fewer leads and opportunities than the last",
}
"""What a partner can do about each component, said with what holds it back."""
BLOCKED_ADVICE = (
    "approve the campaign waiting for you: nothing goes out under your name, so no lead can "
    "come, until you do"
)


@dataclass(frozen=True, slots=True)
class Component:
    name: str
    weight: float
    value: float  # 0..1
    detail: str
    blocks: bool = False
    """Nothing else can happen until this is fixed (a campaign never approved)."""
    own_detail: str = ""
    """The detail as the partner itself may read it, where ``detail`` names another
    partner's number (the best partner's lead count); empty when ``detail`` is fine."""

    @property
    def group(self) -> str:
        return GROUPS[self.name]

    @property
    def points(self) -> float:
        return round(self.weight * self.value, 1)

    @property
    def lost(self) -> float:
        return self.weight * (1 - self.value)

    def own_view(self) -> Component:
        """This component as a page or report for the partner itself shows it."""
        return replace(self, detail=self.own_detail) if self.own_detail else self

    @property
    def advice(self) -> str:
        if self.blocks:
            return BLOCKED_ADVICE
        return ADVICE[self.name]

    def explain(self) -> str:
        """What holds a partner back, why, what it costs, and what to do about it."""
        return (
            f"{self.name}: {self.detail}; {self.points:.1f} of {self.weight:.0f} points "
            f"({self.lost:.1f} lost). To do: {self.advice}."
        )


@dataclass(frozen=True, slots=True)
class ScoreCard:
    partner_id: int
    external_id: str
    name: str
    components: tuple[Component, ...]

    @property
    def score(self) -> float:
        return round(sum(c.weight * c.value for c in self.components), 1)

    @property
    def weakest(self) -> Component:
        """What holds the partner back: a component that blocks every other (a campaign
        never approved: nothing went out, so no lead could come), else the one that
        loses the most points."""
        blocking = [c for c in self.components if c.blocks]
        if blocking:
            return blocking[0]
        return max(self.components, key=lambda c: (c.lost, c.weight))

    def own_view(self) -> ScoreCard:
        """The card as the partner itself may read it: no other partner's numbers."""
        return replace(self, components=tuple(c.own_view() for c in self.components))


@dataclass
class _Facts:
    """What the engagement and trend components need, read in a few grouped queries and
    reduced per partner as the rows stream in (no list of rows kept per partner: at 10,000
    partners the 170,000 retained tuples and dicts cost more in garbage collection than
    the queries themselves)."""

    approval_days: dict[int, list[float]] = field(default_factory=dict)
    """Per partner: the days from each invitation to its approval, in the order approved."""
    pending: set[int] = field(default_factory=set)
    """Partners with an invitation not approved (yet)."""
    changes: dict[int, list[float]] = field(default_factory=dict)
    """Per partner: how far each editable text field is from its default (0..1)."""
    done: dict[int, int] = field(default_factory=dict)
    finished: dict[int, int] = field(default_factory=dict)
    """Per partner: its dispatches that went out, and all that finished (done, skipped or
    failed)."""
    per_cycle: dict[int, dict[str, int]] = field(default_factory=dict)


def _facts(session: Session, partner_id: int | None = None) -> _Facts:
    """Read every partner's (or one partner's) facts at once: a constant number of queries."""
    facts = _Facts()
    # A Core query scoped by hand to the session's tenant: through the ORM the same 4,000
    # rows took 215 ms instead of 30 (PostgreSQL, bench/funnel_scale.py).
    # The same for the enrollments and dispatches (20,000 and 180,000 rows for 10,000
    # partners: ORM row loading was a third of the score).
    tenant_id = session_tenant(session)
    event = Event.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
    enrollment = Enrollment.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
    dispatch = Dispatch.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
    # The instants as the database's plain datetimes (naive on SQLite, aware on
    # PostgreSQL: only their differences are used): converting 40,000 of them to aware
    # UTC ones was a tenth of the score.
    occurred_at = type_coerce(event.c.occurred_at, DateTime(timezone=True))
    approvals = sa_select(
        event.c.partner_id, event.c.enrollment_id, event.c.kind, occurred_at
    ).where(
        event.c.tenant_id == tenant_id,
        event.c.kind.in_(("enrollment.invited", "enrollment.approved")),
    )
    enrollments = sa_select(
        enrollment.c.partner_id, enrollment.c.version_id, enrollment.c.customization
    ).where(enrollment.c.tenant_id == tenant_id)
    finished = (
        sa_select(dispatch.c.partner_id, dispatch.c.state, func.count())
        .where(dispatch.c.tenant_id == tenant_id)
        .where(dispatch.c.state.in_(("done", "skipped", "failed")))
        .group_by(dispatch.c.partner_id, dispatch.c.state)
    )
    if partner_id is not None:
        approvals = approvals.where(event.c.partner_id == partner_id)
        enrollments = enrollments.where(enrollment.c.partner_id == partner_id)
        finished = finished.where(dispatch.c.partner_id == partner_id)
    connection = session.connection()
    # Each partner's invitations and approvals in the order they happened: an approval
    # ends the pending invitation of its enrollment (a later invitation opens another).
    invited: dict[tuple[int, int], Any] = {}
    approval_days = facts.approval_days
    ordered = approvals.order_by(event.c.occurred_at, event.c.id)
    for pid, enrollment_id, kind, at in connection.execute(ordered):
        invitation = (pid or 0, enrollment_id or 0)
        if kind == "enrollment.invited":
            if invitation not in invited:
                invited[invitation] = at
        elif invitation in invited:
            days = (at - invited.pop(invitation)).total_seconds() / 86400
            delays = approval_days.get(invitation[0])
            if delays is None:
                approval_days[invitation[0]] = [days]
            else:
                delays.append(days)
    facts.pending = {pid for pid, _ in invited}
    rows = connection.execute(enrollments).all()
    version_ids = {version for _, version, _ in rows}
    # Per version: its default locale and each editable text field with its default text
    # in that locale (worked out once, not once per partner).
    fields: dict[int, tuple[str, list[tuple[str, str]]]] = {}
    if version_ids:
        for version in session.exec(
            select(CampaignVersion).where(col(CampaignVersion.id).in_(version_ids))
        ).all():
            spec = version.spec or {}
            locale = spec.get("default_locale", "en")
            fields[version.id or 0] = (
                locale,
                [
                    (name, str(localize(definition.get("default") or "", locale, locale) or ""))
                    for name, definition in (spec.get("editable_fields") or {}).items()
                    if definition.get("type") in ("text", None)
                ],
            )
    changes = facts.changes
    for pid, version_id, customization in rows:
        found = fields.get(version_id)
        if found is None:
            continue
        locale, texts = found
        if not texts:
            continue
        partner_changes = changes.get(pid)
        if partner_changes is None:
            partner_changes = changes[pid] = []
        customization = customization or {}
        for name, default in texts:
            given = customization.get(name)
            if given in (None, ""):
                partner_changes.append(0.0)
                continue
            text = given if isinstance(given, str) else str(localize(given, locale, locale))
            partner_changes.append(1 - fuzz.ratio(text, default) / 100)
    del rows
    done, total = facts.done, facts.finished
    for pid, state, count in connection.execute(finished):
        total[pid] = total.get(pid, 0) + count
        if state == "done":
            done[pid] = count
    cycles = {
        cycle.id: f"{key}#{cycle.number:05d}"
        for cycle, key in session.exec(
            select(Cycle, Campaign.key).join(Campaign, col(Campaign.id) == Cycle.campaign_id)
        ).all()
    }
    # Leads and opportunities together per partner and cycle, added up by the database
    # (one row where there were two, 10,000 partners x 6 cycles at the bench's scale);
    # grouped cycle first, SQLite reads rollup's covering index (campaign, cycle, metric,
    # partner, ...) instead of the table (58 ms instead of 91 for 57,500 rows).
    rollup = Rollup.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
    trend = (
        sa_select(rollup.c.partner_id, rollup.c.cycle_id, func.sum(rollup.c.count))
        .where(rollup.c.tenant_id == tenant_id)
        .where(rollup.c.metric.in_(("leads", "opportunity")))
        .group_by(rollup.c.cycle_id, rollup.c.partner_id)
    )
    if partner_id is not None:
        trend = trend.where(rollup.c.partner_id == partner_id)
    per_cycle = facts.per_cycle
    for pid, cycle_id, count in connection.execute(trend):
        key = cycles.get(cycle_id)
        if key is not None:
            mine = per_cycle.get(pid)
            if mine is None:
                mine = per_cycle[pid] = {}
            mine[key] = mine.get(key, 0) + int(count or 0)
    return facts


def score_partners(session: Session, external_id: str | None = None) -> list[ScoreCard]:
    """Score cards of every partner of the tenant (or one), best first.

    Lead counts are compared with the tenant's best partner, so the whole tenant's funnel
    is read even when one partner is asked for. Everything is read in a fixed number of
    grouped queries (not a few per partner), so 1,000 partners score in well under a
    second (bench/funnel_scale.py).
    """
    with _collector_paused():
        return _score_partners(session, external_id)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while the cards are built, on again after (unless
    it was off already).

    Scoring 10,000 partners makes some 200,000 objects that live until the cards are
    returned (70,000 components, the funnel rows, the facts), none of them in a cycle:
    the collector, triggered by their number, went over the whole growing heap four times
    for nothing, a fifth of the score's CPU time (bench/funnel_scale.py). Whatever garbage
    another thread makes meanwhile is collected when it is on again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _score_partners(session: Session, external_id: str | None) -> list[ScoreCard]:
    # Three columns, not Partner objects: loading 10,000 through the ORM cost more than
    # scoring them.
    table = Partner.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
    query = (
        sa_select(table.c.id, table.c.external_id, table.c.name)
        .where(table.c.tenant_id == session_tenant(session))
        .order_by(table.c.external_id)
    )
    if external_id is not None:
        found = find_partner(session, external_id)  # p1001 is P1001
        query = query.where(table.c.id == (found.id if found else -1))
    partners = [
        (pid or 0, external, name)
        for pid, external, name in session.connection().execute(query).all()
    ]
    read = funnel(session, by="partner", metrics=SCORED_METRICS)
    rows = {row.key: row for row in read}
    best_leads = max((row.counts["leads"] for row in rows.values()), default=0)
    best_pipeline = max((row.pipeline for row in rows.values()), default=0.0)
    one = partners[0][0] if external_id is not None and partners else None
    facts = _facts(session, one)
    cards = []
    for pid, external, name in partners:
        row = rows.get(f"p{pid:09d}") or FunnelRow("", name)
        cards.append(_card(facts, pid, external, name, row, best_leads, best_pipeline))
    scores = {card.partner_id: card.score for card in cards}
    return sorted(cards, key=lambda card: (-scores[card.partner_id], card.external_id))


def score_partner(
    session: Session, partner: Partner, row: FunnelRow, best_leads: int, best_pipeline: float
) -> ScoreCard:
    """One partner's card, given its funnel row and the tenant's best figures."""
    pid = partner.id or 0
    facts = _facts(session, pid)
    return _card(facts, pid, partner.external_id, partner.name, row, best_leads, best_pipeline)


def _card(
    facts: _Facts,
    pid: int,
    external_id: str,
    name: str,
    row: FunnelRow,
    best_leads: int,
    best_pipeline: float,
) -> ScoreCard:
    components = (
        _approval_speed(facts.approval_days.get(pid), pid in facts.pending),
        _customisation(facts.changes.get(pid)),
        _activity(facts.done.get(pid, 0), facts.finished.get(pid, 0)),
        _leads(row, best_leads),
        _mql_to_sql(row),
        _pipeline_per_spend(row, best_pipeline),
        _trend(facts.per_cycle.get(pid, {})),
    )
    return ScoreCard(pid, external_id, name, components)


def _component(
    name: str, value: float, detail: str, *, blocks: bool = False, own_detail: str = ""
) -> Component:
    return Component(name, WEIGHTS[name], max(0.0, min(1.0, value)), detail, blocks, own_detail)


def _approval_speed(days: list[float] | None, pending: bool) -> Component:
    """The median days from invitation to approval; none approved yet, with an invitation
    pending, blocks everything else."""
    if not days:
        detail = "invited, never approved" if pending else "no enrollment"
        return _component("approval speed", 0.0, detail, blocks=pending)
    median = statistics.median(days)
    value = 1 - (median - FAST_DAYS) / (SLOW_DAYS - FAST_DAYS)
    return _component("approval speed", value, f"median {median:.1f} days to approve")


def _customisation(changes: list[float] | None) -> Component:
    """How far the partner's text is from the fields' defaults (rapidfuzz ratio)."""
    if not changes:
        return _component("customisation", 0.0, "no editable text fields")
    mean = sum(changes) / len(changes)
    return _component(
        "customisation", mean, f"{mean:.0%} of the copy changed over {len(changes)} fields"
    )


def _activity(done: int, finished: int) -> Component:
    if not finished:
        return _component("activity", 0.0, "no finished dispatch yet")
    return _component("activity", done / finished, f"{done} of {finished} dispatches went out")


def _leads(row: FunnelRow, best: int) -> Component:
    leads = row.counts.get("leads", 0)
    if not best:
        return _component("leads", 0.0, "no partner has leads yet")
    noun = "lead" if leads == 1 else "leads"
    return _component(
        "leads",
        leads / best,
        f"{leads} {noun} (best partner: {best})",
        own_detail=f"{leads} {noun}, against the best partner of the programme",
    )


def _mql_to_sql(row: FunnelRow) -> Component:
    rate = row.rate("sql", "mql")
    if rate is None:
        return _component("MQL to SQL", 0.0, "no MQL yet")
    return _component(
        "MQL to SQL", rate, f"{row.counts['sql']} of {row.counts['mql']} MQLs became SQL"
    )


def _pipeline_per_spend(row: FunnelRow, best_pipeline: float) -> Component:
    roi = row.roi_pipeline
    if roi is None:
        if not row.pipeline:
            return _component("pipeline per spend", 0.0, "no spend and no pipeline")
        share = row.pipeline / best_pipeline if best_pipeline else 0.0
        return _component(
            "pipeline per spend", share, f"pipeline {row.pipeline:,.0f}, no spend recorded"
        )
    return _component(
        "pipeline per spend",
        roi / ROI_TARGET,
        f"pipeline {roi:.1f}x the spend (target {ROI_TARGET:.0f}x)",
    )


def _trend(per_cycle_by_key: dict[str, int]) -> Component:
    per_cycle = [per_cycle_by_key[key] for key in sorted(per_cycle_by_key)]
    if len(per_cycle) < 2:
        return _component("trend", 0.5, "one cycle or none: no trend yet")
    previous, last = per_cycle[-2], per_cycle[-1]
    change = (last - previous) / max(previous, 1)
    value = 0.5 + 0.5 * max(-1.0, min(1.0, change))
    return _component("trend", value, f"leads+opportunities {previous} -> {last} last cycle")
