"""Retry-After as seconds: the header's two forms (RFC 9110 §10.2.3).

``Retry-After: 120`` (delay-seconds) or ``Retry-After: Wed, 21 Oct 2026 07:28:00 GMT``
(an HTTP-date, converted to the seconds from ``now`` until then, at least 0). Anything
else is None: the engine's own back-off decides.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait that a Retry-After header value asks for, or None."""
    text = (value or "").strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC by RFC 5322
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())
