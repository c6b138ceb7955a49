"""The plugin framework's public API: the hook marker, the Channel contract and its types.

A plugin writes ``from partnercast.plugins import hookimpl`` and implements hooks named as
in ``partnercast.plugins.hookspecs``; a channel subclasses :class:`Channel`. Everything a
plugin needs is importable from here (and from ``partnercast.plugins.personalization``,
``partnercast.plugins.utm``, ``partnercast.plugins.catalogues`` and, in tests,
``partnercast.plugins.testing``); nothing else of partnercast is a plugin's to import.
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
    TemplateFinding,
    TransientError,
)
from partnercast.plugins.hooktypes import (
    DispatchInfo,
    EventInfo,
    JobFunction,
    RegisterChannel,
    RegisterJob,
    RegisterSettings,
)
from partnercast.plugins.settings import PluginConfig

hookimpl = pluggy.HookimplMarker("partnercast")

__all__ = [
    "AuthError",
    "Channel",
    "ChannelError",
    "DeliveryJournal",
    "DispatchInfo",
    "Draft",
    "EventInfo",
    "JobFunction",
    "PermanentError",
    "PluginConfig",
    "PublishResult",
    "Recipient",
    "RecipientOutcome",
    "RegisterChannel",
    "RegisterJob",
    "RegisterSettings",
    "RenderRequest",
    "TemplateFinding",
    "TransientError",
    "hookimpl",
]
