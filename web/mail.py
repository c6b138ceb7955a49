"""The engine's own messages to people (sign-in links, invitations), sent through the email
channel's SMTP server.

These are not campaign mail: one message to one person, composed here and handed to the
SMTP server the email channel is configured with (its ``smtp`` settings section: host,
port, security, login), so that an installation needs no second mail set-up. The web
layer may not import the channel (built-in channels are known by name only to the
composition root), so the section is read as the plugins' config holds it, by field name.

The sender is ``partnercast <no-reply@HOST>``, HOST being the public address's host name
(``localhost`` when that is an IP address or has no dot).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from partnercast.core.settings import Settings

log = logging.getLogger(__name__)
SMTP_SECTION = "smtp"


@dataclass(frozen=True)
class SmtpServer:
    """Where the engine's own messages go (the email channel's SMTP settings)."""

    host: str = "127.0.0.1"
    port: int = 25
    security: str = "none"
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    timeout_seconds: float = 30.0


def smtp_server(sections: Any) -> SmtpServer:
    """The SMTP server of the plugins' ``smtp`` section (``PluginConfig.sections``); the
    defaults when there is none."""
    section = sections.get(SMTP_SECTION) if hasattr(sections, "get") else None
    if section is None:
        return SmtpServer()
    password = getattr(section, "password", None)
    return SmtpServer(
        host=str(getattr(section, "host", "127.0.0.1")),
        port=int(getattr(section, "port", 25)),
        security=str(getattr(section, "security", "none")),
        username=getattr(section, "username", None),
        password=password.get_secret_value() if password is not None else None,
        ca_file=getattr(section, "ca_file", None),
        timeout_seconds=float(getattr(section, "timeout_seconds", 30.0)),
    )


def smtp_server_for(settings: Settings) -> SmtpServer:
    """The SMTP server the configured plugins say (for the CLI and the demo)."""
    from partnercast.plugins.manager import default_plugins

    return smtp_server(default_plugins().config(settings).sections)


def sender_address(settings: Settings) -> Address:
    host = urlsplit(settings.public_base_url).hostname or ""
    try:
        ip_address(host)
        host = ""
    except ValueError:
        pass
    return Address("partnercast", "no-reply", host if "." in host else "localhost")


def compose(
    settings: Settings,
    *,
    to: str,
    subject: str,
    text: str,
    html: str,
    now: datetime,
    language: str = "en",
    display_from: str = "",
) -> EmailMessage:
    """A message with a text and an HTML part, dated ``now``."""
    sender = sender_address(settings)
    if display_from:
        sender = Address(display_from, sender.username, sender.domain)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    message["Content-Language"] = language  # after the body: set_content drops Content-*
    return message


def send(server: SmtpServer, message: EmailMessage) -> None:
    """Send one message (smtplib errors and OSError propagate to the caller)."""
    context = ssl.create_default_context(cafile=server.ca_file)
    smtp: smtplib.SMTP
    if server.security == "ssl":
        smtp = smtplib.SMTP_SSL(
            server.host, server.port, timeout=server.timeout_seconds, context=context
        )
    else:
        smtp = smtplib.SMTP(server.host, server.port, timeout=server.timeout_seconds)
    with smtp:
        if server.security == "starttls":
            smtp.starttls(context=context)
        if server.username:
            smtp.login(server.username, server.password or "")
        smtp.send_message(message)


def send_quietly(server: SmtpServer, message: EmailMessage) -> bool:
    """Send, logging a failure instead of raising (a request already answered)."""
    try:
        send(server, message)
    except (OSError, smtplib.SMTPException) as error:
        log.warning("could not send %r to the SMTP server: %s", message["Subject"], error)
        return False
    return True


__all__ = ["SmtpServer", "compose", "send", "send_quietly", "smtp_server", "smtp_server_for"]
