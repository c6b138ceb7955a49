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

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Session, SQLModel, col, select

from partnercast.core.errors import NotFound, UserError
from partnercast.core.sql import table_of
from partnercast.core.tenancy import session_tenant
from partnercast.core.webhook_outbox import enqueue
from partnercast.tenants import values
from partnercast.tenants.bulk import insert_rows, select_rows
from partnercast.tenants.columns import (
    CONTACTS,
    CONTACTS_WITH_PARTNER,
    OPPOSITES,
    PARTNER_COLUMN,
    PARTNER_REQUIRED,
    PARTNERS,
    remembered,
)
from partnercast.tenants.csvfile import (
    CsvFile,
    CsvRow,
    CsvStream,
    RowShapeError,
    open_csv,
    read_csv,
)
from partnercast.tenants.models import (
    ConsentRecord,
    Contact,
    Partner,
    PartnerSuppression,
    Suppression,
    Tenant,
)
from partnercast.tenants.suppressions import (
    email_hash,
    email_hasher,
    erased_hashes,
    normalise_email,
    suppressed_happening,
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
        csv_file = open_csv(Path(path), CONTACTS if named else CONTACTS_WITH_PARTNER, columns)
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
    present = tuple(name for name in CONTACT_FIELDS if _column_of(csv_file, name) is not None)
    known = _Known.load(session, named, present)
    erased = erased_hashes(session)
    tell = progress or _no_progress
    checker = _Checker(csv_file, partners, named, tenant.default_locale)
    chunk: list[_Contact] = []
    done = 0
    for row in csv_file.rows:
        done += 1
        if known.rows and checker.unchanged(row, known):
            report.unchanged += 1
            continue
        checked = checker.check(row)
        if isinstance(checked, Rejection):
            report.rejected.append(checked)
            continue
        problem = known.claim(checked) or _erased(tenant_id, checked, erased)
        if problem:
            report.rejected.append(Rejection(checked.line, problem))
            continue
        chunk.append(checked)
        if len(chunk) == CHUNK:
            _write_contacts(session, tenant, csv_file.path.name, chunk, known, report, now)
            chunk = []
            tell("importing", done, csv_file.size)
    _write_contacts(session, tenant, csv_file.path.name, chunk, known, report, now)
    tell("importing", done, done)
    return report


_GIVE_DASH = "to take each row's partner from a 'partner' column, give '-' as the partner"


def _suggest(key: str, partners: Mapping[str, int]) -> str:
    """ " (did you mean 'P1'?)" for a partner id that differs only in case or spaces."""
    folded = key.strip().casefold()
    for candidate in partners:
        if candidate.casefold() == folded:
            return f" (did you mean {candidate!r}?)"
    return ""


class _Checker:
    """Checks rows one by one: each row's values, and its key not seen before."""

    def __init__(
        self, csv_file: CsvStream, partners: dict[str, int], named: int | None, locale: str
    ) -> None:
        columns = (PARTNER_COLUMN, "external_id", *CONTACT_FIELDS, *_CONSENT_EXTRAS)
        found = [_column_of(csv_file, name) for name in columns]
        self.positions = [-1 if at is None else csv_file.columns.index(at) for at in found]
        # Consent given as an opt-out column: a yes there is a no to consent.
        self.opt_out = "consent" not in csv_file.columns and OPT_OUT in csv_file.columns
        self.partners, self.named, self.locale = partners, named, locale
        self.parsers = _parsers(locale, opt_out=self.opt_out)
        # Keyed by hash((partner, external id)): an int, not a tuple and its string, per
        # row of a large file (two keys in 2**64 alike would reject a row as a duplicate).
        self.first_seen: dict[int, int] = {}

    def unchanged(self, row: CsvRow | RowShapeError, known: _Known) -> bool:
        """Whether the row's cells, as they are, are what is stored (the usual row of a
        re-import): then it needs no checking, the stored values were checked. Its key
        and address are noted as :meth:`check` and :meth:`_Known.claim` would."""
        if isinstance(row, RowShapeError):
            return False
        cells = row.cells
        at = self.positions
        partner_id = self.named
        if partner_id is None:
            partner_id = self.partners.get(cells[at[0]].strip())
        external_id = cells[at[1]].strip()
        stored = known.rows.get((partner_id or 0, external_id))
        if stored is None:
            return False
        raw: list[Any] = []
        for index in known.present:
            text = cells[at[2 + index]].strip()
            if index == _CONSENT_INDEX:
                consent = values.CONSENT_VALUES.get(text.lower())
                if consent is None:
                    return False
                raw.append(consent is not self.opt_out)
            else:
                raw.append(text)
        if hash(tuple(raw)) != stored[1]:
            return False
        date_at = at[2 + len(CONTACT_FIELDS)]
        if date_at >= 0 and cells[date_at].strip():
            return False  # a consent date to check
        key = hash((partner_id, external_id))
        if self.first_seen.setdefault(key, row.line) != row.line:
            return False  # a duplicate: check() rejects it
        address = raw[0] if known.present[:1] == (0,) else None
        return not known.claim_address(partner_id or 0, external_id, address, row.line)

    def check(self, row: CsvRow | RowShapeError) -> _Contact | Rejection:
        if isinstance(row, RowShapeError):
            return Rejection(row.line, row.reason)
        result = _check_contact(row, self.positions, self.partners, self.named, self.parsers)
        if isinstance(result, str):
            return Rejection(row.line, result)
        key = hash((result.partner_id, result.external_id))
        first = self.first_seen.setdefault(key, row.line)
        if first != row.line:
            return Rejection(row.line, f"duplicate external_id, first seen on line {first}")
        return result


class _Known:
    """The contacts already stored, as much of them as an import needs: by (partner,
    external id) their id, a hash of the fields the file has, their consent and address;
    and who has each address, in the database or on an earlier line of the file."""

    def __init__(self, present: tuple[str, ...]) -> None:
        self.present = tuple(CONTACT_FIELDS.index(name) for name in present)
        # (partner, external id) -> (id, hash of the fields, consent, owners' key)
        self.rows: dict[tuple[int, str], tuple[int, int, bool, int]] = {}
        # Who has each address: hash((partner, lower-case address)) -> (external id, the
        # file's line, 0 when it is in the database); an int key keeps a large file small.
        self.owners: dict[int, tuple[str, int]] = {}
        # Every contact this import inserts has a larger id than this one (ids only grow):
        # reading back a chunk's new ids reads the contacts above it.
        self.floor = 0

    @classmethod
    def load(cls, session: Session, named: int | None, present: tuple[str, ...]) -> _Known:
        known = cls(present)
        names = ("id", "partner_id", "external_id", "email", "consent", *present)
        where = [] if named is None else [("partner_id", "=", named)]
        # Plain driver rows, streamed (bulk.select_rows): 100,000 contacts' rows at once,
        # or as ORM rows, would double the import's peak memory and time.
        rows = known.rows
        owners = known.owners
        for row in select_rows(session, Contact, names, where=where):
            owner_key = hash((row[1], row[3].lower()))
            rows[(row[1], row[2])] = (row[0], hash(row[5:]), row[4], owner_key)
            if row[3]:
                owners[owner_key] = (row[2], 0)
        known.floor = int(session.exec(select(func.max(col(Contact.id)))).one() or 0)
        return known

    def digest(self, row: _Contact) -> int:
        """The hash of the row's values of the fields the file has (as :meth:`load`)."""
        return hash(tuple([row.fields[index] for index in self.present]))

    def claim(self, row: _Contact) -> str:
        """Why the row's address is another contact's (of the same partner), or "" after
        noting that it is now this row's."""
        return self.claim_address(row.partner_id, row.external_id, row.fields[0], row.line)

    def claim_address(
        self, partner_id: int, external_id: str, address: str | None, line: int
    ) -> str:
        """:meth:`claim`, by parts."""
        if address is None:
            return ""
        lower = address.lower()
        key = hash((partner_id, lower))
        owner = self.owners.get(key)
        if owner is not None and owner[0] != external_id:
            if owner[1]:
                return f"email {address} is also on line {owner[1]} (external_id {owner[0]!r})"
            return f"email {address} is already contact {owner[0]!r} of this partner"
        stored = self.rows.get((partner_id, external_id))
        if stored is not None and stored[3] != key:
            self.owners.pop(stored[3], None)  # its old address is free
        self.owners[key] = (external_id, line)
        return ""


def _erased(tenant_id: int, row: _Contact, erased: set[str]) -> str:
    if erased and row.fields[0] is not None and email_hash(tenant_id, row.fields[0]) in erased:
        return "this address was erased on request; it is not imported"
    return ""


_CONSENT_INDEX = CONTACT_FIELDS.index("consent")
OPT_OUT = OPPOSITES["consent"]
"""The column that gives consent the other way round (Salesforce's "Email Opt Out")."""
_CONSENT_EXTRAS = ("consent_date", "consent_text", "consent_source")


def _check_contact(
    row: CsvRow,
    positions: list[int],
    partners: dict[str, int],
    named: int | None,
    parsers: tuple[Callable[[str], Any], ...],
) -> _Contact | str:
    """One row checked and normalised, or why it is refused. ``positions`` are the
    cells' indexes of the partner, the external id, :data:`CONTACT_FIELDS` and the
    consent extras (-1: no such column); ``parsers`` (:func:`_parsers`) check the
    fields' cells."""
    raw = row.cells
    cells = [raw[at].strip() if at >= 0 else None for at in positions]
    problems: list[str] = []
    partner_id = named
    if partner_id is None:
        partner_key = cells[0] or ""
        partner_id = partners.get(partner_key)
        if not partner_key:
            problems.append("partner is empty")
        elif partner_id is None:
            problems.append(f"unknown partner {partner_key!r}{_suggest(partner_key, partners)}")
    external_id = cells[1] or ""
    if not external_id:
        problems.append("external_id is empty")
    elif len(external_id) > _TEXT_LIMITS["external_id"]:
        problems.append(f"external_id is longer than {_TEXT_LIMITS['external_id']} characters")
    parsed: list[Any] = []
    for parser, text in zip(parsers, cells[2:8], strict=True):
        if text is None:
            parsed.append(None)  # no such column: the stored value stays
            continue
        try:
            parsed.append(parser(text))
        except values.BadValue as error:
            problems.append(str(error))
            parsed.append(None)
    consent_date, consent_text, consent_source = cells[8:]
    consent_at = None
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
        (consent_text or "")[:2000],
        (consent_source or "")[:120],
    )


