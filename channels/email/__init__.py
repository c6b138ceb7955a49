"""The built-in email channel: MJML rendered once per partner and locale, sent over SMTP.

Registered through the ``partnercast`` entry point, exactly as a third-party channel is.
"""

from __future__ import annotations

from collections.abc import Callable

from partnercast.plugins import Channel, hookimpl


@hookimpl
def register_channels(register: Callable[[type[Channel]], None]) -> None:
    from partnercast.channels.email.channel import EmailChannel

    register(EmailChannel)
