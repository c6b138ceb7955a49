"""The types the hooks pass: what a plugin sees of the engine, and the ``register`` callbacks.

The lifecycle hooks get frozen snapshots (:class:`DispatchInfo`, :class:`EventInfo`), never
the engine's database rows: a plugin cannot change a dispatch behind the engine's back, and
the engine may change its tables without breaking plugins. The registry hooks get typed
callbacks (:class:`RegisterChannel`, :class:`RegisterJob`, :class:`RegisterSettings`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pydantic import BaseModel

    from partnercast.plugins.channel import Channel

JobFunction = Callable[[datetime], None]
"""A periodic job: called with the instant it runs for (never reads the clock itself)."""


@dataclass(frozen=True)
class DispatchInfo:
    """One dispatch (one touch published for one partner in one cycle), as plugins see it.

    ``state`` is ``pending`` in ``before_publish`` and ``done`` in ``after_publish``;
    ``sent_count`` counts the recipients an audience channel reached, ``external_ids`` the
    posts a channel made.
    """

    id: int
    tenant_id: int
    partner_id: int
    channel: str
    idempotency_key: str
    state: str
    scheduled_at: datetime
    attempts: int
    external_ids: tuple[str, ...] = ()
    sent_count: int = 0
    suppressed_count: int = 0
    failed_count: int = 0


@dataclass(frozen=True)
class EventInfo:
    """One event the engine recorded (``kind``: sent, bounced, clicked, dispatch.done...).

    The ids name the rows the event is about, when it is about them; ``data`` holds the
    event's details (a bounce's reason, a click's URL), read-only.
    """

    id: int
    tenant_id: int
    kind: str
    occurred_at: datetime
    source: str = "engine"
    value: float | None = None
    partner_id: int | None = None
    campaign_id: int | None = None
    enrollment_id: int | None = None
    dispatch_id: int | None = None
    contact_id: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


class RegisterChannel(Protocol):
    """``register(ChannelClass)``, the callback ``register_channels`` gets."""

    def __call__(self, channel_class: type[Channel], /) -> None: ...


class RegisterJob(Protocol):
    """``register(name, function, every=timedelta(...))``, the callback ``register_jobs`` gets."""

    def __call__(self, name: str, function: JobFunction, /, *, every: timedelta) -> None: ...


class RegisterSettings(Protocol):
    """``register(namespace, SettingsModel)``, the callback ``register_settings`` gets."""

    def __call__(self, namespace: str, model: type[BaseModel], /) -> None: ...


__all__ = [
    "DispatchInfo",
    "EventInfo",
    "JobFunction",
    "RegisterChannel",
    "RegisterJob",
    "RegisterSettings",
]
