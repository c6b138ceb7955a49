"""The lead form: parsing, server-side validation, and its signed, expiring token.

The token binds a form to its page and expires, so a form cannot be replayed against
another partner's page, and a stale one is refused with a clear message. A page served by
the engine gets a short-lived token; an exported page (hosted by the partner, posting
across origins) gets a long-lived one under another purpose, since it cannot be refreshed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from email_validator import EmailNotValidError, validate_email

from partnercast.plugins.host import Host, TokenError

FIELDS = ("email", "name", "company", "message")
REQUIRED = ("email", "name", "company")
MAX_LENGTHS = {"email": 254, "name": 200, "company": 200, "message": 4000}
HONEYPOT = "website"
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
UTM_MAX = 200
PAGE_PURPOSE = "microsite-form"
EXPORT_PURPOSE = "microsite-export-form"
PAGE_TOKEN_SECONDS = 2 * 3600
EXPORT_TOKEN_SECONDS = 400 * 86400


@dataclass
class LeadForm:
    """What a visitor sent, as typed (kept to show the form again on an error)."""

    values: dict[str, str] = field(default_factory=lambda: dict.fromkeys(FIELDS, ""))
    consent: bool = False
    honeypot: str = ""
    token: str = ""
    utm: dict[str, str] = field(default_factory=dict)


class Fields(Protocol):
    """A multi-valued mapping of names to values: a request's query or its form."""

    def getlist(self, key: str) -> Sequence[object]: ...


def first(data: Fields, name: str) -> str:
    """The first value sent for ``name`` ('' when none, or when it is a file)."""
    values = data.getlist(name)
    return values[0] if values and isinstance(values[0], str) else ""


def parse_form(data: Fields) -> LeadForm:
    """The lead form's fields, as sent (an ``application/x-www-form-urlencoded`` body
    parsed by the framework)."""
    return LeadForm(
        values={name: first(data, name).strip() for name in FIELDS},
        consent=first(data, "consent") in ("yes", "on", "1", "true"),
        honeypot=first(data, HONEYPOT),
        token=first(data, "token"),
        utm=utm_values(data),
    )


def utm_values(data: Fields) -> dict[str, str]:
    """The UTM parameters among ``data`` (a request's query or form), trimmed."""
    found = {key: first(data, key).strip()[:UTM_MAX] for key in UTM_KEYS}
    return {key: value for key, value in found.items() if value}


def field_errors(form: LeadForm, words: Mapping[str, str], partner: str) -> dict[str, str]:
    """A message per field that is wrong (empty when the form may be accepted)."""
    errors: dict[str, str] = {}
    for name in FIELDS:
        value = form.values.get(name, "")
        if name in REQUIRED and not value:
            errors[name] = words["required"]
        elif len(value) > MAX_LENGTHS[name]:
            errors[name] = words["too_long"].format(max=MAX_LENGTHS[name])
    if "email" not in errors:
        try:
            checked = validate_email(form.values["email"], check_deliverability=False)
            form.values["email"] = checked.normalized
        except EmailNotValidError as error:
            errors["email"] = words["bad_email"].format(reason=str(error))
    if not form.consent:
        errors["consent"] = words["consent_needed"].format(partner=partner)
    return errors


def form_token(host: Host, page: str, *, now: datetime, exported: bool = False) -> str:
    """A signed token for the form of ``page`` (a page path), made at ``now``."""
    return host.sign(EXPORT_PURPOSE if exported else PAGE_PURPOSE, page, now=now)


class FormTokenError(Exception):
    """The form's token is missing, forged, for another page, or expired."""

    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def check_form_token(
    host: Host,
    token: str,
    page: str,
    *,
    now: datetime,
    page_seconds: int = PAGE_TOKEN_SECONDS,
) -> None:
    """Accept a token signed for ``page`` (served or exported) that has not expired at
    ``now``."""
    expired = False
    for purpose, max_age in ((PAGE_PURPOSE, page_seconds), (EXPORT_PURPOSE, EXPORT_TOKEN_SECONDS)):
        try:
            signed_page = host.unsign(purpose, token, max_age_seconds=max_age, now=now)
        except TokenError as error:
            expired = expired or error.expired
            continue
        if signed_page != page:
            raise FormTokenError(expired=False)
        return
    raise FormTokenError(expired=expired)
