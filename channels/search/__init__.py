"""The built-in search channel: Google Ads responsive search ads, one campaign per partner.

Registered through the ``partnercast`` entry point, exactly as a third-party channel is,
and written only against ``partnercast.plugins``.
"""

from __future__ import annotations

from collections.abc import Callable

from partnercast.plugins import Channel, hookimpl


@hookimpl
def register_channels(register: Callable[[type[Channel]], None]) -> None:
    from partnercast.channels.search.channel import SearchChannel

    register(SearchChannel)
