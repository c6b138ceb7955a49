"""The built-in email channel: MJML rendered once per partner and locale, sent over SMTP.

A plugin on the public API only, exactly as a third-party channel is: the engine registers
it by name among its built-ins. Its SMTP settings are its own (``[smtp]``, see
:mod:`partnercast.channels.email.settings`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from partnercast.plugins import RegisterChannel, RegisterSettings, hookimpl

if TYPE_CHECKING:
    import typer

    from partnercast.channels.email.settings import SmtpSettings
    from partnercast.plugins.host import Host
    from partnercast.plugins.web import RegisterRouter


@hookimpl
def register_channels(register: RegisterChannel) -> None:
    from partnercast.channels.email.channel import EmailChannel

    register(EmailChannel)


@hookimpl
def register_settings(register: RegisterSettings) -> None:
    from partnercast.channels.email.settings import NAMESPACE, SmtpSettings

    register(NAMESPACE, SmtpSettings)


def __getattr__(name: str) -> object:
    """``SmtpSettings`` (pydantic) is imported when first asked for, not when the CLI
    loads this plugin to list its command."""
    if name == "SmtpSettings":
        from partnercast.channels.email.settings import SmtpSettings

        return SmtpSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- the mail-feedback endpoint and command (helper A) -----------------------------------


@hookimpl
def register_routes(register: RegisterRouter, host: Host) -> None:
    """``POST /feedback/<tenant>``: bounce and complaint reports (feedback_routes.py)."""
    from partnercast.channels.email.feedback_routes import router

    register(router(host))


@hookimpl
def register_commands(app: typer.Typer) -> None:
    """``partnercast feedback import`` (feedback_cli.py)."""
    from partnercast.channels.email.feedback_cli import register

    register(app)


__all__ = [
    "SmtpSettings",
    "register_channels",
    "register_commands",
    "register_routes",
    "register_settings",
]
