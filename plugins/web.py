"""Helpers for a plugin's HTTP routes (mounted through the ``register_routes`` hook).

A plugin builds a FastAPI ``APIRouter`` and hands it to ``register``; the engine mounts
it on its one application. Routes are plain ``def`` functions when they touch the engine
(FastAPI runs them in its thread pool); a route that reads a body uses
:func:`limited_body` so that no request can make the engine hold more than it allows.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

RegisterRouter = Callable[[APIRouter], None]
"""The ``register`` callback of the ``register_routes`` hook."""

NOT_POST = ["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"]
"""Every other method, for the 405 route beside a POST-only endpoint."""


def request_now() -> datetime:
    """The request's instant: read once at the edge, passed down to everything it does.

    The engine's own routes and every plugin's routes depend on this one function, so a
    test (or an embedding application) that overrides it moves every route's clock.
    """
    return datetime.now(UTC)


Now = Annotated[datetime, Depends(request_now)]
"""A route's parameter ``now: Now`` is the request's instant (see :func:`request_now`)."""


def json_answer(status: int, payload: dict[str, Any]) -> Response:
    """A JSON answer of a webhook endpoint, never cached."""
    return Response(
        json.dumps(payload),
        status_code=status,
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


class BodyTooLarge(Exception):
    """The request's body is longer than the route accepts (answer 413)."""


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, at most ``limit`` bytes; :class:`BodyTooLarge` beyond (a declared
    Content-Length over the limit is refused before anything is read)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge(f"over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"over {limit} bytes")
    return bytes(body)


def limited_body(limit: int) -> Callable[[Request], Awaitable[bytes | None]]:
    """A FastAPI dependency: the body within ``limit`` bytes, or None when it is longer."""

    async def dependency(request: Request) -> bytes | None:
        try:
            return await read_body(request, limit)
        except BodyTooLarge:
            return None

    return dependency


def client_address(request: Request) -> str:
    """The client's address: the peer's, or the one a trusted proxy forwarded (the
    server's ``--proxy-headers``/``--forwarded-allow-ips`` decide whom to trust)."""
    return request.client.host if request.client else ""