def _column_of(csv_file: CsvStream, name: str) -> str | None:
    """The file's column that gives field ``name`` (consent: its own, else the opt-out
    column), or None."""
    if name in csv_file.columns:
        return name
    if name == "consent" and OPT_OUT in csv_file.columns:
        return OPT_OUT
    return None


def _parsers(default_locale: str, *, opt_out: bool = False) -> tuple[Callable[[str], Any], ...]:
    """For each of :data:`CONTACT_FIELDS`, what turns its (stripped) cell into the stored
    value, or raises BadValue; with ``opt_out``, the consent cell is an opt-out's."""

    def limited(name: str) -> Callable[[str], str]:
        limit = _TEXT_LIMITS[name]

        def parse(text: str) -> str:
            if len(text) > limit:
                raise values.BadValue(f"{name} is longer than {limit} characters")
            return text

        return parse

    def email(text: str) -> str:
        if not text:
            raise values.BadValue("email is empty")
        return values.fast_email(text)

    def consent(text: str) -> bool:
        found = values.CONSENT_VALUES.get(text.lower())
        if found is not None:
            return found
        if not text:
            raise values.BadValue("no consent given (the consent cell is empty: write yes or no)")
        return values.consent(text)

    def locale(text: str) -> str:
        return values.contact_locale(text) if text else default_locale

    def opted_out(text: str) -> bool:
        found = values.CONSENT_VALUES.get(text.lower())
        if found is not None:
            return not found
        if not text:
            raise values.BadValue(
                f"{OPT_OUT} is empty (write yes if the person opted out, else no)"
            )
        try:
            return not values.consent(text)
        except values.BadValue:
            raise values.BadValue(
                f"{OPT_OUT} {text!r} is not a yes or a no (such as true, false, 1, 0)"
            ) from None

    by_name = {"email": email, "consent": opted_out if opt_out else consent, "locale": locale}
    return tuple(by_name.get(name) or limited(name) for name in CONTACT_FIELDS)


