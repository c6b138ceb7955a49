"""The built-in email channel: MJML rendered once per partner and locale, sent over SMTP.

A plugin on the public API only, exactly as a third-party channel is: the engine registers
it by name among its built-ins. Its SMTP settings are its own (``[smtp]``, see
:mod:`partnercast.channels.email.settings`).
"""

from __future__ import annotations

from partnercast.channels.email.settings import NAMESPACE, SmtpSettings
from partnercast.plugins import RegisterChannel, RegisterSettings, hookimpl


@hookimpl
def register_channels(register: RegisterChannel) -> None:
    from partnercast.channels.email.channel import EmailChannel

    register(EmailChannel)


@hookimpl
def register_settings(register: RegisterSettings) -> None:
    register(NAMESPACE, SmtpSettings)


__all__ = [
    "SmtpSettings",
    "register_channels",
    "register_settings",
]
