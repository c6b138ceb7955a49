"""Helpers for channels that speak HTTP: how long a refusal asks to wait, a JSON body.

Retry-After as seconds, in the header's two forms (RFC 9110 §10.2.3): ``Retry-After: 120``
(delay-seconds) or ``Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`` (an HTTP-date, converted
to the seconds from ``now`` until then, at least 0). Anything else is None: the engine's
own back-off decides. Put the result on ``TransientError(retry_after=...)``.

``now`` is never read from the wall clock here: :func:`from_headers` takes it from the
answer's own ``Date`` header (RFC 9110 §6.6.1), the server's clock, which is the one its
dates are on; an answer without a Date gives no instant, and an HTTP-date then counts as
unknown (None).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests


def retry_after_seconds(value: str | None, now: datetime | None) -> float | None:
    """Seconds to wait that a Retry-After header value asks for, or None."""
    text = (value or "").strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    moment = http_date(text)
    if moment is None or now is None:
        return None
    return max(0.0, (moment - now).total_seconds())


def server_time(headers: Mapping[str, str]) -> datetime | None:
    """The instant an answer was made, from its Date header; None without a valid one."""
    return http_date(headers.get("Date") or headers.get("date") or "")


def from_headers(headers: Mapping[str, str]) -> float | None:
    """The Retry-After of an answer, an HTTP-date counted from the answer's own Date."""
    value = headers.get("Retry-After") or headers.get("retry-after")
    return retry_after_seconds(value, server_time(headers))


def http_date(text: str) -> datetime | None:
    """An HTTP-date (or any RFC 5322 date) as an aware UTC datetime; None if it is not one."""
    try:
        moment = parsedate_to_datetime(text.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC by RFC 5322
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def json_object(response: requests.Response) -> dict[str, Any]:
    """The body as a JSON object; {} when it is empty, not JSON, or not an object
    (an error page from a proxy, a 204): callers then read the status code instead."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


__all__ = ["from_headers", "http_date", "json_object", "retry_after_seconds", "server_time"]
