"""partnercast-webhook: the plugin module the ``partnercast`` entry point names."""

from __future__ import annotations

from collections.abc import Callable

from partnercast.plugins import Channel, hookimpl


@hookimpl
def register_channels(register: Callable[[type[Channel]], None]) -> None:
    from partnercast_webhook.channel import WebhookChannel

    register(WebhookChannel)
