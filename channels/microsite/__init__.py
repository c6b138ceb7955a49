"""The built-in microsite channel: a landing page per partner and campaign, with a lead form.

Written against the public plugin API only, exactly as a third-party channel is. Its
pages, lead form and static export are its own (routes.py, export.py, templates/),
mounted on the engine's web application through the ``register_routes`` hook and the
``partnercast microsite`` command through ``register_commands``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from partnercast.plugins import RegisterSettings, hookimpl

if TYPE_CHECKING:
    import typer

    from partnercast.plugins import Channel
    from partnercast.plugins.host import Host
    from partnercast.plugins.web import RegisterRouter


@hookimpl
def register_channels(register: Callable[[type[Channel]], None]) -> None:
    from partnercast.channels.microsite.channel import MicrositeChannel

    register(MicrositeChannel)


@hookimpl
def register_settings(register: RegisterSettings) -> None:
    """``[microsite]``: the lead form's rate limit and token lifetime (settings.py)."""
    from partnercast.channels.microsite.settings import NAMESPACE, MicrositeSettings

    register(NAMESPACE, MicrositeSettings)


@hookimpl
def register_routes(register: RegisterRouter, host: Host) -> None:
    """The landing pages and their lead forms, under ``/p/``."""
    from partnercast.channels.microsite.routes import router

    register(router(host))


@hookimpl
def register_commands(app: typer.Typer) -> None:
    """``partnercast microsite export``."""
    from partnercast.channels.microsite.cli import register

    register(app)
