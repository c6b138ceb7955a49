"""Totals kept in step with the event log, in the transaction that writes the events.

Some tables above core are running totals of what the engine records (the funnel's
rollups count every new Event and every change of a dispatch's tally of messages sent).
They must change in the very flush that writes what they count, so that a rolled-back
event never counts and a committed one counts exactly once. core owns the session and the
events, so it owns the point where such a *keeper* hooks in, and never imports one: the
layer that owns the totals registers its keeper with :func:`register`, and whatever
composes the engine (the CLI, the web application, the demo, the test suite, an
application that embeds the engine) asks it to, explicitly, before it records anything.

Forgetting that cannot go unnoticed: :func:`~partnercast.core.db.make_engine` arms a
check (:func:`arm`) that refuses, with :class:`KeepersMissing`, any flush that would write
an event or change a dispatch while no keeper is registered, instead of leaving the
totals silently behind. Nothing happens when this module is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from partnercast.core.models import Dispatch, Event

Keeper = Callable[[Session], None]
"""Called after each flush with the flushing session (its ``new`` and ``dirty`` objects are
the rows the flush wrote); it adds to its totals on ``session.connection()``."""

_keepers: dict[str, Keeper] = {}


class KeepersMissing(RuntimeError):
    """An event or a dispatch was about to be written with no keeper registered: the
    process did not compose the engine before using it (a bug, not a user's mistake)."""


def register(name: str, keeper: Keeper) -> None:
    """Run ``keeper`` after every flush from now on (once, however often it is registered)."""
    _keepers[name] = keeper
    _listen()


def unregister(name: str) -> None:
    """Stop running the keeper ``name`` (tests that prove the check)."""
    _keepers.pop(name, None)


def registered() -> tuple[str, ...]:
    """The names of the keepers registered in this process."""
    return tuple(_keepers)


def arm() -> None:
    """Refuse to write events or dispatches until a keeper is registered (idempotent)."""
    _listen()


def _listen() -> None:
    if not event.contains(Session, "before_flush", _refuse_unkept):
        event.listen(Session, "before_flush", _refuse_unkept)
        event.listen(Session, "after_flush", _keep)


def _refuse_unkept(session: Session, _context: Any, _instances: Any) -> None:
    if _keepers:
        return
    for row in chain(session.new, session.dirty):
        if isinstance(row, Event | Dispatch):
            raise KeepersMissing(
                f"a {type(row).__name__} was about to be written, but no keeper of the "
                "event totals is registered: compose the engine first (the funnel's "
                "partnercast.funnel.rollups.install(); the CLI, the web application and "
                "the demo do it)"
            )


def _keep(session: Session, _context: Any) -> None:
    for keeper in list(_keepers.values()):
        keeper(session)
