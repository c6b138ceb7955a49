"""Helpers for a plugin's commands (added through the ``register_commands`` hook).

A command whose outcome depends on the instant takes ``now: NowOption = None`` and reads
the clock once with :func:`parse_now`, as the engine's own commands do: ``--now`` then
means that instant for everything the command does, and a test can pin it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

NowOption = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="The instant the command acts at (ISO, UTC when no offset); default now.",
        show_default=False,
    ),
]
"""--now: the one instant everything a command does happens at (time is a parameter)."""


def parse_now(value: str | None) -> datetime:
    """The instant a command acts at: ``value`` (an ISO date or datetime, UTC when it has
    no offset), or the wall clock when it is not given; a value that is not a date is a
    usage error (one line, no traceback)."""
    if not value:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO date or datetime (e.g. 2026-12-01T09:00)",
            param_hint="'--now'",
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
