"""CSV import of partners and contacts into one tenant, row by row, idempotently.

Every row is checked completely before anything is written, then written in its own
SAVEPOINT: a bad row is rejected (with its physical line number and a short reason) and
leaves nothing behind, while the good rows are kept. Rows are matched to existing ones by
external id, so importing the same file twice changes nothing (and does not touch
``updated_at``).

Only the columns present in the file are written: a file without a ``tier`` column leaves
the partners' tiers alone. An empty cell in a present optional column sets the default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel, select

from partnercast.core.errors import NotFound, UserError
from partnercast.core.sql import table_of
from partnercast.core.tenancy import session_tenant
from partnercast.tenants import values
from partnercast.tenants.csvfile import CsvFile, CsvRow, RowShapeError, read_csv
from partnercast.tenants.models import Contact, Partner, Tenant

Outcome = Literal["created", "updated", "unchanged"]
Row = TypeVar("Row", Partner, Contact)

PARTNER_REQUIRED = ("external_id", "name", "legal_name", "postal_address")
PARTNER_OPTIONAL = (
    "tier",
    "region",
    "languages",
    "tags",
    "score",
    "time_zone",
    "logo_url",
    "primary_color",
    "secondary_color",
    "signature",
    "sender_name",
    "sender_email",
    "contact_name",
    "contact_email",
    "status",
)
CONTACT_REQUIRED = ("external_id", "email", "consent")
CONTACT_OPTIONAL = ("first_name", "last_name", "company", "locale")
PARTNER_COLUMN = "partner"


@dataclass(frozen=True)
class Rejection:
    """A row that was not imported: the physical line it starts on, and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did, row by row."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def kept(self) -> int:
        """Rows that are in the database as the file says (created, updated or unchanged)."""
        return self.created + self.updated + self.unchanged

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


# Cell parsers by column; an empty cell takes the model's default instead.
_PARTNER_PARSERS: dict[str, Callable[[str], Any]] = {
    "tier": lambda cell: values.one_of("tier", cell, values.TIERS),
    "status": lambda cell: values.one_of("status", cell, values.STATUSES),
    "languages": lambda cell: [values.locale_id(item) for item in values.split_list(cell)],
    "tags": values.split_list,
    "score": values.score,
    "time_zone": values.time_zone,
    "logo_url": lambda cell: values.web_url(cell, "logo_url"),
    "primary_color": lambda cell: values.color(cell, "primary_color"),
    "secondary_color": lambda cell: values.color(cell, "secondary_color"),
    "sender_email": lambda cell: values.email(cell, "sender_email"),
    "contact_email": lambda cell: values.email(cell, "contact_email"),
}


def import_partners(session: Session, path: str | Path, *, now: datetime) -> ImportReport:
    """Create or update (at ``now``) the session's tenant's partners from a partner CSV
    file."""
    session_tenant(session)
    csv_file = read_csv(Path(path), required=PARTNER_REQUIRED, optional=PARTNER_OPTIONAL)
    existing = {p.external_id: p for p in session.exec(select(Partner)).all()}
    report = ImportReport()
    first_seen: dict[str, int] = {}
    for row in csv_file.rows:
        parsed = _parse_partner_row(row, csv_file, first_seen)
        if isinstance(parsed, Rejection):
            report.rejected.append(parsed)
            continue
        key = parsed["external_id"]
        result = _write_row(session, Partner, existing.get(key), parsed, row.line, now)
        if isinstance(result, Rejection):
            report.rejected.append(result)
            continue
        outcome, partner = result
        existing[key] = partner
        report.count(outcome)
    return report


def import_contacts(
    session: Session, path: str | Path, partner_external_id: str | None, *, now: datetime
) -> ImportReport:
    """Create or update (at ``now``) contacts of one partner, or of the partner each row
    names.

    With ``partner_external_id`` None the file needs a ``partner`` column, and a row naming
    an unknown partner is rejected. A named partner that does not exist is a NotFound
    error before anything is read or written.
    """
    tenant_id = session_tenant(session)
    partners = {p.external_id: p for p in session.exec(select(Partner)).all()}
    if partner_external_id is not None and partner_external_id not in partners:
        raise NotFound(f"no partner {partner_external_id!r}")
    optional = CONTACT_OPTIONAL if partner_external_id else (*CONTACT_OPTIONAL, PARTNER_COLUMN)
    required = CONTACT_REQUIRED if partner_external_id else (*CONTACT_REQUIRED, PARTNER_COLUMN)
    try:
        csv_file = read_csv(Path(path), required=required, optional=optional)
    except UserError as error:
        if partner_external_id is not None and f"{PARTNER_COLUMN!r}" in error.message:
            raise UserError(
                f"{error.message}; to take each row's partner from a 'partner' column, "
                "give '-' as the partner",
                where=error.where,
            ) from None
        raise
    tenant = session.get(Tenant, tenant_id)
    default_locale = tenant.default_locale if tenant is not None else "en"
    query = select(Contact)
    if partner_external_id is not None:
        query = query.where(Contact.partner_id == partners[partner_external_id].id)
    existing = {(c.partner_id, c.external_id): c for c in session.exec(query).all()}
    report = ImportReport()
    first_seen: dict[tuple[str, str], int] = {}
    for row in csv_file.rows:
        parsed = _parse_contact_row(
            row, csv_file, first_seen, partners, partner_external_id, default_locale
        )
        if isinstance(parsed, Rejection):
            report.rejected.append(parsed)
            continue
        key = (parsed["partner_id"], parsed["external_id"])
        result = _write_row(session, Contact, existing.get(key), parsed, row.line, now)
        if isinstance(result, Rejection):
            report.rejected.append(result)
            continue
        outcome, contact = result
        existing[key] = contact
        report.count(outcome)
    return report