def _instant(text: str) -> datetime:
    """A consent date or time as ISO 8601 (a date alone is midnight UTC)."""
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
    except ValueError:
        raise values.BadValue(f"consent_date {text!r} is not an ISO date (2026-03-31)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_INSERTED = ("partner_id", "external_id", *CONTACT_FIELDS, "created_at", "updated_at")
"""The columns of a new contact, in the order of :attr:`_Writes.inserts`' tuples."""
_CONSENT_COLUMNS = (
    "contact_id", "partner_id", "email", "email_hash", "granted", "occurred_at", "method",
    "text", "source", "recorded_at",
)  # fmt: skip


@dataclass
class _Writes:
    """What one chunk of rows writes."""

    inserts: list[tuple[Any, ...]] = field(default_factory=list)
    """New contacts' values, in :data:`_INSERTED` order."""
    new_rows: list[_Contact] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    consents: list[tuple[_Contact, int | None, bool]] = field(default_factory=list)
    """(row, contact id or None while not inserted, granted)."""


def _write_contacts(
    session: Session,
    tenant: Tenant,
    file_name: str,
    chunk: list[_Contact],
    known: _Known,
    report: ImportReport,
    now: datetime,
) -> None:
    """Insert a chunk's new contacts and update its changed ones, in one statement each;
    record consents given or withdrawn, suppress the withdrawn addresses."""
    defaults = ("", "", "", "", tenant.default_locale, False)
    writes = _Writes()
    for row in chunk:
        current = known.rows.get((row.partner_id, row.external_id))
        if current is None:
            stored = tuple(
                default if value is None else value
                for value, default in zip(row.fields, defaults, strict=True)
            )
            writes.inserts.append((row.partner_id, row.external_id, *stored, now, now))
            writes.new_rows.append(row)
            writes.consents.append((row, None, bool(stored[5])))
            continue
        contact_id, digest, consent, _address = current
        if known.digest(row) == digest:
            report.unchanged += 1
            continue
        changes = {
            name: value
            for name, value in zip(CONTACT_FIELDS, row.fields, strict=True)
            if value is not None
        }
        writes.updates.append({"id": contact_id, **changes, "updated_at": now})
        report.updated += 1
        if changes.get("consent", consent) != consent:
            writes.consents.append((row, contact_id, bool(changes["consent"])))
    report.created += _insert(session, writes, known, report)
    if writes.updates:
        session.execute(update(Contact), writes.updates)
    _consents(session, tenant, file_name, writes, report, now)


def _insert(session: Session, writes: _Writes, known: _Known, report: ImportReport) -> int:
    """Insert a chunk's new contacts in one driver call and read back their ids; if
    another import got there first (a unique key taken), row by row, rejecting the
    taken ones."""
    if not writes.inserts:
        return 0
    wanted = {(row.partner_id, row.external_id) for row in writes.new_rows}
    try:
        with session.begin_nested():
            insert_rows(session, Contact, _INSERTED, writes.inserts)
    except IntegrityError:
        for values_, row in zip(writes.inserts, writes.new_rows, strict=True):
            try:
                with session.begin_nested():
                    insert_rows(session, Contact, _INSERTED, [values_])
            except SQLAlchemyError as error:
                cause = getattr(error, "orig", None) or error
                report.rejected.append(Rejection(row.line, f"not saved: {cause}"))
                wanted.discard((row.partner_id, row.external_id))  # the other import's
    # The chunk's contacts are the ones above the floor with the keys it inserted (a key
    # is unique in the tenant: another import's new contact cannot have one of them).
    ids: dict[tuple[int, str], int] = {}
    columns = ("id", "partner_id", "external_id")
    for id_, partner_id, external_id in select_rows(
        session, Contact, columns, where=[("id", ">", known.floor)]
    ):
        if (partner_id, external_id) in wanted:
            ids[(partner_id, external_id)] = id_
    if ids:
        known.floor = max(known.floor, *ids.values())
    resolved: list[tuple[_Contact, int | None, bool]] = []
    for row, contact_id, granted in writes.consents:
        found = contact_id if contact_id is not None else ids.get((row.partner_id, row.external_id))
        if found is not None:
            resolved.append((row, found, granted))
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
    hasher = email_hasher(tenant.id or 0)
    records: list[tuple[Any, ...]] = []
    withdrawn: dict[tuple[int, str], _Contact] = {}
    prefix = f"{file_name}, line "
    for row, contact_id, granted in writes.consents:
        address = normalise_email(str(row.fields[0] or ""))
        source = (
            f"{prefix}{row.line}: {row.consent_source}"
            if row.consent_source
            else (f"{prefix}{row.line}")
        )
        records.append(
            (
                contact_id,
                row.partner_id,
                address,
                hasher(address),
                granted,
                row.consent_at or now,
                "import",
                row.consent_text,
                source[:300],
                now,
            )
        )
        if not granted and address:
            withdrawn[(row.partner_id, address)] = row
    insert_rows(session, ConsentRecord, _CONSENT_COLUMNS, records)
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
        query = select(PartnerSuppression.partner_id, PartnerSuppression.email).where(
            col(PartnerSuppression.email).in_(addresses)
        )
        taken = {(partner_id, email) for partner_id, email in session.execute(query)}
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
        table = table_of(model)
        written = session.connection().execute(
            table.insert().returning(table.c.id, sort_by_parameter_order=True),
            [{"tenant_id": tenant.id, **row} for row in rows],
        )
        ids = [row_id for (row_id,) in written.all()]
        _report_suppressed(session, tenant.id or 0, ids, rows)


def _report_suppressed(
    session: Session, tenant_id: int, ids: list[int], rows: list[dict[str, Any]]
) -> None:
    """Tell the tenant's webhooks (``contact.suppressed``), in this transaction: rows
    written in bulk are not seen by the flush keeper that reports a session's rows."""
    happenings = [
        suppressed_happening(
            row_id=row_id,
            email=row["email"],
            reason=row["reason"],
            source=row["source"],
            partner_id=row.get("partner_id"),
            created_at=row["created_at"],
        )
        for row_id, row in zip(ids, rows, strict=True)
    ]
    enqueue(session.connection(), tenant_id, happenings)


def _why(file_name: str, row: _Contact, now: datetime) -> dict[str, Any]:
    return {
        "reason": "withdrawn",
        "source": f"import {file_name}, line {row.line}"[:200],
        "created_at": now,
    }
