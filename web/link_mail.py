"""The sign-in and invitation emails, in the recipient's language (domain ``shell``)."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

from partnercast.core.settings import Settings
from partnercast.web import mail
from partnercast.web.i18n import gettext_for, language_tag
from partnercast.web.shell import environment


def sign_in_message(
    settings: Settings, *, to: str, name: str, locale: str, url: str, now: datetime
) -> EmailMessage:
    """The email carrying a sign-in link asked for on the sign-in page (15 minutes)."""
    _ = gettext_for(locale, "shell")
    subject = _("Your sign-in link for partnercast")
    greeting = _("Hello %(name)s,", name=name) if name else _("Hello,")
    lines = [
        _("Use this link to sign in to partnercast. It works once, within 15 minutes:"),
    ]
    after = [
        _("If you did not ask for this link, ignore this email: nobody can sign in without it.")
    ]
    return _message(settings, to, subject, greeting, lines, url, _("Sign in"), after, locale, now)


def invitation_message(
    settings: Settings,
    *,
    to: str,
    name: str,
    locale: str,
    url: str,
    vendor: str,
    partner: str,
    days: int,
    now: datetime,
) -> EmailMessage:
    """The invitation of a partner's point of contact to the portal (a link valid ``days``)."""
    _ = gettext_for(locale, "shell")
    subject = _("%(vendor)s invites you to its partner portal", vendor=vendor)
    greeting = _("Hello %(name)s,", name=name) if name else _("Hello,")
    lines = [
        _(
            "%(vendor)s invites %(partner)s to its partner portal: see the campaigns offered"
            " to you, customise them and approve what goes out under your name.",
            vendor=vendor,
            partner=partner,
        ),
        _("This link signs you in. It works once, within %(days)s days:", days=days),
    ]
    after = [
        _(
            "Later, sign in at %(address)s with this email address: we send you a new link"
            " each time.",
            address=settings.public_base_url.rstrip("/") + "/sign-in",
        )
    ]
    return _message(
        settings, to, subject, greeting, lines, url, _("Open the portal"), after, locale, now
    )


def _message(
    settings: Settings,
    to: str,
    subject: str,
    greeting: str,
    lines: list[str],
    url: str,
    button: str,
    after: list[str],
    locale: str,
    now: datetime,
) -> EmailMessage:
    text = "\n\n".join([greeting, *lines, url, *after]) + "\n"
    html = (
        environment()
        .get_template("shell/email_link.html")
        .render(
            lang=language_tag(locale),
            subject=subject,
            greeting=greeting,
            lines=lines,
            url=url,
            button=button,
            after=after,
        )
    )
    return mail.compose(
        settings,
        to=to,
        subject=subject,
        text=text,
        html=html,
        now=now,
        language=language_tag(locale),
    )


__all__ = ["invitation_message", "sign_in_message"]
