"""Lead stages from the partner's CRM: a CSV import and the records of a signed webhook.

Each record names the partner, a lead, the stage it reached and the deal value, and
optionally the campaign and the UTM codes of the link that brought the lead. The lead is
found, in this order, by ``lead_id`` (the id partnercast gave it), by ``crm_id`` (the CRM's
own id for it, unique per partner: a lead whose email changed in the CRM keeps its
history, and CSV rows and webhook records with the same ``crm_id`` move the same lead), by
``email`` (among the partner's leads not yet bound to another CRM id, those whose campaign
and touch match the UTM codes first), and otherwise created, attributed to the campaign
and touch that ``utm_campaign`` and ``utm_content`` name. A stage a lead
already reached changes nothing (a different deal value is recorded as an adjustment), so
importing the same file twice is a no-op. Every record is checked before anything is
written and then written in its own SAVEPOINT: a bad record is rejected with its line (or
index) and a reason, and leaves nothing behind.

Stage changes apply by the CRM's own time: a record's ``occurred_at``, else (a webhook) the
message's ``webhook-timestamp``, else (a CSV row) the import's instant. An older record
never overwrites a newer one: a deal value set by a later record stays (an out-of-order
"opportunity 1000" after a 5000 changes nothing), and the lead's current stage moves only
further along lead -> won, and to or from lost only by a more recent record.

A stage change is an :class:`Event` whose kind is the stage and whose value is the deal
value, attributed through the Lead to its partner, campaign, enrollment, touch and cycle;
``data["reached"]`` lists every stage it newly reached (a lead reported ``won`` straight
from ``lead`` also reached mql, sql and opportunity), which the rollups count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from partnercast.campaigns.models import Campaign, CampaignVersion, Cycle, Enrollment, Touch
from partnercast.core.bounds import db_int_problem, parse_amount, parse_instant
from partnercast.core.models import Event
from partnercast.core.tenancy import session_tenant
from partnercast.core.timeutil import as_utc
from partnercast.funnel.leads import STAGES, Lead
from partnercast.funnel.models import LeadStage
from partnercast.tenants import values
from partnercast.tenants.csvfile import RowShapeError, read_csv
from partnercast.tenants.importing import ImportReport, Outcome, Rejection
from partnercast.tenants.models import Partner

REQUIRED = ("partner", "stage")
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
OPTIONAL = (
    "lead_id",
    "crm_id",
    "email",
    "name",
    "campaign",
    "deal_value",
    "currency",
    "occurred_at",
    *UTM,
)
ORDER = ("lead", "mql", "sql", "opportunity", "won")
VALUED = ("opportunity", "won")


@dataclass(frozen=True)
class StageUpdate:
    """One checked CRM record."""

    partner: Partner
    campaign: Campaign | None
    lead_id: int | None
    email: str
    name: str
    stage: str
    value: float
    currency: str
    occurred_at: datetime
    recorded_at: datetime  # when the engine learned of it (the import's instant)
    crm_id: str = ""
    touch_id: int | None = None
    utm: tuple[tuple[str, str], ...] = ()


@dataclass
class _Lookups:
    partners: dict[str, Partner]
    campaigns: dict[str, Campaign]
    touches: dict[tuple[int, str], int]  # (campaign id, touch key) -> touch id

    @classmethod
    def load(cls, session: Session) -> _Lookups:
        touches = {
            (campaign_id, key): touch_id
            for touch_id, key, campaign_id in session.exec(
                select(Touch.id, Touch.key, CampaignVersion.campaign_id)
                .join(CampaignVersion, col(CampaignVersion.id) == Touch.version_id)
                .order_by(col(CampaignVersion.number))  # the latest version's touch wins
            ).all()
            if touch_id is not None  # stored rows have ids
        }
        return cls(
            {p.external_id: p for p in session.exec(select(Partner)).all()},
            {c.key: c for c in session.exec(select(Campaign)).all()},
            touches,
        )


def import_leads(session: Session, path: str | Path, *, now: datetime) -> ImportReport:
    """Apply a CRM export (CSV) to the session's tenant's leads, row by row, at ``now``
    (the time of a record that gives no ``occurred_at``)."""
    session_tenant(session)
    csv_file = read_csv(Path(path), required=REQUIRED, optional=OPTIONAL)
    lookups = _Lookups.load(session)
    report = ImportReport()
    for row in csv_file.rows:
        if isinstance(row, RowShapeError):
            report.rejected.append(Rejection(row.line, row.reason))
            continue
        _apply_one(session, lookups, row.values, row.line, report, now)
    return report


def apply_records(
    session: Session,
    records: Iterable[Mapping[str, Any]],
    *,
    now: datetime,
    sent_at: datetime | None = None,
) -> ImportReport:
    """Apply webhook records received at ``now``, sent by the CRM at ``sent_at`` (the time
    of a record that gives no ``occurred_at``; default ``now``); a rejection's ``line`` is
    the record's index (from 0)."""
    session_tenant(session)
    lookups = _Lookups.load(session)
    report = ImportReport()
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            report.rejected.append(Rejection(index, "a lead record must be a JSON object"))
            continue
        unknown = sorted(set(record) - set(REQUIRED) - set(OPTIONAL))
        if unknown:
            report.rejected.append(Rejection(index, f"unknown fields {', '.join(unknown)}"))
            continue
        cells = {key: "" if value is None else str(value) for key, value in record.items()}
        _apply_one(session, lookups, cells, index, report, now, sent_at)
    return report


