"""The failures the conformance kit makes a channel's network produce.

Apart from :mod:`partnercast.plugins.testing` so that the HTTP transport
(:mod:`partnercast.plugins.testing_http`, loaded only when a test asks for it) and the kit
both read them without importing each other. Re-exported by ``partnercast.plugins.testing``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Expected = Literal["permanent", "transient", "auth"]


@dataclass(frozen=True)
class Failure:
    """One failure the network can produce, and what the channel must make of it.

    ``kind`` is ``"status"`` (the server answers ``status`` with ``headers``),
    ``"timeout"`` or ``"dropped"`` (the connection breaks). ``retry_after`` is the value
    the channel must put on its TransientError (from a Retry-After header, say).
    """

    id: str
    kind: Literal["status", "timeout", "dropped"]
    expect: Expected
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_after: float | None = None


HTTP_FAILURES: tuple[Failure, ...] = (
    Failure("http-400", "status", "permanent", 400),
    Failure("http-401", "status", "auth", 401),
    Failure("http-403", "status", "permanent", 403),
    Failure("http-404", "status", "permanent", 404),
    Failure("http-422", "status", "permanent", 422),
    Failure("http-429-retry-after", "status", "transient", 429, {"Retry-After": "30"}, 30.0),
    Failure("http-500", "status", "transient", 500),
    Failure("http-502", "status", "transient", 502),
    Failure("http-503", "status", "transient", 503),
    Failure("timeout", "timeout", "transient"),
    Failure("connection-dropped", "dropped", "transient"),
)


__all__ = ["HTTP_FAILURES", "Expected", "Failure"]
