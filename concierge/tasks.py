"""Concierges and their tasks: created by hand or by the engine, assigned, noted, closed.

Every function takes a tenant-scoped session: a task or concierge of another tenant is
simply not found. Engine-made tasks come from :mod:`partnercast.concierge.task_scan`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from partnercast.campaigns.approval import (
    CHANGES_REQUESTED,
    CUSTOMISING,
    INVITED,
    SUBMITTED,
)
from partnercast.concierge.models import (
    Concierge,
    ConciergeSettings,
    ConciergeTask,
    PartnerAssignment,
    Thresholds,
)
from partnercast.core.errors import NotFound, UserError
from partnercast.core.timeutil import as_utc
from partnercast.tenants import values
from partnercast.tenants.models import Partner
from partnercast.tenants.partners import get_partner

OPEN = "open"
IN_PROGRESS = "in_progress"
DONE = "done"
DISMISSED = "dismissed"
STATUSES = (OPEN, IN_PROGRESS, DONE, DISMISSED)
OPEN_STATUSES = (OPEN, IN_PROGRESS)
CLOSED_STATUSES = (DONE, DISMISSED)

ENGINE = "engine"
# Enrollment states in which an approval is still pending: the scan opens approval tasks
# for them, and the weekly review lists them.
PENDING_APPROVAL_STATES = (INVITED, CUSTOMISING, SUBMITTED, CHANGES_REQUESTED)
_KIND_SHAPE = re.compile(r"[a-z][a-z0-9_]{0,39}")

SETTING_FIELDS = (
    "approval_pending_days",
    "bounce_rate_threshold",
    "partners_per_language_cap",
    "lead_followup_hours",
    "review_interval_days",
    "task_due_days",
    "incident_window_days",
)

TEN_YEARS_OF_DAYS = 3650
SETTING_LIMITS = {
    "lead_followup_hours": 24 * TEN_YEARS_OF_DAYS,
    "partners_per_language_cap": 100_000,
}
"""The largest value of a setting (days: ten years): due dates are computed from them."""


# --- settings -----------------------------------------------------------------------------


def concierge_settings(session: Session) -> Thresholds:
    """The tenant's thresholds: its stored row, or the defaults."""
    return session.exec(select(ConciergeSettings)).first() or Thresholds()


def update_settings(session: Session, changes: dict[str, Any], *, now: datetime) -> Thresholds:
    """Change some thresholds (each must be positive); the others keep their value.
    Returns the thresholds now in force (the tenant's stored row)."""
    row = session.exec(select(ConciergeSettings)).first() or ConciergeSettings(updated_at=now)
    for name, value in changes.items():
        if name not in SETTING_FIELDS:
            raise UserError(f"unknown concierge setting {name!r}")
        if value is None:
            continue
        if name == "bounce_rate_threshold":
            if not 0 < value < 1:  # NaN too
                raise UserError(f"{name} must be a rate above 0 and below 1", where=name)
        elif not 0 < value <= SETTING_LIMITS.get(name, TEN_YEARS_OF_DAYS):
            limit = SETTING_LIMITS.get(name, TEN_YEARS_OF_DAYS)
            raise UserError(f"{name} must be from 1 to {limit:,}", where=name)
        setattr(row, name, value)
    row.updated_at = now
    session.add(row)
    session.flush()
    return row


# --- concierges ---------------------------------------------------------------------------


def language_of(locale: str) -> str:
    """The language a locale is written in: ``de_CH`` -> ``de``. Capacity counts these."""
    return locale.split("_")[0].split("-")[0].lower()


def parse_languages(text: str) -> list[str]:
    """``de,en`` -> ``['de', 'en']``: checked CLDR languages, without repeats."""
    languages: list[str] = []
    for item in text.replace(";", ",").split(","):
        if not item.strip():
            continue
        try:
            language = language_of(values.locale_id(item))
        except values.BadValue as error:
            raise UserError(str(error), where="--languages") from error
        if language not in languages:
            languages.append(language)
    if not languages:
        raise UserError("name at least one language (e.g. de,en)", where="--languages")
    return languages


def add_concierge(
    session: Session, name: str, *, languages: Sequence[str], email: str = "", now: datetime
) -> Concierge:
    """A new concierge; the name is how commands refer to them, so it must be free."""
    clean = name.strip()
    if not clean:
        raise UserError("a concierge needs a name")
    if session.exec(select(Concierge).where(Concierge.name == clean)).first():
        raise UserError(f"there is already a concierge named {clean!r}")
    address = ""
    if email:
        try:
            address = values.email(email)
        except values.BadValue as error:
            raise UserError(str(error), where="--email") from error
    concierge = Concierge(name=clean, email=address, languages=list(languages), created_at=now)
    session.add(concierge)
    session.flush()
    return concierge


def get_concierge(session: Session, name: str) -> Concierge:
    """The tenant's concierge called ``name``."""
    concierge = session.exec(select(Concierge).where(Concierge.name == name.strip())).first()
    if concierge is None:
        raise NotFound(f"no concierge {name!r}")
    return concierge


