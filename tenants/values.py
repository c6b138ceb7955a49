"""Checks and normal forms for the values partners, contacts and segments are made of.

Each function takes user text and returns the stored form, or raises :class:`BadValue`
with a short reason that names the value (``unknown locale 'xx_YY'``). The hard parts
are left to the libraries that know them: babel (CLDR locales), zoneinfo (IANA zones),
email-validator (addresses).
"""

from __future__ import annotations

import math
import re
import zoneinfo
from urllib.parse import urlsplit

from babel import Locale, UnknownLocaleError
from email_validator import EmailNotValidError, validate_email

TIERS = ("gold", "silver", "registered")
STATUSES = ("active", "paused", "offboarded")
CONSENT_VALUES = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}

# A language subtag (2-3 letters) and optional script/territory/variant subtags. Babel
# alone accepts odd inputs ('und' becomes en_US, 'de_CH.UTF-8' drops the encoding).
_LOCALE_SHAPE = re.compile(r"[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*")
_COLOR_SHAPE = re.compile(r"#[0-9A-Fa-f]{6}")


class BadValue(ValueError):
    """A value that cannot be stored; the message is the short reason shown to the user."""


def one_of(label: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` lower-cased, if it is one of ``allowed``."""
    normal = value.strip().lower()
    if normal not in allowed:
        raise BadValue(f"{label} {value!r} is not one of {', '.join(allowed)}")
    return normal


def locale_id(value: str) -> str:
    """The normal form of a CLDR locale id: ``de``, ``de_CH``, ``zh_Hant_TW``."""
    text = value.strip()
    if text.lower() != "und" and _LOCALE_SHAPE.fullmatch(text):
        try:
            locale = Locale.parse(text.replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            pass
        else:
            if locale.language == text[: len(locale.language)].lower():
                return str(locale)
    raise BadValue(f"unknown locale {value!r}")


def time_zone(value: str) -> str:
    """An IANA time zone name known to zoneinfo, as given (``Europe/Berlin``)."""
    text = value.strip()
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise BadValue(f"unknown time zone {value!r}") from None
    return text


def email(value: str, label: str = "email") -> str:
    """The normalised address (domain lower-cased, IDNA-checked); no DNS lookup."""
    text = value.strip()
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise BadValue(f"bad {label} {value!r}: {error}") from None


def score(value: str) -> float:
    """A number from 0 to 100."""
    try:
        number = float(value.strip())
    except ValueError:
        raise BadValue(f"score {value!r} is not a number") from None
    if math.isnan(number) or not 0 <= number <= 100:
        raise BadValue(f"score {value!r} is not between 0 and 100")
    return number


def color(value: str, label: str) -> str:
    """A ``#rrggbb`` colour, lower-cased."""
    text = value.strip()
    if not _COLOR_SHAPE.fullmatch(text):
        raise BadValue(f"{label} {value!r} is not a #rrggbb colour")
    return text.lower()


def web_url(value: str, label: str) -> str:
    """An absolute http(s) URL."""
    text = value.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadValue(f"{label} {value!r} is not an http(s) URL")
    return text


def consent(value: str) -> bool:
    """yes/no, true/false, 1/0 (any case)."""
    text = value.strip().lower()
    if text not in CONSENT_VALUES:
        raise BadValue(f"consent {value!r} is not one of {', '.join(CONSENT_VALUES)}")
    return CONSENT_VALUES[text]


def split_list(value: str) -> list[str]:
    """A ``;``-separated cell as a list: items stripped, empties and repeats dropped."""
    items: list[str] = []
    for item in value.split(";"):
        text = item.strip()
        if text and text not in items:
            items.append(text)
    return items


def slug(value: str) -> str:
    """A tenant slug: lower-case letters, digits and hyphens, at most 64 characters."""
    if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?", value):
        raise BadValue(
            f"slug {value!r} must be lower-case letters, digits and hyphens (at most 64)"
        )
    return value
