"""The words of the microsite's own parts (form labels, messages), per locale.

The campaign's templates carry the page's content; these are only the engine's form
and its messages. The English words are the source (:data:`SOURCE`); their translations
are gettext catalogues of the domain ``pages`` in this channel's ``locales`` folder
(``locales/<language>/LC_MESSAGES/pages.po``, read directly: nothing to compile), so a
German or French page shows no English label, error or button. A locale without a
catalogue falls back to English.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from partnercast.plugins.catalogues import gettext_in, language_of, languages_in

LOCALES = Path(__file__).resolve().parent / "locales"
DOMAIN = "pages"


def N_(message: str) -> str:  # gettext's marker: extracted, translated later
    return message


SOURCE: Mapping[str, str] = {
    "form_heading": N_("Talk to {partner}"),
    "email": N_("Work email"),
    "name": N_("Your name"),
    "company": N_("Company"),
    "message": N_("Message (optional)"),
    "consent": N_(
        "I agree that {partner} may contact me about this offer. "
        "I can withdraw my consent at any time."
    ),
    "honeypot": N_("Leave this field empty"),
    "submit": N_("Send"),
    "required": N_("Please fill in this field."),
    "too_long": N_("Please keep this under {max} characters."),
    "bad_email": N_("Please enter a valid email address: {reason}"),
    "consent_needed": N_("Please tick the box so that {partner} may contact you."),
    "fix_below": N_("Please check the fields marked below."),
    "expired": N_("This form has expired. Please send it again."),
    "invalid": N_("This form could not be checked. Please send it again."),
    "rate_limited": N_(
        "Too many attempts from your address. Please try again in {minutes} minutes."
    ),
    "thanks_title": N_("Thank you"),
    "thanks": N_("Thank you. {partner} will be in touch soon."),
    "not_found": N_("This page does not exist."),
}


@lru_cache(maxsize=1)
def languages() -> tuple[str, ...]:
    """The languages the microsite's words exist in (English first)."""
    return languages_in(LOCALES, DOMAIN)


@lru_cache(maxsize=32)
def _texts(language: str) -> Mapping[str, str]:
    _ = gettext_in(LOCALES, language, DOMAIN)
    return {key: _(english) for key, english in SOURCE.items()}


def texts(locale: str) -> Mapping[str, str]:
    """The words for ``locale`` (``de_AT`` reads ``de``), English when there are none."""
    return _texts(language_of(locale, languages()))
