"""The plugin framework's public API: the hook marker, the Channel contract and its types.

A plugin writes ``from partnercast.plugins import hookimpl`` and implements hooks named as
in ``partnercast.plugins.hookspecs``; a channel subclasses :class:`Channel`. Everything a
plugin needs is importable from here (and from ``partnercast.plugins.personalization``,
``partnercast.plugins.utm``, ``partnercast.plugins.catalogues`` and, in tests,
``partnercast.plugins.testing``); nothing else of partnercast is a plugin's to import.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import pluggy

from partnercast.plugins.hooktypes import (
    DispatchInfo,
    EventInfo,
    JobFunction,
    RegisterChannel,
    RegisterJob,
    RegisterSettings,
)

if TYPE_CHECKING:
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
    from partnercast.plugins.settings import PluginConfig

# The Channel contract and PluginConfig are pydantic-based: imported when a plugin first
# asks for one of them (PEP 562), so that loading the plugins to list their commands in
# `partnercast --help` does not import pydantic (0.08 s of the 0.3 s a command may cost).
_LAZY = {
    "AuthError": "channel",
    "Channel": "channel",
    "ChannelError": "channel",
    "DeliveryJournal": "channel",
    "Draft": "channel",
    "PermanentError": "channel",
    "PublishResult": "channel",
    "Recipient": "channel",
    "RecipientOutcome": "channel",
    "RenderRequest": "channel",
    "TemplateFinding": "channel",
    "TransientError": "channel",
    "PluginConfig": "settings",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
