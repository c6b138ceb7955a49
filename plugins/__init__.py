"""The plugin framework: the hook marker, the Channel contract and its result types.

A plugin writes ``from partnercast.plugins import hookimpl`` and implements hooks named as
in ``partnercast.plugins.hookspecs``; a channel subclasses :class:`Channel`.
"""

from __future__ import annotations

import pluggy

from partnercast.plugins.channel import (
    AuthError,
    Channel,
    ChannelError,
    DeliveryJournal,
    Draft,
    PermanentError,
    PublishResult,
    Recipient,
    RecipientOutcome,
    RenderRequest,
    TransientError,
)

hookimpl = pluggy.HookimplMarker("partnercast")

__all__ = [
    "AuthError",
    "Channel",
    "ChannelError",
    "DeliveryJournal",
    "Draft",
    "PermanentError",
    "PublishResult",
    "Recipient",
    "RecipientOutcome",
    "RenderRequest",
    "TransientError",
    "hookimpl",
]