def _apply_one(
    session: Session,
    lookups: _Lookups,
    cells: Mapping[str, str],
    line: int,
    report: ImportReport,
    now: datetime,
    sent_at: datetime | None = None,
) -> None:
    try:
        update = parse_record(cells, lookups, now, sent_at)
    except values.BadValue as error:
        report.rejected.append(Rejection(line, str(error)))
        return
    try:
        with session.begin_nested():
            outcome = apply_update(session, update)
            session.flush()
    except values.BadValue as error:
        report.rejected.append(Rejection(line, str(error)))
        return
    except SQLAlchemyError as error:
        report.rejected.append(Rejection(line, f"not saved: {getattr(error, 'orig', error)}"))
        return
    report.count(outcome)


def parse_record(
    cells: Mapping[str, str], lookups: _Lookups, now: datetime, sent_at: datetime | None = None
) -> StageUpdate:
    """Check one record, received at ``now`` (sent at ``sent_at``, its time when it gives
    no ``occurred_at``), completely; raise BadValue listing every problem."""
    problems: list[str] = []
    get = {key: (cells.get(key) or "").strip() for key in (*REQUIRED, *OPTIONAL)}
    partner = lookups.partners.get(get["partner"])
    if not get["partner"]:
        problems.append("partner is empty")
    elif partner is None:
        problems.append(f"unknown partner {get['partner']!r}")
    campaign = lookups.campaigns.get(get["campaign"]) if get["campaign"] else None
    if get["campaign"] and campaign is None:
        problems.append(f"unknown campaign {get['campaign']!r}")
    campaign, touch_id = _utm_attribution(get, lookups, campaign, problems)
    crm_id = get["crm_id"]
    if len(crm_id) > 100 or not crm_id.isprintable():
        problems.append(f"crm_id {crm_id[:40]!r} must be at most 100 printable characters")
    stage = get["stage"].lower()
    if stage not in STAGES:
        problems.append(f"stage {get['stage']!r} is not one of {', '.join(STAGES)}")
    lead_id: int | None = None
    if get["lead_id"]:
        try:
            lead_id = int(get["lead_id"])
        except ValueError:
            problems.append(f"lead_id {get['lead_id']!r} is not a number")
        else:
            problem = db_int_problem(lead_id)
            if problem:
                problems.append(f"lead_id {get['lead_id']!r} {problem}")
                lead_id = None
    email = ""
    if get["email"]:
        try:
            email = values.email(get["email"])
        except values.BadValue as error:
            problems.append(str(error))
    named = any(word in p for p in problems for word in ("lead_id", "email", "crm_id"))
    if lead_id is None and not email and not crm_id and not named:
        problems.append("give lead_id or email (or crm_id)")
    value = _amount(get["deal_value"], problems)
    currency = get["currency"].upper()
    if currency and not (len(currency) == 3 and currency.isalpha()):
        problems.append(f"currency {get['currency']!r} is not a 3-letter code")
    occurred_at = as_utc(sent_at or now)
    if get["occurred_at"]:
        try:
            occurred_at = parse_instant(get["occurred_at"])
        except ValueError as error:
            problems.append(f"occurred_at {error}")
    if problems or partner is None:
        raise values.BadValue("; ".join(problems))
    utm = tuple((key, get[key][:200]) for key in UTM if get[key])
    return StageUpdate(
        partner,
        campaign,
        lead_id,
        email,
        get["name"][:200],
        stage,
        value,
        currency,
        occurred_at,
        as_utc(now),
        crm_id=crm_id,
        touch_id=touch_id,
        utm=utm,
    )


