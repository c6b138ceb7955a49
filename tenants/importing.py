"""Import of partners and contacts into one tenant, idempotently, from CSV or .xlsx files.

Every row is checked completely before anything is written: a bad row is rejected (with
its physical line number and a short reason) and leaves nothing behind, while the good
rows are kept. Rows are matched to existing ones by external id, so importing the same
file twice changes nothing (and does not touch ``updated_at``).

Only the columns present in the file are written: a file without a ``tier`` column leaves
the partners' tiers alone. An empty cell in a present optional column sets the default.

Contacts are written set-based (docs/performance.md): the tenant's contacts are read once,
compared in memory, and the new and changed ones written in statements of
:data:`CHUNK` rows each. A contact whose consent is "no" is kept with its consent
withdrawn and its address suppressed at once, as the tenant's unsubscribe scope says
(tenants/suppressions.py); every consent given or withdrawn is recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, SQLModel, col, select

from partnercast.core.errors import NotFound, UserError
from partnercast.core.sql import table_of
from partnercast.core.tenancy import session_tenant
from partnercast.tenants import values
from partnercast.tenants.columns import (
    CONTACTS,
    CONTACTS_WITH_PARTNER,
    PARTNER_COLUMN,
    PARTNER_REQUIRED,
    PARTNERS,
    remembered,
)
from partnercast.tenants.csvfile import CsvFile, CsvRow, RowShapeError, read_csv
from partnercast.tenants.models import Contact, Partner, PartnerSuppression, Suppression, Tenant
from partnercast.tenants.suppressions import (
    email_hash,
    erased_hashes,
    normalise_email,
    record_consents,
)

Outcome = Literal["created", "updated", "unchanged"]
Row = TypeVar("Row", Partner, Contact)
Progress = Callable[[str, int, int], None]
"""Called as (phase, rows done, rows in all) while an import runs: "checking", "writing"."""
CHUNK = 5000
"""Rows per statement (and per progress step) when contacts are written."""
CONTACT_FIELDS = ("email", "first_name", "last_name", "company", "locale", "consent")
"""A contact's imported fields, in the order of the tuples compared."""
_TEXT_LIMITS = {"external_id": 100, "first_name": 100, "last_name": 100, "company": 200}


@dataclass(frozen=True)
class Rejection:
    """A row that was not imported: the physical line it starts on, and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did, row by row, and what the user should know about the file."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    withdrawn: int = 0
    """Contacts whose consent this import withdrew: their addresses are suppressed."""
    notes: list[str] = field(default_factory=list)

    @property
    def kept(self) -> int:
        """Rows that are in the database as the file says (created, updated or unchanged)."""
        return self.created + self.updated + self.unchanged

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


# --- partners -----------------------------------------------------------------------------

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


def import_partners(
    session: Session,
    path: str | Path,
    *,
    now: datetime,
    mapping: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Create or update (at ``now``) the session's tenant's partners from a partner file.

    ``mapping`` (header key -> field) comes after the tenant's remembered choices.
    """
    tenant = _tenant(session)
    columns = {**remembered(tenant.import_columns, "partners"), **(mapping or {})}
    csv_file = read_csv(Path(path), PARTNERS, columns)
    existing = {p.external_id: p for p in session.exec(select(Partner)).all()}
    report = ImportReport(notes=list(csv_file.notes))
    first_seen: dict[str, int] = {}
    tell = progress or _no_progress
    for done, row in enumerate(csv_file.rows, start=1):
        if done % 100 == 0:
            tell("writing", done, len(csv_file.rows))
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
    tell("writing", len(csv_file.rows), len(csv_file.rows))
    return report


