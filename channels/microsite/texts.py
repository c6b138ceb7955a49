"""The words of the microsite's own parts (form labels, messages), per locale.

The campaign's templates carry the page's content; these are only the engine's form
and its messages. A locale without its own words falls back to English.
"""

from __future__ import annotations

from collections.abc import Mapping

TEXTS: Mapping[str, Mapping[str, str]] = {
    "en": {
        "form_heading": "Talk to {partner}",
        "email": "Work email",
        "name": "Your name",
        "company": "Company",
        "message": "Message (optional)",
        "consent": (
            "I agree that {partner} may contact me about this offer. "
            "I can withdraw my consent at any time."
        ),
        "honeypot": "Leave this field empty",
        "submit": "Send",
        "required": "Please fill in this field.",
        "too_long": "Please keep this under {max} characters.",
        "bad_email": "Please enter a valid email address: {reason}",
        "consent_needed": "Please tick the box so that {partner} may contact you.",
        "fix_below": "Please check the fields marked below.",
        "expired": "This form has expired. Please send it again.",
        "invalid": "This form could not be checked. Please send it again.",
        "rate_limited": (
            "Too many attempts from your address. Please try again in {minutes} minutes."
        ),
        "thanks_title": "Thank you",
        "thanks": "Thank you. {partner} will be in touch soon.",
        "not_found": "This page does not exist.",
    },
    "de": {
        "form_heading": "Sprechen Sie mit {partner}",
        "email": "Geschäftliche E-Mail",
        "name": "Ihr Name",
        "company": "Unternehmen",
        "message": "Nachricht (optional)",
        "consent": (
            "Ich bin einverstanden, dass {partner} mich zu diesem Angebot kontaktiert. "
            "Ich kann meine Einwilligung jederzeit widerrufen."
        ),
        "honeypot": "Dieses Feld bitte leer lassen",
        "submit": "Senden",
        "required": "Bitte füllen Sie dieses Feld aus.",
        "too_long": "Bitte höchstens {max} Zeichen.",
        "bad_email": "Bitte geben Sie eine gültige E-Mail-Adresse ein: {reason}",
        "consent_needed": "Bitte setzen Sie das Häkchen, damit {partner} Sie kontaktieren darf.",
        "fix_below": "Bitte prüfen Sie die markierten Felder.",
        "expired": "Dieses Formular ist abgelaufen. Bitte senden Sie es erneut.",
        "invalid": "Dieses Formular konnte nicht geprüft werden. Bitte senden Sie es erneut.",
        "rate_limited": (
            "Zu viele Versuche von Ihrer Adresse. "
            "Bitte versuchen Sie es in {minutes} Minuten erneut."
        ),
        "thanks_title": "Vielen Dank",
        "thanks": "Vielen Dank. {partner} meldet sich in Kürze bei Ihnen.",
        "not_found": "Diese Seite gibt es nicht.",
    },
}


def texts(locale: str) -> Mapping[str, str]:
    """The words for ``locale`` (``de_AT`` reads ``de``), English when there are none."""
    language = locale.replace("-", "_").split("_")[0]
    return TEXTS.get(locale) or TEXTS.get(language) or TEXTS["en"]