def _utm_attribution(
    get: Mapping[str, str], lookups: _Lookups, campaign: Campaign | None, problems: list[str]
) -> tuple[Campaign | None, int | None]:
    """The campaign and touch the UTM codes name (utm_campaign: campaign key, utm_content:
    touch key), checked against the record's own ``campaign``."""
    code, content = get["utm_campaign"], get["utm_content"]
    if code:
        named = lookups.campaigns.get(code)
        if named is None:
            problems.append(f"utm_campaign {code!r} is not a campaign of this tenant")
        elif campaign is not None and named.id != campaign.id:
            problems.append(f"campaign {get['campaign']!r} and utm_campaign {code!r} disagree")
        campaign = campaign or named
    if not content:
        return campaign, None
    if campaign is None:
        if not code:
            problems.append("utm_content names a touch: give utm_campaign or campaign too")
        return campaign, None
    touch_id = lookups.touches.get((campaign.id or 0, content))
    if touch_id is None:
        problems.append(f"utm_content {content!r} is not a touch of campaign {campaign.key!r}")
    return campaign, touch_id


def _amount(cell: str, problems: list[str]) -> float:
    if not cell:
        return 0.0
    try:
        return parse_amount(cell, label="deal_value")
    except ValueError as error:
        problems.append(str(error))
        return 0.0


def apply_update(session: Session, update: StageUpdate) -> Outcome:
    """Record one stage change (or nothing, when the lead already reached that stage)."""
    lead, created, relinked = _find_or_create_lead(session, update)
    reached_rows = {
        row.stage: row
        for row in session.exec(select(LeadStage).where(LeadStage.lead_id == lead.id)).all()
    }
    if not reached_rows and not created:
        reached_rows = _baseline(session, lead, update.recorded_at)
    previous = reached_rows.get(update.stage)
    if previous is not None:
        as_of = as_utc(previous.value_as_of or previous.occurred_at)
        if update.occurred_at < as_of:
            return "updated" if relinked else "unchanged"  # older than the value it has
        if update.stage in VALUED and update.value and previous.value != update.value:
            delta = update.value - previous.value
            previous.value = update.value
            previous.value_as_of = update.occurred_at
            session.add(previous)
            session.add(_event(lead, update, reached=[], adjust=delta))
            return "updated"
        return "updated" if relinked else "unchanged"
    reached = _newly_reached(update.stage, set(reached_rows))
    for stage in reached:
        session.add(
            LeadStage(
                lead_id=lead.id or 0,
                stage=stage,
                value=update.value if stage in VALUED else 0.0,
                currency=update.currency,
                occurred_at=update.occurred_at,
                created_at=update.recorded_at,
            )
        )
    if _moves_lead(lead, update):
        lead.stage = update.stage
        lead.stage_changed_at = update.occurred_at
        session.add(lead)
    session.add(_event(lead, update, reached=reached))
    return "created" if created else "updated"


def _moves_lead(lead: Lead, update: StageUpdate) -> bool:
    """Along lead -> won, a further stage moves the lead (reaching it means the earlier ones
    were passed); to or from lost, the more recent record wins (at the same instant, the
    further stage), so an out-of-order older "lost" does not undo a newer "won"."""
    if "lost" not in (lead.stage, update.stage):
        return _rank(update.stage) >= _rank(lead.stage)
    current = (as_utc(lead.stage_changed_at), _rank(lead.stage))
    return (update.occurred_at, _rank(update.stage)) >= current


def _rank(stage: str) -> int:
    return len(ORDER) if stage == "lost" else ORDER.index(stage)


def _newly_reached(stage: str, already: set[str]) -> list[str]:
    wanted = ["lead", "lost"] if stage == "lost" else list(ORDER[: ORDER.index(stage) + 1])
    return [s for s in wanted if s not in already]


def _baseline(session: Session, lead: Lead, now: datetime) -> dict[str, LeadStage]:
    """Stages a lead reached before the CRM first spoke of it; counted already, not again."""
    stages = ["lead"] if lead.stage == "lost" else list(ORDER[: _rank(lead.stage) + 1])
    rows = {
        stage: LeadStage(
            lead_id=lead.id or 0,
            stage=stage,
            counted=False,
            occurred_at=lead.created_at,
            source=lead.source,
            created_at=now,
        )
        for stage in stages
    }
    session.add_all(rows.values())
    return rows


