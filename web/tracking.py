"""The link tracker and the open pixel: ``/t/c/<link>/<recipient>`` and ``/t/o/<recipient>.gif``.

The link token (signed once per draft, campaigns/tracking_links.py) names the tenant,
partner, campaign, touch, link index and target; the recipient token (one per message)
names the tenant, dispatch and contact. A hit is recorded only when both verify, name the
same tenant, and the dispatch (read in that tenant's scope) belongs to the link's partner
and touch. Anything else is the same neutral 404 page: never a redirect to a URL the
engine did not sign, and never a row written in another tenant.

A request checks the signatures, hands the hit to the process's
:class:`~partnercast.web.tracker_writer.HitWriter` and is answered once its batch has
committed (no thread is held while it waits, and no request writes alone). The tracker is
the engine's busiest address, so :class:`TrackerFront` answers it in front of the
application, as plain ASGI: FastAPI's routing, dependencies and middleware cost several
times the tracker's own work (measured: py-spy, 2026-12-06). The FastAPI routes below give
the same answers, for the application used without its front (a test client).

Every hit is an ``opened`` / ``clicked`` Event (all kept: totals). A hit is flagged as a
bot in ``data["bot"]`` (and never counted as unique) when it is a HEAD request, comes from
a known link scanner's user agent, or arrives within two seconds of the message being
sent (security gateways fetch links on delivery). The first unflagged hit per message
and kind is the unique one (funnel/engagement.py). The first genuine click of a message
with no recorded open also records that open (an ``opened`` event with ``data["implied"]
= "click"``): images are blocked by default in many mail clients, so a reader who clicked
certainly opened, and mature ESPs count it the same way. A later pixel hit is then no
longer unique, so the message is counted opened once.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from partnercast.campaigns.tracking_links import (
    CLICK_PATH,
    OPEN_PATH,
    LinkToken,
    read_link_token,
    read_recipient_token,
)
from partnercast.core.settings import Settings as EngineSettings
from partnercast.core.signing import InvalidToken, RecipientToken
from partnercast.web.context import Now, Settings, request_now
from partnercast.web.templating import render
from partnercast.web.tracker_writer import Hit, HitWriter, PendingHit

__all__ = ["PIXEL", "Hit", "HitWriter", "TrackerFront", "bot_reason", "not_found", "router"]

log = logging.getLogger(__name__)

TOO_SOON = timedelta(seconds=2)
SCANNERS = (
    "bot",
    "crawler",
    "spider",
    "scanner",
    "preview",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "barracuda",
    "mimecast",
    "proofpoint",
    "messagelabs",
    "safelinks",
)
"""User-agent fragments of link scanners and scripts (lower case); browsers have none."""

NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, private",
    "Pragma": "no-cache",
    "Expires": "0",
}
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
"""A transparent 1x1 GIF."""


def bot_reason(hit: Hit, sent_at: datetime | None) -> str:
    """Why ``hit`` looks like a machine rather than a reader ('' when it does not)."""
    if hit.method == "HEAD":
        return "head"
    agent = hit.user_agent.lower()
    if not agent:
        return "no user agent"
    for fragment in SCANNERS:
        if fragment in agent:
            return f"user agent {fragment}"
    if sent_at is not None:
        sent = sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=hit.at.tzinfo)
        if timedelta(0) <= hit.at - sent < TOO_SOON:
            return "within 2 s of sending"
    return ""


def writer_for(request: Request) -> HitWriter:
    """The application's one writer (:func:`partnercast.web.app.create_app` makes it)."""
    writer: HitWriter = request.app.state.tracker
    return writer


async def _recorded_by(
    writer: HitWriter, rcpt: RecipientToken, link: LinkToken | None, hit: Hit
) -> bool:
    """Whether the hit was ours, once its batch has committed (TrackerUnavailable when it
    could not be recorded: the reader is told to come back, nothing was counted)."""
    future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    try:
        writer.submit(PendingHit(rcpt, link, hit), future)
        return await future
    except RuntimeError as error:
        raise TrackerUnavailable() from error


class TrackerUnavailable(Exception):
    """A hit could not be recorded (the database is unreachable, the server stopping)."""


