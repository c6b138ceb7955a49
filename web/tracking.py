"""The link tracker and the open pixel: ``/t/c/<link>/<recipient>`` and ``/t/o/<recipient>.gif``.

The link token (signed once per draft, campaigns/tracking_links.py) names the tenant,
partner, campaign, touch, link index and target; the recipient token (one per message)
names the tenant, dispatch and contact. A hit is recorded only when both verify, name the
same tenant, and the dispatch (read in that tenant's scope) belongs to the link's partner
and touch. Anything else is the same neutral 404 page: never a redirect to a URL the
engine did not sign, and never a row written in another tenant.

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

import base64
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine as SqlEngine
from sqlmodel import Session, select

from partnercast.campaigns.models import Enrollment, Touch
from partnercast.campaigns.tracking_links import (
    CLICK_PATH,
    OPEN_PATH,
    LinkToken,
    read_link_token,
    read_recipient_token,
)
from partnercast.core.models import Delivery, Dispatch, Event
from partnercast.core.signing import InvalidToken, RecipientToken
from partnercast.core.tenancy import tenant_session
from partnercast.funnel.engagement import Engagement
from partnercast.web.context import Engine, Now, Settings
from partnercast.web.templating import render

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


@dataclass(frozen=True)
class Hit:
    """One request to the tracker."""

    kind: str  # opened | clicked
    method: str
    user_agent: str
    at: datetime


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


@dataclass(frozen=True)
class _Place:
    partner_id: int
    campaign_id: int
    enrollment_id: int
    cycle_id: int
    touch_key: str
    sent_at: datetime | None


def _place(engine: SqlEngine, rcpt: RecipientToken, link: LinkToken | None) -> _Place | None:
    """Where a hit belongs, read in the recipient token's tenant only; None: not ours."""
    with tenant_session(engine, rcpt.tenant_id) as session:
        dispatch = session.get(Dispatch, rcpt.dispatch_id)
        if dispatch is None:
            return None
        touch = session.get(Touch, dispatch.touch_id)
        enrollment = session.get(Enrollment, dispatch.enrollment_id)
        delivery = session.exec(
            select(Delivery).where(
                Delivery.dispatch_id == rcpt.dispatch_id, Delivery.contact_id == rcpt.contact_id
            )
        ).first()
        if touch is None or enrollment is None or delivery is None:
            return None
        if link is not None and (
            link.partner_id != dispatch.partner_id or link.touch_key != touch.key
        ):
            return None
        return _Place(
            dispatch.partner_id,
            enrollment.campaign_id,
            enrollment.id or 0,
            dispatch.cycle_id or 0,
            touch.key,
            delivery.sent_at,
        )


def record_hit(
    engine: SqlEngine, rcpt: RecipientToken, place: _Place, hit: Hit, extra: dict[str, Any]
) -> bool:
    """Write the hit's event (and, for the first genuine one, its Engagement row).

    Returns whether the hit was unique. The write transaction starts with a write, so on
    SQLite it waits for the lock instead of failing on a stale read snapshot.
    """
    bot = bot_reason(hit, place.sent_at)
    unique = False
    with tenant_session(engine, rcpt.tenant_id) as session:
        if not bot:
            unique = first_engagement(session, rcpt, hit.kind, hit.at)
        data: dict[str, Any] = {
            "cycle_id": place.cycle_id,
            "touch": place.touch_key,
            "unique": unique,
            **extra,
        }
        if bot:
            data["bot"] = bot
        session.add(_event(rcpt, place, hit.kind, hit.at, data))
        if unique and hit.kind == "clicked" and first_engagement(session, rcpt, "opened", hit.at):
            # A reader clicked a message with no recorded open: the pixel was blocked (most
            # clients block images by default), so the click implies the open, as ESPs count.
            implied = {"cycle_id": place.cycle_id, "touch": place.touch_key, "unique": True}
            session.add(_event(rcpt, place, "opened", hit.at, implied | {"implied": "click"}))
    return unique


def first_engagement(session: Session, rcpt: RecipientToken, kind: str, at: datetime) -> bool:
    """Insert the message's ``kind`` Engagement row unless it exists; whether it was new.

    ON CONFLICT DO NOTHING on the unique (dispatch, contact, kind): exact under concurrent
    hits on SQLite and PostgreSQL alike.
    """
    table = Engagement.__table__  # type: ignore[attr-defined]  # not in SQLModel stubs
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(table)
        .values(
            tenant_id=rcpt.tenant_id,
            dispatch_id=rcpt.dispatch_id,
            contact_id=rcpt.contact_id,
            kind=kind,
            first_at=at,
        )
        .on_conflict_do_nothing(index_elements=["dispatch_id", "contact_id", "kind"])
        .returning(table.c.id)
    )
    return session.connection().execute(statement).first() is not None


def _event(
    rcpt: RecipientToken, place: _Place, kind: str, at: datetime, data: dict[str, Any]
) -> Event:
    return Event(
        kind=kind,
        occurred_at=at,
        partner_id=place.partner_id,
        campaign_id=place.campaign_id,
        enrollment_id=place.enrollment_id,
        dispatch_id=rcpt.dispatch_id,
        contact_id=rcpt.contact_id,
        source="email-tracking",
        data=data,
    )


router = APIRouter(include_in_schema=False)


@router.api_route(CLICK_PATH + "{link}/{recipient}", methods=["GET", "HEAD"])
def click(
    link: str, recipient: str, request: Request, engine: Engine, settings: Settings, now: Now
) -> Response:
    """Record the click and redirect to the link's signed target."""
    hit = _hit("clicked", request, now)
    try:
        link_token = read_link_token(settings, link, now=now)
        rcpt = read_recipient_token(settings, recipient, now=now)
        if link_token.tenant_id != rcpt.tenant_id:
            raise InvalidToken("this link is not valid")
        place = _place(engine, rcpt, link_token)
        if place is None:
            raise InvalidToken("this link is not valid")
    except InvalidToken:
        return not_found()
    record_hit(engine, rcpt, place, hit, {"link": link_token.index, "url": link_token.target[:500]})
    headers = {"Location": link_token.target, "Referrer-Policy": "no-referrer", **NO_CACHE}
    return Response(status_code=302, headers=headers)


@router.api_route(OPEN_PATH + "{recipient}.gif", methods=["GET", "HEAD"])
def open_pixel(
    recipient: str, request: Request, engine: Engine, settings: Settings, now: Now
) -> Response:
    """Record the open and answer with a 1x1 GIF."""
    hit = _hit("opened", request, now)
    try:
        rcpt = read_recipient_token(settings, recipient, now=now)
        place = _place(engine, rcpt, None)
        if place is None:
            raise InvalidToken("this link is not valid")
    except InvalidToken:
        return not_found()
    record_hit(engine, rcpt, place, hit, {})
    return Response(PIXEL, headers={"Content-Type": "image/gif", **NO_CACHE})


@router.api_route(
    "/t/{rest:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
)
def anything_else(rest: str) -> Response:
    """The same neutral 404 for every other address and method under /t/."""
    return not_found()


def _hit(kind: str, request: Request, now: datetime) -> Hit:
    return Hit(kind, request.method, request.headers.get("user-agent", "")[:300], now)


def not_found() -> Response:
    """The tracker's one answer to anything it does not recognise (a HEAD gets no body)."""
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "X-Content-Type-Options": "nosniff",
        **NO_CACHE,
    }
    return Response(render("link_not_found.html"), status_code=404, headers=headers)
