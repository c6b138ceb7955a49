"""Lead stages from the partner's CRM: a CSV import and the records of a signed webhook.

Each record names a lead (``lead_id``, the id partnercast gave it, or its ``email``), the
partner, optionally the campaign, the stage it reached and the deal value. A stage a lead
already reached changes nothing (a different deal value is recorded as an adjustment), so
importing the same file twice is a no-op. Every record is checked before anything is
written and then written in its own SAVEPOINT: a bad record is rejected with its line (or
index) and a reason, and leaves nothing behind.

A stage change is an :class:`Event` whose kind is the stage and whose value is the deal
value, attributed through the Lead to its partner, campaign, enrollment, touch and cycle;
``data["reached"]`` lists every stage it newly reached (a lead reported ``won`` straight
from ``lead`` also reached mql, sql and opportunity), which the rollups count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from partnercast.campaigns.models import Campaign, Cycle, Enrollment
from partnercast.core.models import Event
from partnercast.core.tenancy import session_tenant
from partnercast.core.timeutil import as_utc, utcnow
from partnercast.tenants import values
from partnercast.tenants.csvfile import RowShapeError, read_csv
from partnercast.tenants.funnel_models import LeadStage
from partnercast.tenants.importing import ImportReport, Outcome, Rejection
from partnercast.tenants.leads import STAGES, Lead
from partnercast.tenants.models import Partner

REQUIRED = ("partner", "stage")
OPTIONAL = ("lead_id", "email", "name", "campaign", "deal_value", "currency", "occurred_at")
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


@dataclass
class _Lookups:
    partners: dict[str, Partner]
    campaigns: dict[str, Campaign]

    @classmethod
    def load(cls, session: Session) -> _Lookups:
        return cls(
            {p.external_id: p for p in session.exec(select(Partner)).all()},
            {c.key: c for c in session.exec(select(Campaign)).all()},
        )


def import_leads(session: Session, path: str | Path) -> ImportReport:
    """Apply a CRM export (CSV) to the session's tenant's leads, row by row."""
    session_tenant(session)
    csv_file = read_csv(Path(path), required=REQUIRED, optional=OPTIONAL)
    lookups = _Lookups.load(session)
    report = ImportReport()
    for row in csv_file.rows:
        if isinstance(row, RowShapeError):
            report.rejected.append(Rejection(row.line, row.reason))
            continue
        _apply_one(session, lookups, row.values, row.line, report)
    return report


def apply_records(session: Session, records: Iterable[Mapping[str, Any]]) -> ImportReport:
    """Apply webhook records; a rejection's ``line`` is the record's index (from 0)."""
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
        _apply_one(session, lookups, cells, index, report)
    return report


def _apply_one(
    session: Session, lookups: _Lookups, cells: Mapping[str, str], line: int, report: ImportReport
) -> None:
    try:
        update = parse_record(cells, lookups)
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


def parse_record(cells: Mapping[str, str], lookups: _Lookups) -> StageUpdate:
    """Check one record completely; raise BadValue listing every problem."""
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
    stage = get["stage"].lower()
    if stage not in STAGES:
        problems.append(f"stage {get['stage']!r} is not one of {', '.join(STAGES)}")
    lead_id: int | None = None
    if get["lead_id"]:
        try:
            lead_id = int(get["lead_id"])
        except ValueError:
            problems.append(f"lead_id {get['lead_id']!r} is not a number")
    email = ""
    if get["email"]:
        try:
            email = values.email(get["email"])
        except values.BadValue as error:
            problems.append(str(error))
    if lead_id is None and not email and not any("lead_id" in p or "email" in p for p in problems):
        problems.append("give lead_id or email")
    value = _amount(get["deal_value"], problems)
    currency = get["currency"].upper()
    if currency and not (len(currency) == 3 and currency.isalpha()):
        problems.append(f"currency {get['currency']!r} is not a 3-letter code")
    occurred_at = utcnow()
    if get["occurred_at"]:
        try:
            occurred_at = as_utc(datetime.fromisoformat(get["occurred_at"]))
        except ValueError:
            problems.append(f"occurred_at {get['occurred_at']!r} is not an ISO date or datetime")
    if problems or partner is None:
        raise values.BadValue("; ".join(problems))
    return StageUpdate(
        partner, campaign, lead_id, email, get["name"][:200], stage, value, currency, occurred_at
    )


def _amount(cell: str, problems: list[str]) -> float:
    if not cell:
        return 0.0
    try:
        amount = float(cell.replace(",", ""))
    except ValueError:
        problems.append(f"deal_value {cell!r} is not a number")
        return 0.0
    if not math.isfinite(amount) or amount < 0:
        problems.append(f"deal_value {cell!r} must be zero or more")
        return 0.0
    return amount


def apply_update(session: Session, update: StageUpdate) -> Outcome:
    """Record one stage change (or nothing, when the lead already reached that stage)."""
    lead, created = _find_or_create_lead(session, update)
    reached_rows = {
        row.stage: row
        for row in session.exec(select(LeadStage).where(LeadStage.lead_id == lead.id)).all()
    }
    if not reached_rows and not created:
        reached_rows = _baseline(session, lead)
    previous = reached_rows.get(update.stage)
    if previous is not None:
        if update.stage in VALUED and update.value and previous.value != update.value:
            delta = update.value - previous.value
            previous.value = update.value
            session.add(previous)
            session.add(_event(lead, update, reached=[], adjust=delta))
            return "updated"
        return "unchanged"
    reached = _newly_reached(update.stage, set(reached_rows))
    for stage in reached:
        session.add(
            LeadStage(
                lead_id=lead.id or 0,
                stage=stage,
                value=update.value if stage in VALUED else 0.0,
                currency=update.currency,
                occurred_at=update.occurred_at,
            )
        )
    if _rank(update.stage) >= _rank(lead.stage):
        lead.stage = update.stage
        lead.stage_changed_at = update.occurred_at
        session.add(lead)
    session.add(_event(lead, update, reached=reached))
    return "created" if created else "updated"


def _rank(stage: str) -> int:
    return len(ORDER) if stage == "lost" else ORDER.index(stage)


def _newly_reached(stage: str, already: set[str]) -> list[str]:
    wanted = ["lead", "lost"] if stage == "lost" else list(ORDER[: ORDER.index(stage) + 1])
    return [s for s in wanted if s not in already]


def _baseline(session: Session, lead: Lead) -> dict[str, LeadStage]:
    """Stages a lead reached before the CRM first spoke of it; counted already, not again."""
    stages = ["lead"] if lead.stage == "lost" else list(ORDER[: _rank(lead.stage) + 1])
    rows = {
        stage: LeadStage(
            lead_id=lead.id or 0,
            stage=stage,
            counted=False,
            occurred_at=lead.created_at,
            source=lead.source,
        )
        for stage in stages
    }
    session.add_all(rows.values())
    return rows


def _find_or_create_lead(session: Session, update: StageUpdate) -> tuple[Lead, bool]:
    partner_id = update.partner.id
    if update.lead_id is not None:
        lead = session.get(Lead, update.lead_id)
        if lead is None or lead.partner_id != partner_id:
            raise values.BadValue(
                f"no lead {update.lead_id} of partner {update.partner.external_id!r}"
            )
        return lead, False
    query = select(Lead).where(Lead.partner_id == partner_id, Lead.email == update.email)
    if update.campaign is not None:
        query = query.where(Lead.campaign_id == update.campaign.id)
    lead = session.exec(query.order_by(col(Lead.id).desc())).first()
    if lead is not None:
        return lead, False
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
        cycle_id=_cycle_at(session, campaign_id, update.occurred_at),
        email=update.email,
        name=update.name or update.email.split("@")[0],
        stage=update.stage,
        source="crm",
        created_at=update.occurred_at,
        stage_changed_at=update.occurred_at,
    )
    session.add(lead)
    session.flush()
    return lead, True


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