def _parse_partner_row(
    row: CsvRow | RowShapeError, csv_file: CsvFile, first_seen: dict[str, int]
) -> dict[str, Any] | Rejection:
    """The partner's field values from one row, or why the row is refused."""
    if isinstance(row, RowShapeError):
        return Rejection(row.line, row.reason)
    cells = row.values
    key = cells["external_id"].strip()
    if key in first_seen:
        return Rejection(row.line, f"duplicate external_id, first seen on line {first_seen[key]}")
    if key:
        first_seen[key] = row.line
    problems: list[str] = []
    parsed: dict[str, Any] = {}
    for column in csv_file.columns:
        try:
            parsed[column] = _cell(Partner, column, cells[column], column in PARTNER_REQUIRED)
        except values.BadValue as error:
            problems.append(str(error))
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


def _tenant(session: Session) -> Tenant:
    tenant = session.get(Tenant, session_tenant(session))
    if tenant is None:
        raise NotFound("the session's tenant does not exist")
    return tenant


# --- contacts -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Contact:
    """One checked contact row: field values in :data:`CONTACT_FIELDS` order, None where
    the file has no such column (the stored value stays)."""

    line: int
    partner_id: int
    external_id: str
    fields: tuple[Any, ...]
    consent_at: datetime | None
    consent_text: str
    consent_source: str


