"""The mail the dashboard sends: a reminder to a partner's point of contact, in the
partner's language (the invitation is web/invitations.py's).

The text comes from the ``dashboard`` catalogue in the partner's language; the message
goes out through the engine's mail path for its own messages (sign-in links,
invitations: :mod:`partnercast.web.mail`, to the email channel's SMTP server). A message
the server does not take is one clear line (:class:`MailUnavailable`), and nothing is
recorded.
"""

from __future__ import annotations

import smtplib
from datetime import datetime

from fastapi import Request
from markupsafe import escape

from partnercast.concierge.approval_queue import Waiting
from partnercast.core.errors import UserError
from partnercast.core.settings import Settings
from partnercast.web import mail
from partnercast.web.dashboard_access import Desk
from partnercast.web.i18n import gettext_for

DOMAIN = "dashboard"


class MailUnavailable(UserError):
    """The engine has no way to send its own mail here."""


def reminder_text(desk: Desk, waiting: Waiting, portal_url: str) -> tuple[str, str]:
    """(subject, body) of the reminder, in the partner's language."""
    _ = gettext_for(waiting.language, DOMAIN)
    subject = _("Reminder: %(campaign)s is waiting for you", campaign=waiting.campaign_name)
    lines = [
        _("Hello %(name)s,", name=waiting.contact_name or waiting.partner_name),
        "",
        _(
            "The campaign %(campaign)s from %(vendor)s is waiting for your review.",
            campaign=waiting.campaign_name,
            vendor=desk.tenant.name,
        ),
        _("Nothing goes out under your name until you approve it."),
        "",
        _("Review it here: %(url)s", url=portal_url),
        "",
        _("Your concierge, %(who)s", who=desk.visitor.user.name or desk.visitor.user.email),
    ]
    return subject, "\n".join(lines) + "\n"


def send_reminder(
    request: Request, settings: Settings, desk: Desk, waiting: Waiting, *, now: datetime
) -> None:
    """Email the reminder to the partner's point of contact through the engine's mail
    path (:mod:`partnercast.web.mail`); a refusal or an unreachable server is a
    :class:`MailUnavailable` saying so (and nothing is recorded)."""
    portal = f"{settings.public_base_url.rstrip('/')}/portal/{desk.tenant.slug}"
    subject, body = reminder_text(desk, waiting, portal)
    paragraphs = "".join(
        f"<p>{escape(part)}</p>" for part in body.split("\n\n") if part.strip()
    ).replace("\n", "<br>")
    html = (
        f'<!doctype html><html lang="{escape(waiting.language)}"><body>{paragraphs}</body></html>'
    )
    message = mail.compose(
        settings,
        to=waiting.contact_email,
        subject=subject,
        text=body,
        html=html,
        now=now,
        language=waiting.language,
        display_from=desk.tenant.name,
    )
    try:
        mail.send(mail.smtp_server(request.app.state.host.config.sections), message)
    except (OSError, smtplib.SMTPException) as error:
        raise MailUnavailable(f"the reminder could not be sent: {error}") from None