def _find_or_create_lead(session: Session, update: StageUpdate) -> tuple[Lead, bool, bool]:
    """(lead, created, relinked): relinked when the record bound a CRM id or a new email."""
    partner_id = update.partner.id
    lead = _by_lead_id(session, update) or _by_crm_id(session, update) or _by_email(session, update)
    if lead is not None:
        return lead, False, _relink(session, lead, update)
    campaign_id = update.campaign.id if update.campaign else None
    enrollment = None
    if campaign_id is not None:
        enrollment = session.exec(
            select(Enrollment).where(
                Enrollment.partner_id == partner_id, Enrollment.campaign_id == campaign_id
            )
        ).first()
    lead = Lead(
        partner_id=partner_id or 0,
        campaign_id=campaign_id,
        enrollment_id=enrollment.id if enrollment else None,
        touch_id=update.touch_id,
        cycle_id=_cycle_at(session, campaign_id, update.occurred_at),
        email=update.email,
        name=update.name or (update.email.split("@")[0] if update.email else update.crm_id),
        stage=update.stage,
        source="crm",
        crm_id=update.crm_id or None,
        utm=dict(update.utm),
        created_at=update.occurred_at,
        stage_changed_at=update.occurred_at,
    )
    session.add(lead)
    session.flush()
    return lead, True, False


def _by_lead_id(session: Session, update: StageUpdate) -> Lead | None:
    if update.lead_id is None:
        return None
    lead = session.get(Lead, update.lead_id)
    if lead is None or lead.partner_id != update.partner.id:
        raise values.BadValue(f"no lead {update.lead_id} of partner {update.partner.external_id!r}")
    return lead


def _by_crm_id(session: Session, update: StageUpdate) -> Lead | None:
    if not update.crm_id:
        return None
    return session.exec(
        select(Lead).where(Lead.partner_id == update.partner.id, Lead.crm_id == update.crm_id)
    ).first()


def _by_email(session: Session, update: StageUpdate) -> Lead | None:
    """The partner's lead with this email and no other CRM id; UTM-matching ones first."""
    if not update.email:
        return None
    query = select(Lead).where(Lead.partner_id == update.partner.id, Lead.email == update.email)
    if update.campaign is not None:
        query = query.where(Lead.campaign_id == update.campaign.id)
    found = [
        lead
        for lead in session.exec(query.order_by(col(Lead.id).desc())).all()
        if lead.crm_id in (None, update.crm_id or None)
    ]
    if update.touch_id is not None:
        found.sort(key=lambda lead: lead.touch_id != update.touch_id)  # stable: newest next
    return found[0] if found else None


def _relink(session: Session, lead: Lead, update: StageUpdate) -> bool:
    """Bind the CRM id to the lead and take the CRM's current email; True when changed."""
    changed = False
    if update.crm_id and lead.crm_id != update.crm_id:
        if lead.crm_id:
            raise values.BadValue(
                f"lead {lead.id} has crm_id {lead.crm_id!r}, not {update.crm_id!r}"
            )
        taken = _by_crm_id(session, update)
        if taken is not None and taken.id != lead.id:
            raise values.BadValue(f"crm_id {update.crm_id!r} is lead {taken.id}'s already")
        lead.crm_id = update.crm_id
        changed = True
    if update.crm_id and update.email and lead.email != update.email:
        lead.email = update.email  # the CRM's record changed its email: same lead, same history
        changed = True
    if changed:
        session.add(lead)
    return changed


def _cycle_at(session: Session, campaign_id: int | None, moment: datetime) -> int | None:
    """The campaign's cycle running at ``moment`` (else the last one started before it)."""
    if campaign_id is None:
        return None
    cycle = session.exec(
        select(Cycle)
        .where(Cycle.campaign_id == campaign_id, Cycle.starts_at <= moment)
        .order_by(col(Cycle.starts_at).desc())
    ).first()
    return cycle.id if cycle else None


def _event(
    lead: Lead, update: StageUpdate, *, reached: list[str], adjust: float | None = None
) -> Event:
    data: dict[str, Any] = {
        "lead_id": lead.id,
        "cycle_id": lead.cycle_id,
        "touch_id": lead.touch_id,
        "reached": reached,
        "currency": update.currency,
        "utm": lead.utm,
    }
    if adjust is not None:
        data["adjust"] = True
    return Event(
        kind=update.stage,
        occurred_at=update.occurred_at,
        partner_id=lead.partner_id,
        campaign_id=lead.campaign_id,
        enrollment_id=lead.enrollment_id,
        value=adjust if adjust is not None else update.value,
        source="crm",
        data=data,
    )
