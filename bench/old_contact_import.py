"""The contact import as it was before it went set-based (commit 8cfabf2), kept to be timed.

bench/contact_import.py runs it beside today's import, in the same run, on the same file:
a strict UTF-8 csv read into a tuple of dicts, every address through email-validator,
then one ORM object and one SAVEPOINT per row. Only the contact path is kept; it writes
the same table through the same models, so both paths are measured on equal terms.

    python bench/old_contact_import.py FILE PARTNER TENANT   (PARTNERCAST_DATABASE_URL set)
"""

from __future__ import annotations

import csv
import io
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from partnercast.core.timeutil import utcnow
from partnercast.tenants import values
from partnercast.tenants.models import Contact, Partner
from partnercast.tenants.scope import tenant_scope

REQUIRED = ("external_id", "email", "consent")
OPTIONAL = ("first_name", "last_name", "company", "locale")
LIMITS = {"external_id": 100, "first_name": 100, "last_name": 100, "company": 200}
OLD_CONSENT = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}


def read_rows(path: Path) -> list[tuple[int, dict[str, str] | str]]:
    """The old csvfile.read_csv: strict UTF-8, every row a dict (or why not)."""
    text = path.read_bytes().decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    columns = tuple(name.strip().lower() for name in next(reader))
    rows: list[tuple[int, dict[str, str] | str]] = []
    previous_end = reader.line_num
    for fields in reader:
        line = previous_end + 1
        previous_end = reader.line_num
        if not fields or all(not field.strip() for field in fields):
            continue
        if len(fields) != len(columns):
            rows.append((line, f"has {len(fields)} fields, the header has {len(columns)}"))
            continue
        rows.append((line, dict(zip(columns, fields, strict=True))))
    return rows


def parse(row: dict[str, str], partner_id: int) -> dict[str, Any] | str:
    problems: list[str] = []
    parsed: dict[str, Any] = {"partner_id": partner_id}
    for column, cell in row.items():
        try:
            if column == "consent":
                if not cell.strip() or not OLD_CONSENT.get(cell.strip().lower()):
                    problems.append("no consent")
                parsed["consent"] = True
            elif column == "locale":
                parsed["locale"] = values.locale_id(cell) if cell.strip() else "en"
            elif column == "email":
                parsed["email"] = values.email(cell)
            else:
                text = cell.strip()
                if column == "external_id" and not text:
                    problems.append("external_id is empty")
                if len(text) > LIMITS[column]:
                    problems.append(f"{column} is longer than {LIMITS[column]} characters")
                parsed[column] = text
        except values.BadValue as error:
            problems.append(str(error))
    parsed.setdefault("locale", "en")
    return "; ".join(problems) if problems else parsed


def write(
    session: Session, existing: Contact | None, parsed: dict[str, Any], now: datetime
) -> tuple[str, Contact] | str:
    """One row in its own SAVEPOINT, as the old _write_row did."""
    try:
        with session.begin_nested():
            if existing is None:
                contact = Contact(**parsed, created_at=now, updated_at=now)
                session.add(contact)
                outcome = "created"
            else:
                changes = {k: v for k, v in parsed.items() if getattr(existing, k) != v}
                contact, outcome = existing, "unchanged"
                if changes:
                    for name, value in changes.items():
                        setattr(existing, name, value)
                    existing.updated_at, outcome = now, "updated"
            session.flush()
    except SQLAlchemyError as error:
        return f"not saved: {error}"
    return outcome, contact


def import_contacts(
    session: Session, path: Path, partner_key: str, now: datetime
) -> dict[str, int]:
    partner = session.exec(select(Partner).where(Partner.external_id == partner_key)).one()
    assert partner.id is not None
    existing = {
        c.external_id: c
        for c in session.exec(select(Contact).where(Contact.partner_id == partner.id)).all()
    }
    counts = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    seen: set[str] = set()
    for _line, row in read_rows(path):
        parsed = row if isinstance(row, str) else parse(row, partner.id)
        if isinstance(parsed, str) or parsed["external_id"] in seen:
            counts["rejected"] += 1
            continue
        seen.add(parsed["external_id"])
        result = write(session, existing.get(parsed["external_id"]), parsed, now)
        if isinstance(result, str):
            counts["rejected"] += 1
            continue
        outcome, contact = result
        existing[contact.external_id] = contact
        counts[outcome] += 1
    return counts


def main(argv: list[str]) -> None:
    import partnercast.cli  # noqa: F401  (the same modules loaded as the CLI loads)

    file, partner, tenant = argv
    with tenant_scope(tenant) as session:
        counts = import_contacts(session, Path(file), partner, utcnow())
    print(
        f"contacts: {counts['created']} created, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {counts['rejected']} rejected"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
