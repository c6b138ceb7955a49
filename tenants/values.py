"""Checks and normal forms for the values partners, contacts and segments are made of.

Each function takes user text and returns the stored form, or raises :class:`BadValue`
with a short reason that names the value (``unknown locale 'xx_YY'``). The hard parts
are left to the libraries that know them: babel (CLDR locales), zoneinfo (IANA zones),
email-validator (addresses).
"""

from __future__ import annotations

import math
import re
import unicodedata
import zoneinfo
from functools import lru_cache
from urllib.parse import urlsplit

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from email_validator import EmailNotValidError, validate_email

TIERS = ("gold", "silver", "registered")
STATUSES = ("active", "paused", "offboarded")
# How consent is written in the files partners keep, in their languages (compared
# case-insensitively, with '-', '_' and runs of spaces as one space).
CONSENT_YES = (
    "yes", "y", "true", "t", "1", "x", "on", "opted in", "opt in", "optin", "subscribed",
    "granted", "given", "consented", "agreed",
    "ja", "j", "oui", "si", "sí", "sì", "sim", "tak", "da", "evet",
)  # fmt: skip
CONSENT_NO = (
    "no", "n", "false", "f", "0", "off", "opted out", "opt out", "optout", "unsubscribed",
    "withdrawn", "revoked", "declined", "refused",
    "nein", "non", "nee", "nej", "nei", "nie", "não", "nao", "ne", "hayir", "hayır",
)  # fmt: skip
CONSENT_VALUES = {**dict.fromkeys(CONSENT_YES, True), **dict.fromkeys(CONSENT_NO, False)}

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
    """Granted (True) or withdrawn (False), from :data:`CONSENT_YES` / :data:`CONSENT_NO`:
    yes/no, Y/N, ja/nein, oui/non, "opted in" ... (any case)."""
    found = CONSENT_VALUES.get(value.strip().lower())
    if found is not None:
        return found
    text = re.sub(r"[\s_-]+", " ", value.strip().casefold())
    if text not in CONSENT_VALUES:
        raise BadValue(
            f"consent {value!r} is not a yes or a no (such as yes, Y, ja, oui, opted in; "
            "no, N, nein, non, opted out)"
        )
    return CONSENT_VALUES[text]


# Languages whose English and own names ("German", "Deutsch") a locale cell may hold.
_NAMED_LANGUAGES = (
    "ar", "bg", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "ga", "he", "hi", "hr",
    "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl", "nn", "no", "pl", "pt",
    "ro", "ru", "sk", "sl", "sr", "sv", "th", "tr", "uk", "vi", "zh",
)  # fmt: skip


@lru_cache(maxsize=1)
def _language_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for code in _NAMED_LANGUAGES:
        locale = Locale.parse(code)
        for name in (locale.get_display_name("en"), locale.get_display_name(code)):
            if name:
                names[_fold(name)] = code
    return names


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.strip().casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@lru_cache(maxsize=4096)
def contact_locale(value: str) -> str:
    """A contact's locale as partners write it, in its plainest CLDR form: a POSIX locale
    (``de_DE.UTF-8``, ``de_DE@euro``), a tag (``de-de``), a language's English or own name
    (``German``, ``Deutsch``). A territory that is the language's likely one is dropped
    (``de_DE`` -> ``de``, ``de_CH`` stays), so the contact reads the campaign's ``de``."""
    text = re.split(r"[.@]", value.strip(), maxsplit=1)[0]
    try:
        parsed = locale_id(text)
    except BadValue:
        # A name, looked up only now: the table loads the data of 40 locales (30 MB).
        named = _language_names().get(_fold(text))
        if named is None:
            raise
        return named
    locale = Locale.parse(parsed)
    if locale.territory and not locale.script and not locale.variant:
        likely = get_global("likely_subtags").get(locale.language, "")
        if likely.rsplit("_", 1)[-1] == locale.territory:
            return locale.language
    return parsed


_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_LOCAL_PART = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")


@lru_cache(maxsize=65536)
def _domain(domain: str) -> str:
    """A domain checked and normalised once by email-validator (BadValue if refused)."""
    return validate_email(f"a@{domain}", check_deliverability=False).ascii_domain


def fast_email(value: str, label: str = "email") -> str:
    """:func:`email`, a hundred times faster on the usual address: a plain ASCII local part
    is checked by its RFC 5322 dot-atom shape and the domain by email-validator once per
    domain; anything else (quoted, non-ASCII, odd) goes through :func:`email` itself."""
    text = value.strip()
    local, at, domain = text.rpartition("@")
    if at and len(local) <= 64 and len(text) <= 254 and _PLAIN_LOCAL_PART.fullmatch(local):
        try:
            normal_domain = _domain(domain)
        except EmailNotValidError:
            pass
        else:
            if normal_domain == domain.lower():
                return f"{local}@{normal_domain}"
    return email(value, label)


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