def import_contacts(
    session: Session,
    path: str | Path,
    partner_external_id: str | None,
    *,
    now: datetime,
    mapping: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Create or update (at ``now``) contacts of one partner, or of the partner each row
    names.

    With ``partner_external_id`` None the file needs a ``partner`` column, and a row naming
    an unknown partner is rejected. A named partner that does not exist is a NotFound
    error before anything is read or written. ``mapping`` (header key -> field) comes
    after the tenant's remembered choices.
    """
    tenant = _tenant(session)
    tenant_id = session_tenant(session)
    partners: dict[str, int] = {
        key: id_
        for key, id_ in session.exec(select(Partner.external_id, Partner.id)).all()
        if id_ is not None
    }
    named = None
    if partner_external_id is not None:
        named = partners.get(partner_external_id)
        if named is None:
            hint = _suggest(partner_external_id, partners)
            raise NotFound(f"no partner {partner_external_id!r}{hint}")
    columns = {**remembered(tenant.import_columns, "contacts"), **(mapping or {})}
    try:
        csv_file = read_csv(Path(path), CONTACTS if named else CONTACTS_WITH_PARTNER, columns)
    except UserError as error:
        if named is None or PARTNER_COLUMN not in error.message:
            raise
        raise UserError(f"{error.message}; {_GIVE_DASH}", where=error.where) from None
    if named is not None and PARTNER_COLUMN in csv_file.columns:
        raise UserError(
            f"the file has a partner column and a partner is named; {_GIVE_DASH}",
            where=str(path),
        )
    report = ImportReport(notes=list(csv_file.notes))
    tell = progress or _no_progress
    checked = _check_contacts(csv_file, partners, named, tenant.default_locale, report, tell)
    query = select(
        Contact.id,
        Contact.partner_id,
        Contact.external_id,
        *(getattr(Contact, name) for name in CONTACT_FIELDS),
    )
    if named is not None:
        query = query.where(Contact.partner_id == named)
    existing: dict[tuple[int, str], tuple[int, tuple[Any, ...]]] = {
        (row[1], row[2]): (row[0], tuple(row[3:])) for row in session.execute(query)
    }
    checked = _refuse_duplicate_emails(checked, existing, report)
    checked = _refuse_erased(session, tenant_id, checked, report)
    _write_contacts(session, tenant, csv_file.path.name, checked, existing, report, tell, now)
    report.rejected.sort(key=lambda rejection: rejection.line)
    return report


_GIVE_DASH = "to take each row's partner from a 'partner' column, give '-' as the partner"


def _suggest(key: str, partners: Mapping[str, int]) -> str:
    """ " (did you mean 'P1'?)" for a partner id that differs only in case or spaces."""
    folded = key.strip().casefold()
    for candidate in partners:
        if candidate.casefold() == folded:
            return f" (did you mean {candidate!r}?)"
    return ""


def _check_contacts(
    csv_file: CsvFile,
    partners: dict[str, int],
    named: int | None,
    default_locale: str,
    report: ImportReport,
    tell: Progress,
) -> list[_Contact]:
    """The rows that pass every check; the others are added to the report's rejections."""
    index = {name: position for position, name in enumerate(csv_file.columns)}
    checked: list[_Contact] = []
    first_seen: dict[tuple[int | str, str], int] = {}
    total = len(csv_file.rows)
    for done, row in enumerate(csv_file.rows, start=1):
        if done % CHUNK == 0:
            tell("checking", done, total)
        if isinstance(row, RowShapeError):
            report.rejected.append(Rejection(row.line, row.reason))
            continue
        result = _check_contact(row, index, partners, named, default_locale)
        if isinstance(result, str):
            report.rejected.append(Rejection(row.line, result))
            continue
        key = (result.partner_id, result.external_id)
        if key in first_seen:
            report.rejected.append(
                Rejection(row.line, f"duplicate external_id, first seen on line {first_seen[key]}")
            )
            continue
        first_seen[key] = row.line
        checked.append(result)
    tell("checking", total, total)
    return checked


def _check_contact(
    row: CsvRow,
    index: dict[str, int],
    partners: dict[str, int],
    named: int | None,
    default_locale: str,
) -> _Contact | str:
    """One row checked and normalised, or why it is refused."""
    cells = row.cells

    def cell(name: str) -> str | None:
        position = index.get(name)
        return None if position is None else cells[position].strip()

    problems: list[str] = []
    partner_id = named
    if partner_id is None:
        partner_key = cell(PARTNER_COLUMN) or ""
        partner_id = partners.get(partner_key)
        if not partner_key:
            problems.append("partner is empty")
        elif partner_id is None:
            problems.append(f"unknown partner {partner_key!r}{_suggest(partner_key, partners)}")
    external_id = cell("external_id") or ""
    if not external_id:
        problems.append("external_id is empty")
    parsed: list[Any] = []
    for name in CONTACT_FIELDS:
        text = cell(name)
        try:
            parsed.append(_contact_value(name, text, default_locale))
        except values.BadValue as error:
            problems.append(str(error))
            parsed.append(None)
    if len(external_id) > _TEXT_LIMITS["external_id"]:
        problems.append(f"external_id is longer than {_TEXT_LIMITS['external_id']} characters")
    consent_at = None
    consent_date = cell("consent_date")
    if consent_date:
        try:
            consent_at = _instant(consent_date)
        except values.BadValue as error:
            problems.append(str(error))
    if problems or partner_id is None:
        return "; ".join(problems)
    return _Contact(
        row.line,
        partner_id,
        external_id,
        tuple(parsed),
        consent_at,
        (cell("consent_text") or "")[:2000],
        (cell("consent_source") or "")[:120],
    )


def _contact_value(name: str, text: str | None, default_locale: str) -> Any:
    """A contact field's stored value from its cell (None: no such column)."""
    if text is None:
        return None
    if name == "email":
        if not text:
            raise values.BadValue("email is empty")
        return values.fast_email(text)
    if name == "consent":
        if not text:
            raise values.BadValue("no consent given (the consent cell is empty: write yes or no)")
        return values.consent(text)
    if name == "locale":
        return values.contact_locale(text) if text else default_locale
    limit = _TEXT_LIMITS[name]
    if len(text) > limit:
        raise values.BadValue(f"{name} is longer than {limit} characters")
    return text


def _instant(text: str) -> datetime:
    """A consent date or time as ISO 8601 (a date alone is midnight UTC)."""
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
    except ValueError:
        raise values.BadValue(f"consent_date {text!r} is not an ISO date (2026-03-31)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _refuse_duplicate_emails(
    checked: list[_Contact],
    existing: dict[tuple[int, str], tuple[int, tuple[Any, ...]]],
    report: ImportReport,
) -> list[_Contact]:
    """Rows whose address another contact of the same partner has (in the file, or in the
    database and not changed by the file) are rejected: one person, one contact."""
    in_file = {(row.partner_id, row.external_id) for row in checked}
    owners: dict[tuple[int, str], str] = {}
    for key, (_id, stored) in existing.items():
        if key not in in_file and stored[0]:
            owners[(key[0], stored[0].lower())] = key[1]
    seen: dict[tuple[int, str], _Contact] = {}
    kept: list[_Contact] = []
    for row in checked:
        address = row.fields[0]
        if address is None:
            kept.append(row)
            continue
        key = (row.partner_id, address.lower())
        owner = owners.get(key)
        first = seen.get(key)
        if owner is not None:
            reason = f"email {address} is already contact {owner!r} of this partner"
        elif first is not None:
            reason = (
                f"email {address} is also on line {first.line} (external_id {first.external_id!r})"
            )
        else:
            seen[key] = row
            kept.append(row)
            continue
        report.rejected.append(Rejection(row.line, reason))
    return kept


def _refuse_erased(
    session: Session, tenant_id: int, checked: list[_Contact], report: ImportReport
) -> list[_Contact]:
    """Rows naming an address erased on request are rejected: it never comes back."""
    erased = erased_hashes(session)
    if not erased:
        return checked
    kept = []
    for row in checked:
        if row.fields[0] is not None and email_hash(tenant_id, row.fields[0]) in erased:
            report.rejected.append(
                Rejection(row.line, "this address was erased on request; it is not imported")
            )
        else:
            kept.append(row)
    return kept


@dataclass
class _Writes:
    """What one chunk of rows writes."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    new_rows: list[_Contact] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    consents: list[tuple[_Contact, int | None, bool]] = field(default_factory=list)
    """(row, contact id or None while not inserted, granted)."""


def _write_contacts(
    session: Session,
    tenant: Tenant,
    file_name: str,
    checked: list[_Contact],
    existing: dict[tuple[int, str], tuple[int, tuple[Any, ...]]],
    report: ImportReport,
    tell: Progress,
    now: datetime,
) -> None:
    """Insert the new contacts and update the changed ones, :data:`CHUNK` rows at a time;
    record consents, suppress withdrawals."""
    defaults = ("", "", "", "", tenant.default_locale, False)
    total = len(checked)
    for start in range(0, total, CHUNK):
        writes = _Writes()
        for row in checked[start : start + CHUNK]:
            current = existing.get((row.partner_id, row.external_id))
            if current is None:
                stored = tuple(
                    default if value is None else value
                    for value, default in zip(row.fields, defaults, strict=True)
                )
                writes.inserts.append(
                    {
                        "tenant_id": tenant.id,
                        "partner_id": row.partner_id,
                        "external_id": row.external_id,
                        **dict(zip(CONTACT_FIELDS, stored, strict=True)),
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                writes.new_rows.append(row)
                writes.consents.append((row, None, bool(stored[5])))
                continue
            contact_id, old = current
            changes = {
                name: value
                for name, value, before in zip(CONTACT_FIELDS, row.fields, old, strict=True)
                if value is not None and value != before
            }
            if not changes:
                report.unchanged += 1
                continue
            writes.updates.append({"id": contact_id, **changes, "updated_at": now})
            report.updated += 1
            if "consent" in changes:
                writes.consents.append((row, contact_id, bool(changes["consent"])))
        report.created += _insert(session, writes, report)
        if writes.updates:
            session.execute(update(Contact), writes.updates)
        _consents(session, tenant, file_name, writes, report, now)
        tell("writing", min(start + CHUNK, total), total)
    if not total:
        tell("writing", 0, 0)


def _insert(session: Session, writes: _Writes, report: ImportReport) -> int:
    """Insert a chunk's new contacts in one statement, noting their ids; if another
    import got there first (a unique key taken), row by row, rejecting the taken ones."""
    if not writes.inserts:
        return 0
    statement = insert(Contact).returning(
        col(Contact.partner_id),
        col(Contact.external_id),
        col(Contact.id),
        sort_by_parameter_order=True,
    )
    try:
        with session.begin_nested():
            ids = {(p, e): i for p, e, i in session.execute(statement, writes.inserts)}
    except IntegrityError:
        ids = {}
        for values_, row in zip(writes.inserts, writes.new_rows, strict=True):
            try:
                with session.begin_nested():
                    inserted = session.execute(insert(Contact).returning(col(Contact.id)), values_)
                    ids[(row.partner_id, row.external_id)] = inserted.scalar_one()
            except SQLAlchemyError as error:
                cause = getattr(error, "orig", None) or error
                report.rejected.append(Rejection(row.line, f"not saved: {cause}"))
    resolved: list[tuple[_Contact, int | None, bool]] = []
    for row, contact_id, granted in writes.consents:
        known = contact_id if contact_id is not None else ids.get((row.partner_id, row.external_id))
        if known is not None:
            resolved.append((row, known, granted))
    writes.consents = resolved
    return len(ids)


def _consents(
    session: Session,
    tenant: Tenant,
    file_name: str,
    writes: _Writes,
    report: ImportReport,
    now: datetime,
) -> None:
    """Record each consent given or withdrawn; suppress the withdrawn addresses at once,
    for every partner or for the row's partner as the tenant chose."""
    tenant_id = tenant.id or 0
    records: list[dict[str, object]] = []
    withdrawn: dict[tuple[int, str], _Contact] = {}
    for row, contact_id, granted in writes.consents:
        address = normalise_email(str(row.fields[0] or ""))
        source = f"{file_name}, line {row.line}"
        if row.consent_source:
            source += f": {row.consent_source}"
        records.append(
            {
                "contact_id": contact_id,
                "partner_id": row.partner_id,
                "email": address,
                "email_hash": email_hash(tenant_id, address),
                "granted": granted,
                "occurred_at": row.consent_at or now,
                "method": "import",
                "text": row.consent_text,
                "source": source,
                "recorded_at": now,
            }
        )
        if not granted and address:
            withdrawn[(row.partner_id, address)] = row
    record_consents(session, records)
    report.withdrawn += len(withdrawn)
    if withdrawn:
        _suppress_withdrawn(session, tenant, file_name, withdrawn, now)


def _suppress_withdrawn(
    session: Session,
    tenant: Tenant,
    file_name: str,
    withdrawn: dict[tuple[int, str], _Contact],
    now: datetime,
) -> None:
    addresses = sorted({address for _partner, address in withdrawn})
    rows: list[dict[str, Any]] = []
    if tenant.unsubscribe_scope == "partner":
        taken = set(
            session.execute(
                select(PartnerSuppression.partner_id, PartnerSuppression.email).where(
                    col(PartnerSuppression.email).in_(addresses)
                )
            ).tuples()
        )
        for key, row in withdrawn.items():
            if key not in taken:
                rows.append({"partner_id": key[0], "email": key[1], **_why(file_name, row, now)})
        model: type[SQLModel] = PartnerSuppression
    else:
        taken_emails = set(
            session.exec(select(Suppression.email).where(col(Suppression.email).in_(addresses)))
        )
        for (_partner, address), row in withdrawn.items():
            if address not in taken_emails:
                taken_emails.add(address)
                rows.append({"email": address, **_why(file_name, row, now)})
        model = Suppression
    if rows:
        session.execute(insert(model), [{"tenant_id": tenant.id, **row} for row in rows])


def _why(file_name: str, row: _Contact, now: datetime) -> dict[str, Any]:
    return {
        "reason": "withdrawn",
        "source": f"import {file_name}, line {row.line}"[:200],
        "created_at": now,
    }
