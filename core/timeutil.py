"""Time helpers. Every instant the engine handles is an aware datetime in UTC.

SQLModel stores datetimes as UTC and returns them aware, so comparisons never mix naive
and aware values.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Normalise a datetime to aware UTC; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
