"""The built-in microsite channel: a landing page per partner and campaign, with a lead form.

Registered through the ``partnercast`` entry point, exactly as a third-party channel is.
The engine's web layer (``partnercast serve``) serves the pages; this package only renders
them and names their stable address.
"""

from __future__ import annotations

from collections.abc import Callable

from partnercast.plugins import Channel, hookimpl


@hookimpl
def register_channels(register: Callable[[type[Channel]], None]) -> None:
    from partnercast.channels.microsite.channel import MicrositeChannel

    register(MicrositeChannel)
