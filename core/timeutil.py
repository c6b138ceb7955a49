"""Time helpers. Every instant the engine handles is an aware datetime in UTC.

SQLModel stores datetimes as UTC and returns them aware, so comparisons never mix naive
and aware values.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    """Now, aware, in UTC: the wall clock, read only at the edges (a CLI command, the
    worker loop, an HTTP request), which then pass the instant down."""
    return datetime.now(UTC)


def advancing_from(start: datetime) -> Callable[[], datetime]:
    """A clock that reads ``start`` now and advances with real elapsed time from here.

    ``worker --once --now X`` checks its leases against it: the tick runs at X, and a
    lease taken at X still runs out after its seconds, whatever today's date is.
    """
    origin, began = as_utc(start), time.monotonic()
    return lambda: origin + timedelta(seconds=time.monotonic() - began)


def as_utc(moment: datetime) -> datetime:
    """Normalise a datetime to aware UTC; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
