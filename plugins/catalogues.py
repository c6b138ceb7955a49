"""Message catalogues (gettext ``.po`` files) for a plugin's own texts and the engine's.

A folder laid out as ``<folder>/<language>/LC_MESSAGES/<domain>.po`` holds one catalogue
per language and domain; :func:`catalogue` reads one directly with Babel
(``babel.messages.pofile.read_po``), compiles it in memory and caches it: there is no
compile step and no ``.mo`` file. English is the source language (the ``msgid``), so an
English locale, a language without a file, or a message without a translation reads as
the ``msgid`` itself. Fuzzy entries are not used.

A plugin writes, for its own folder::

    from partnercast.plugins.catalogues import gettext_in
    _ = gettext_in(Path(__file__).parent / "locales", "de_AT", "pages")
    _("Send")  # "Senden"
"""

from __future__ import annotations

import gettext
from collections.abc import Callable
from functools import lru_cache
from io import BytesIO
from pathlib import Path

SOURCE_LANGUAGE = "en"


def language_of(locale: str | None, available: tuple[str, ...] = ()) -> str:
    """The language part of a locale (``de_AT``, ``de-CH`` -> ``de``); English when empty,
    or when ``available`` is given and the language is not one of them."""
    if not locale:
        return SOURCE_LANGUAGE
    language = locale.replace("-", "_").split("_")[0].strip().lower()
    if not language or (available and language not in available):
        return SOURCE_LANGUAGE
    return language


@lru_cache(maxsize=128)
def catalogue(folder: Path, language: str, domain: str) -> gettext.GNUTranslations | None:
    """The compiled catalogue of ``domain`` in ``language`` under ``folder``, or None."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    path = folder / language / "LC_MESSAGES" / f"{domain}.po"
    if language == SOURCE_LANGUAGE or not path.is_file():
        return None
    with path.open("rb") as handle:
        read = read_po(handle, locale=language, domain=domain)
    buffer = BytesIO()
    write_mo(buffer, read, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def languages_in(folder: Path, domain: str) -> tuple[str, ...]:
    """The languages with a catalogue of ``domain`` under ``folder``, and English."""
    found = sorted(path.parent.parent.name for path in folder.glob(f"*/LC_MESSAGES/{domain}.po"))
    return (SOURCE_LANGUAGE, *[name for name in found if name != SOURCE_LANGUAGE])


def gettext_in(folder: Path, locale: str | None, domain: str) -> Callable[[str], str]:
    """``_(message)`` in ``locale``'s language from ``folder``'s ``domain`` catalogue."""
    found = catalogue(folder, language_of(locale), domain)
    return found.gettext if found is not None else _identity


def _identity(message: str) -> str:
    return message


__all__ = ["catalogue", "gettext_in", "language_of", "languages_in"]