def _parse_partner_row(
    row: CsvRow | RowShapeError, csv_file: CsvFile, first_seen: dict[str, int]
) -> dict[str, Any] | Rejection:
    """The partner's field values from one row, or why the row is refused."""
    if isinstance(row, RowShapeError):
        return Rejection(row.line, row.reason)
    key = row.values["external_id"].strip()
    if key in first_seen:
        return Rejection(row.line, f"duplicate external_id, first seen on line {first_seen[key]}")
    if key:
        first_seen[key] = row.line
    problems: list[str] = []
    parsed: dict[str, Any] = {}
    for column in csv_file.columns:
        cell = row.values[column]
        try:
            parsed[column] = _cell(Partner, column, cell, column in PARTNER_REQUIRED)
        except values.BadValue as error:
            problems.append(str(error))
    return Rejection(row.line, "; ".join(problems)) if problems else parsed


def _parse_contact_row(
    row: CsvRow | RowShapeError,
    csv_file: CsvFile,
    first_seen: dict[tuple[str, str], int],
    partners: dict[str, Partner],
    partner_external_id: str | None,
    default_locale: str,
) -> dict[str, Any] | Rejection:
    """The contact's field values (with ``partner_id``) from one row, or why it is refused."""
    if isinstance(row, RowShapeError):
        return Rejection(row.line, row.reason)
    partner_key = partner_external_id or row.values[PARTNER_COLUMN].strip()
    key = (partner_key, row.values["external_id"].strip())
    if key in first_seen:
        return Rejection(row.line, f"duplicate external_id, first seen on line {first_seen[key]}")
    if all(key):
        first_seen[key] = row.line
    problems: list[str] = []
    parsed: dict[str, Any] = {}
    if not partner_key:
        problems.append("partner is empty")
    elif partner_key not in partners:
        problems.append(f"unknown partner {partner_key!r}")
    else:
        parsed["partner_id"] = partners[partner_key].id
    for column in csv_file.columns:
        cell = row.values[column]
        try:
            if column == "consent":
                if not cell.strip() or not values.consent(cell):
                    problems.append("no consent")
                parsed["consent"] = True
            elif column == "locale":
                parsed["locale"] = values.locale_id(cell) if cell.strip() else default_locale
            elif column == "email":
                parsed["email"] = values.email(cell)
            elif column != PARTNER_COLUMN:
                parsed[column] = _cell(Contact, column, cell, column in CONTACT_REQUIRED)
        except values.BadValue as error:
            problems.append(str(error))
    parsed.setdefault("locale", default_locale)
    return Rejection(row.line, "; ".join(problems)) if problems else parsed


def _cell(model: type[SQLModel], column: str, cell: str, required: bool) -> Any:
    """One cell parsed for ``model.column``: checked, normalised, length-limited."""
    text = cell.strip()
    if not text:
        if required:
            raise values.BadValue(f"{column} is empty")
        return _default(model, column)
    parser = _PARTNER_PARSERS.get(column) if model is Partner else None
    value = parser(text) if parser else text
    limit = getattr(table_of(model).c[column].type, "length", None)
    if isinstance(value, str) and limit is not None and len(value) > limit:
        raise values.BadValue(f"{column} is longer than {limit} characters")
    return value


def _default(model: type[SQLModel], column: str) -> Any:
    info = model.model_fields[column]
    return info.get_default(call_default_factory=True)


def _write_row(
    session: Session,
    model: type[Row],
    existing: Row | None,
    parsed: dict[str, Any],
    line: int,
    now: datetime,
) -> tuple[Outcome, Row] | Rejection:
    """Create or update one row inside a SAVEPOINT; a database failure undoes just it."""
    try:
        with session.begin_nested():
            outcome, row = _apply(session, model, existing, parsed, now)
            session.flush()
    except SQLAlchemyError as error:
        cause = getattr(error, "orig", None) or error
        return Rejection(line, f"not saved: {cause}")
    return outcome, row


def _apply(
    session: Session, model: type[Row], existing: Row | None, parsed: dict[str, Any], now: datetime
) -> tuple[Outcome, Row]:
    if existing is None:
        row = model(**parsed, created_at=now, updated_at=now)
        session.add(row)
        return "created", row
    changes = {name: value for name, value in parsed.items() if getattr(existing, name) != value}
    if not changes:
        return "unchanged", existing
    for name, value in changes.items():
        setattr(existing, name, value)
    existing.updated_at = now
    return "updated", existing