def list_concierges(session: Session) -> list[Concierge]:
    return list(session.exec(select(Concierge).order_by(Concierge.name)).all())


def partner_concierge(session: Session, partner_id: int) -> int | None:
    """The id of the concierge a partner is assigned to, if any."""
    return session.exec(
        select(PartnerAssignment.concierge_id).where(PartnerAssignment.partner_id == partner_id)
    ).first()


# --- tasks --------------------------------------------------------------------------------


def check_kind(kind: str) -> str:
    normal = kind.strip().lower().replace("-", "_")
    if not _KIND_SHAPE.fullmatch(normal):
        raise UserError(
            f"task kind {kind!r} must be lower-case letters, digits and underscores",
            where="--kind",
        )
    return normal


def add_task(
    session: Session,
    partner: Partner,
    *,
    kind: str,
    due_at: datetime,
    title: str = "",
    owner: Concierge | None = None,
    note: str = "",
    created_by: str,
    now: datetime,
) -> ConciergeTask:
    """A task made by a person (or the engine, with a cause: see task_scan.open_for_cause)."""
    moment = as_utc(now)
    owner_id = owner.id if owner else partner_concierge(session, partner.id or 0)
    task = ConciergeTask(
        partner_id=partner.id or 0,
        owner_id=owner_id,
        kind=check_kind(kind),
        title=title[:300],
        due_at=as_utc(due_at),
        created_by=created_by[:100],
        created_at=moment,
        updated_at=moment,
    )
    if note:
        _append_note(task, note, author=created_by, now=moment)
    session.add(task)
    session.flush()
    return task


def get_task(session: Session, task_id: int) -> ConciergeTask:
    """The tenant's task ``task_id``; another tenant's task is not found."""
    task = session.exec(select(ConciergeTask).where(ConciergeTask.id == task_id)).first()
    if task is None:
        raise NotFound(f"no task {task_id}")
    return task


def assign_task(session: Session, task: ConciergeTask, owner: Concierge, *, now: datetime) -> None:
    task.owner_id = owner.id
    _append_note(task, f"assigned to {owner.name}", author="", now=now)


def start_task(session: Session, task: ConciergeTask, *, author: str, now: datetime) -> None:
    _require_open(task)
    task.status = IN_PROGRESS
    _append_note(task, "started", author=author, now=now)


def note_task(
    session: Session, task: ConciergeTask, text: str, *, author: str, now: datetime
) -> None:
    if not text.strip():
        raise UserError("the note is empty")
    _append_note(task, text, author=author, now=now)


def close_task(
    session: Session,
    task: ConciergeTask,
    *,
    note: str = "",
    status: str = DONE,
    author: str = "",
    now: datetime,
) -> None:
    """Close a task (done or dismissed); its cause may then open a new one only as a new episode."""
    _require_open(task)
    if status not in CLOSED_STATUSES:
        raise UserError(f"a task is closed as {' or '.join(CLOSED_STATUSES)}, not {status!r}")
    task.status = status
    task.open_cause = None
    task.closed_at = now
    _append_note(task, note or status, author=author, now=now)


def _require_open(task: ConciergeTask) -> None:
    if task.status not in OPEN_STATUSES:
        raise UserError(f"task {task.id} is already {task.status}")


def _append_note(task: ConciergeTask, text: str, *, author: str, now: datetime) -> None:
    who = f" {author}:" if author else ""
    task.notes += f"[{as_utc(now):%Y-%m-%d %H:%M}]{who} {text.strip()}\n"
    task.updated_at = now


@dataclass(frozen=True)
class TaskFilter:
    owner: str | None = None
    partner: str | None = None
    kind: str | None = None
    status: str | None = None  # a status, or "open" for open + in progress, or "all"
    overdue: bool = False


def list_tasks(session: Session, query: TaskFilter, *, now: datetime) -> list[ConciergeTask]:
    """Tasks matching ``query``, by due date. With no status, the open ones."""
    statement = select(ConciergeTask).order_by(col(ConciergeTask.due_at), col(ConciergeTask.id))
    status = query.status or OPEN
    if status == OPEN:
        statement = statement.where(col(ConciergeTask.status).in_(OPEN_STATUSES))
    elif status != "all":
        if status not in STATUSES:
            raise UserError(f"status {status!r} is not one of all, {', '.join(STATUSES)}")
        statement = statement.where(ConciergeTask.status == status)
    if query.owner:
        statement = statement.where(
            ConciergeTask.owner_id == get_concierge(session, query.owner).id
        )
    if query.partner:
        partner = get_partner(session, query.partner)
        statement = statement.where(ConciergeTask.partner_id == partner.id)
    if query.kind:
        statement = statement.where(ConciergeTask.kind == check_kind(query.kind))
    if query.overdue:
        statement = statement.where(
            col(ConciergeTask.status).in_(OPEN_STATUSES), col(ConciergeTask.due_at) < now
        )
    return list(session.exec(statement).all())


def default_due(now: datetime, days: int) -> datetime:
    return as_utc(now) + timedelta(days=days)