async def click_answer(
    writer: HitWriter, settings: EngineSettings, link: str, recipient: str, hit: Hit
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a click: the redirect once recorded, else the 404."""
    try:
        link_token = read_link_token(settings, link, now=hit.at)
        rcpt = read_recipient_token(settings, recipient, now=hit.at)
    except InvalidToken:
        return _not_found_page.answer
    if link_token.tenant_id != rcpt.tenant_id:
        return _not_found_page.answer
    if not await _recorded_by(writer, rcpt, link_token, hit):
        return _not_found_page.answer
    headers = {"Location": link_token.target, "Referrer-Policy": "no-referrer", **NO_CACHE}
    return 302, headers, b""


async def open_answer(
    writer: HitWriter, settings: EngineSettings, recipient: str, hit: Hit
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of a pixel hit: the GIF once recorded, else the 404."""
    try:
        rcpt = read_recipient_token(settings, recipient, now=hit.at)
    except InvalidToken:
        return _not_found_page.answer
    if not await _recorded_by(writer, rcpt, None, hit):
        return _not_found_page.answer
    return 200, _GIF_HEADERS, PIXEL


router = APIRouter(include_in_schema=False)


@router.api_route(CLICK_PATH + "{link}/{recipient}", methods=["GET", "HEAD"])
async def click(
    link: str, recipient: str, request: Request, settings: Settings, now: Now
) -> Response:
    """Record the click and redirect to the link's signed target."""
    hit = _hit("clicked", request, now)
    return await _answered(click_answer(writer_for(request), settings, link, recipient, hit))


@router.api_route(OPEN_PATH + "{recipient}.gif", methods=["GET", "HEAD"])
async def open_pixel(recipient: str, request: Request, settings: Settings, now: Now) -> Response:
    """Record the open and answer with a 1x1 GIF."""
    hit = _hit("opened", request, now)
    return await _answered(open_answer(writer_for(request), settings, recipient, hit))


async def _answered(answer: Awaitable[tuple[int, dict[str, str], bytes]]) -> Response:
    try:
        return _response(await answer)
    except TrackerUnavailable:
        return _response(_UNAVAILABLE)


def _response(answer: tuple[int, dict[str, str], bytes]) -> Response:
    """The answer as a Response (the FastAPI routes' way to give it)."""
    status, headers, body = answer
    return Response(body, status_code=status, headers=headers)


@router.api_route(
    "/t/{rest:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
)
async def anything_else(rest: str) -> Response:
    """The same neutral 404 for every other address and method under /t/."""
    return not_found()


def _hit(kind: str, request: Request, now: datetime) -> Hit:
    return Hit(kind, request.method, request.headers.get("user-agent", "")[:300], now)


_NOT_FOUND_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "X-Content-Type-Options": "nosniff",
    **NO_CACHE,
}


def not_found() -> Response:
    """The tracker's one answer to anything it does not recognise (a HEAD gets no body)."""
    return _response(_not_found_page.answer)


class _NotFound:
    """The 404 page, rendered at its first use (not when the module is imported)."""

    @functools.cached_property
    def answer(self) -> tuple[int, dict[str, str], bytes]:
        return 404, _NOT_FOUND_HEADERS, render("link_not_found.html").encode("utf-8")


_not_found_page = _NotFound()
_UNAVAILABLE = (503, {"Retry-After": "5", "Content-Type": "text/plain", **NO_CACHE}, b"later\n")
_GIF_HEADERS = {"Content-Type": "image/gif", **NO_CACHE}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class TrackerFront:
    """The application with the tracker's two addresses answered in front of it.

    A GET or HEAD of ``/t/o/<recipient>.gif`` or ``/t/c/<link>/<recipient>`` is answered
    here, exactly as the routes above answer it; every other request goes to ``app``.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            answer = None
            if path.startswith(OPEN_PATH) and path.endswith(".gif"):
                recipient = path[len(OPEN_PATH) : -len(".gif")]
                if recipient and "/" not in recipient:
                    answer = open_answer(
                        self.app.state.tracker,
                        self.app.state.settings,
                        recipient,
                        self._hit("opened", scope),
                    )
            elif path.startswith(CLICK_PATH):
                parts = path[len(CLICK_PATH) :].split("/")
                if len(parts) == 2 and all(parts):
                    answer = click_answer(
                        self.app.state.tracker,
                        self.app.state.settings,
                        parts[0],
                        parts[1],
                        self._hit("clicked", scope),
                    )
            if answer is not None:
                try:
                    status, headers, body = await answer
                except TrackerUnavailable:
                    status, headers, body = _UNAVAILABLE
                start = {"type": "http.response.start", "status": status}
                start["headers"] = _raw_headers(headers, body)
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _hit(self, kind: str, scope: Scope) -> Hit:
        agent = ""
        for name, value in scope["headers"]:
            if name == b"user-agent":
                agent = value.decode("latin-1")[:300]
                break
        now = self.app.dependency_overrides.get(request_now, request_now)()
        return Hit(kind, scope["method"], agent, now)


_ENCODED: dict[tuple[int, int], list[tuple[bytes, bytes]]] = {}


def _raw_headers(headers: dict[str, str], body: bytes) -> list[tuple[bytes, bytes]]:
    """The answer's headers as ASGI wants them, content-length first; those of the answers
    that never change (the GIF, the 404, the 503: module constants) encoded once."""
    key = (id(headers), len(body))
    known = _ENCODED.get(key)
    if known is None:
        known = [(b"content-length", str(len(body)).encode("ascii"))]
        known += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if any(headers is constant for constant in _CONSTANT_HEADERS):
            _ENCODED[key] = known
    return known


_CONSTANT_HEADERS = (_GIF_HEADERS, _NOT_FOUND_HEADERS, _UNAVAILABLE[1])
