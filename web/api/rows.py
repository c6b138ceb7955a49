"""Create or update one partner or one contact exactly as an import row would be.

The API writes through the same functions as ``partners import`` and ``contacts import``
(tenants/importing.py), so a value is checked, normalised and recorded (consent,
suppression of a withdrawal, an erased address refused) the one way: the request's fields
become a one-row file in a private temporary folder, with the canonical column names
(and an explicit mapping, so the tenant's remembered ``--map`` choices do not apply).
A refused row is a 422 naming its fields and reasons.
"""

from __future__ import annotations

import csv
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlmodel import Session

from partnercast.core.errors import UserError
from partnercast.tenants.csvfile import column_key
from partnercast.tenants.importing import ImportReport, import_contacts, import_partners
from partnercast.web.problems import Problem


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _write(folder: Path, fields: Mapping[str, Any]) -> tuple[Path, dict[str, str]]:
    path = folder / "request.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("sep=,\n")
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(list(fields))
        writer.writerow([_cell(value) for value in fields.values()])
    return path, {column_key(name): name for name in fields}


def _field(reason: str, fields: Mapping[str, Any]) -> str:
    """``body.<field>`` for the first field the reason names, else ``body``."""
    words = set(re.findall(r"[a-z_]+", reason))
    named = [name for name in fields if name in words]
    return f"body.{named[0]}" if named else "body"


def _outcome(report: ImportReport, noun: str, fields: Mapping[str, Any]) -> str:
    if report.rejected:
        reasons = "; ".join(rejection.reason for rejection in report.rejected)
        errors = [
            (_field(reason, fields), reason.strip())
            for reason in reasons.split("; ")
            if reason.strip()
        ]
        raise Problem(422, f"{noun}: {reasons}", kind="invalid", errors=errors)
    if report.created:
        return "created"
    return "updated" if report.updated else "unchanged"


def write_partner(session: Session, fields: Mapping[str, Any], *, now: Any) -> str:
    """Create or update the partner ``fields["external_id"]``; "created", "updated" or
    "unchanged"."""
    with tempfile.TemporaryDirectory(prefix="partnercast-api-") as folder:
        path, mapping = _write(Path(folder), fields)
        try:
            report = import_partners(session, path, now=now, mapping=mapping)
        except UserError as error:
            raise Problem(422, f"partner: {error.message}", kind="invalid") from None
    return _outcome(report, "partner", fields)


def write_contact(
    session: Session, partner_external_id: str, fields: Mapping[str, Any], *, now: Any
) -> str:
    """Create or update the contact ``fields["external_id"]`` of one partner."""
    with tempfile.TemporaryDirectory(prefix="partnercast-api-") as folder:
        path, mapping = _write(Path(folder), fields)
        try:
            report = import_contacts(session, path, partner_external_id, now=now, mapping=mapping)
        except UserError as error:
            raise Problem(422, f"contact: {error.message}", kind="invalid") from None
    return _outcome(report, "contact", fields)
