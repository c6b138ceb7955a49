"""Languages of the web pages: gettext catalogues per domain, and Babel's formatting.

English is the source language: a template says ``{{ _("Sign in") }}`` and a German
visitor reads the ``msgstr`` of ``web/locales/de/LC_MESSAGES/shell.po``. The ``.po`` files
are read directly (``babel.messages.pofile.read_po``), compiled in memory once per
(language, domain) and cached: there is no compile step and no ``.mo`` file to forget.

Domains, one per area and owner: ``shell`` (the base layout, sign-in pages and emails),
``portal``, ``dashboard``, ``pages`` (the engine's public pages: unsubscribe, the landing
pages' built-in texts). A domain's catalogue falls back to the ``shell`` catalogue, so a
page of any domain that extends ``shell/base.html`` shows the layout's texts translated.
A message missing from every catalogue is shown in English (the source), never as a key.

:func:`template_globals` gives a template ``_``, ``gettext``, ``ngettext`` and Babel's
``format_date``, ``format_datetime`` (``tz=`` the partner's zone), ``format_number`` and
``format_currency``, all in the visitor's locale. ``_("Hello %(name)s", name=...)``
formats after translating (as Jinja's newstyle gettext), so a translation can move the
name.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from datetime import date, datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers

from partnercast.plugins.catalogues import catalogue

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
SOURCE_LANGUAGE = "en"
LANGUAGES = ("en", "de", "fr")
"""The languages the web pages are translated to (English is the source)."""
DOMAINS = ("shell", "portal", "dashboard", "pages")
FALLBACK_DOMAIN = "shell"


def language_of(locale: str | None) -> str:
    """The catalogue language for a locale (``de_AT``, ``de-CH``, ``fr`` -> ``de``, ``de``,
    ``fr``); English for anything unknown or empty."""
    if not locale:
        return SOURCE_LANGUAGE
    language = locale.replace("-", "_").split("_")[0].strip().lower()
    return language if language in LANGUAGES else SOURCE_LANGUAGE


def babel_locale(locale: str | None) -> Locale:
    """The Babel locale for formatting (``de_CH`` keeps its region); English if unknown."""
    try:
        return Locale.parse((locale or SOURCE_LANGUAGE).replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return Locale.parse(SOURCE_LANGUAGE)


def _catalogue(language: str, domain: str) -> gettext.NullTranslations | None:
    """The compiled catalogue of one language and domain, or None if there is none."""
    return catalogue(LOCALES_DIR, language, domain)


@lru_cache(maxsize=64)
def translations(locale: str | None, domain: str = FALLBACK_DOMAIN) -> gettext.NullTranslations:
    """The translations of ``domain`` for ``locale`` (then the shell's, then English)."""
    language = language_of(locale)
    chain: list[gettext.NullTranslations] = []
    for name in dict.fromkeys((domain, FALLBACK_DOMAIN)):
        found = _catalogue(language, name)
        if found is not None:
            chain.append(_copy(found))
    result: gettext.NullTranslations = chain[0] if chain else gettext.NullTranslations()
    for fallback in chain[1:]:
        result.add_fallback(fallback)
    return result


def _copy(found: gettext.NullTranslations) -> gettext.NullTranslations:
    """A fresh translations object over the same compiled catalogue (add_fallback would
    otherwise chain cached objects together)."""
    clone = gettext.GNUTranslations.__new__(gettext.GNUTranslations)
    clone.__dict__.update(found.__dict__)
    clone._fallback = None  # type: ignore[attr-defined]
    return clone


def gettext_for(locale: str | None, domain: str = FALLBACK_DOMAIN) -> Callable[..., str]:
    """``_(message, **values)``: the translation, %-formatted with ``values`` if any."""
    catalogue = translations(locale, domain)

    def _(message: str, **values: Any) -> str:
        text = catalogue.gettext(message)
        return text % values if values else text

    return _


def ngettext_for(locale: str | None, domain: str = FALLBACK_DOMAIN) -> Callable[..., str]:
    """``ngettext(singular, plural, n, **values)``; ``%(num)s`` is ``n`` formatted."""
    catalogue = translations(locale, domain)
    where = babel_locale(locale)

    def ngettext(singular: str, plural: str, n: int, **values: Any) -> str:
        text = catalogue.ngettext(singular, plural, n)
        return text % {"num": babel_numbers.format_decimal(n, locale=where), **values}

    return ngettext


def template_globals(locale: str | None, domain: str = FALLBACK_DOMAIN) -> dict[str, Any]:
    """What a page template needs to speak the visitor's language: ``_``, ``gettext``,
    ``ngettext``, ``format_date``, ``format_datetime``, ``format_number``,
    ``format_currency``, and ``lang`` (the BCP 47 tag for ``<html lang>``)."""
    where = babel_locale(locale)
    _ = gettext_for(locale, domain)

    def format_date(value: date | datetime, format: str = "medium") -> str:
        return babel_dates.format_date(value, format=format, locale=where)

    def format_datetime(
        value: datetime, format: str = "medium", tz: tzinfo | str | None = None
    ) -> str:
        zone = babel_dates.get_timezone(tz) if isinstance(tz, str) else tz
        return babel_dates.format_datetime(value, format=format, tzinfo=zone, locale=where)

    def format_number(value: float | int | Decimal) -> str:
        return babel_numbers.format_decimal(value, locale=where)

    def format_currency(value: float | int | Decimal, currency: str = "EUR") -> str:
        return babel_numbers.format_currency(value, currency, locale=where)

    return {
        "_": _,
        "gettext": _,
        "ngettext": ngettext_for(locale, domain),
        "format_date": format_date,
        "format_datetime": format_datetime,
        "format_number": format_number,
        "format_currency": format_currency,
        "lang": language_tag(locale, domain),
    }


def language_tag(locale: str | None, domain: str = FALLBACK_DOMAIN) -> str:
    """The page's ``lang``: the catalogue language actually shown (so a screen reader
    reads German text as German, and an untranslated locale's English text as English)."""
    language = language_of(locale)
    if any(_catalogue(language, name) is not None for name in (domain, FALLBACK_DOMAIN)):
        return language
    return SOURCE_LANGUAGE


def best_locale(*candidates: str | None, accept_language: str = "") -> str:
    """The first candidate with a catalogue language (a contact's locale, then the
    partner's, then the tenant's...), else the browser's Accept-Language, else English."""
    for candidate in candidates:
        if candidate and language_of(candidate) != SOURCE_LANGUAGE:
            return candidate
        if candidate and candidate.lower().startswith(SOURCE_LANGUAGE):
            return candidate
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip()
        if tag and tag != "*" and (language_of(tag) != SOURCE_LANGUAGE or tag.startswith("en")):
            return tag.replace("-", "_")
    return SOURCE_LANGUAGE


def clear_cache() -> None:
    """Forget the compiled catalogues (a test that rewrites a .po file)."""
    catalogue.cache_clear()
    translations.cache_clear()


__all__ = [
    "DOMAINS",
    "LANGUAGES",
    "babel_locale",
    "best_locale",
    "gettext_for",
    "language_of",
    "ngettext_for",
    "template_globals",
    "translations",
]
