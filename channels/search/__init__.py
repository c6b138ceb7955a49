"""The built-in search channel: Google Ads responsive search ads, one campaign per partner.

A plugin on the public API only, exactly as a third-party channel is: the engine
registers it by name among its built-ins.
"""

from __future__ import annotations

from partnercast.plugins import RegisterChannel, hookimpl


@hookimpl
def register_channels(register: RegisterChannel) -> None:
    from partnercast.channels.search.channel import SearchChannel

    register(SearchChannel)
