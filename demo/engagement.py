"""The demo's readers and networks: opens, clicks, and social and search numbers.

Recipients of the first email open it (the tracking pixel) and follow its first tracked
link, over real HTTP GETs to the engine's own server, with the URLs taken from the
messages the demo's SMTP server received; how many do so depends on the partner (its
score in the partner file), so contenders and pretenders differ. Then the X, LinkedIn and
Google Ads stand-ins, playing the networks, are given numbers for every post and ad, and
``channel_metrics.fetch_tenant`` reads them through the channels' plugins.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes
from pathlib import Path

import requests
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from partnercast.campaigns.tracking_links import read_recipient_token
from partnercast.core.models import Dispatch
from partnercast.core.settings import Settings
from partnercast.core.signing import InvalidToken
from partnercast.core.tenancy import tenant_session
from partnercast.demo.search_standin import GoogleAdsStandIn
from partnercast.demo.social_standin import SocialStandIn
from partnercast.funnel.channel_metrics import FetchReport, fetch_tenant
from partnercast.plugins.manager import default_plugins
from partnercast.tenants.models import Partner

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
"""A mail client's user agent: the tracker flags scripts' and scanners' agents as bots."""
_PIXEL = re.compile(r'src="(https?://[^"]+/t/o/[^"]+\.gif)"')
_CLICK = re.compile(r'href="(https?://[^"]+/t/c/[^"]+)"')
_TOKEN = re.compile(r"/t/o/([^/]+)\.gif")


@dataclass(frozen=True)
class Reader:
    """One received message's tracking URLs, and whose message it is."""

    partner: str
    score: float
    to: str
    pixel: str
    link: str


@dataclass
class Engagement:
    """What the readers did, as the engine's server answered it."""

    messages: int = 0
    opens: int = 0
    clicks: int = 0
    partners: int = 0


def _html(raw: bytes) -> str:
    message = message_from_bytes(raw)
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


def readers(
    engine: Engine, settings: Settings, tenant_id: int, saved: list[Path], now: datetime
) -> list[Reader]:
    """The saved messages' pixel and first tracked link, with the partner that sent each."""
    found: list[tuple[int, str, str, str]] = []
    for path in saved:
        raw = path.read_bytes()
        html = _html(raw)
        pixel, link = _PIXEL.search(html), _CLICK.search(html)
        token = _TOKEN.search(pixel.group(1)) if pixel else None
        if not (pixel and link and token):
            continue
        try:
            dispatch_id = read_recipient_token(settings, token.group(1), now=now).dispatch_id
        except InvalidToken:
            continue
        to = str(message_from_bytes(raw)["To"] or "")
        found.append((dispatch_id, to, pixel.group(1), link.group(1).replace("&amp;", "&")))
    with tenant_session(engine, tenant_id) as session:
        ids = sorted({dispatch_id for dispatch_id, *_ in found})
        owners = {
            dispatch_id: (external_id, score)
            for dispatch_id, external_id, score in session.exec(
                select(Dispatch.id, Partner.external_id, Partner.score)
                .join(Partner, col(Partner.id) == Dispatch.partner_id)
                .where(col(Dispatch.id).in_(ids))
            ).all()
        }
    # Sorted, so that the seeded choices do not depend on the order messages arrived in.
    return sorted(
        (
            Reader(owners[d][0], float(owners[d][1] or 0), to, pixel, link)
            for d, to, pixel, link in found
            if d in owners
        ),
        key=lambda r: (r.partner, r.to),
    )


def open_and_click(found: list[Reader], *, seed: int = 11) -> Engagement:
    """Some readers load the pixel, fewer click; both rates grow with the partner's score.

    Some clickers never load the pixel (their client blocks images): the tracker counts
    their click as an open too.
    """
    rng = random.Random(seed)
    done = Engagement(messages=len(found))
    partners: set[str] = set()
    with requests.Session() as http:
        http.headers["User-Agent"] = BROWSER
        for reader in found:
            fit = reader.score / 100
            opens = rng.random() < 0.08 + 0.42 * fit**2
            clicks = rng.random() < (0.35 * fit if opens else 0.03 * fit)
            if opens:
                response = http.get(reader.pixel, timeout=10)
                done.opens += response.status_code == 200
            if clicks:
                response = http.get(reader.link, timeout=10, allow_redirects=False)
                done.clicks += response.status_code == 302
            if opens or clicks:
                partners.add(reader.partner)
    done.partners = len(partners)
    return done


def networks_report_numbers(
    engine: Engine,
    settings: Settings,
    tenant_id: int,
    social: SocialStandIn,
    ads: GoogleAdsStandIn,
    now: datetime,
    *,
    seed: int = 12,
) -> FetchReport:
    """The stand-ins get numbers for every post and ad, then the engine fetches them."""
    rng = random.Random(seed)
    with tenant_session(engine, tenant_id) as session:
        rows = session.exec(
            select(Dispatch.channel, Dispatch.external_ids, Partner.score)
            .join(Partner, col(Partner.id) == Dispatch.partner_id)
            .where(
                col(Dispatch.channel).in_(("x", "linkedin", "search")),
                Dispatch.state == "done",
            )
            .order_by(col(Dispatch.id))
        ).all()
    for channel, external_ids, score in rows:
        if not external_ids:
            continue
        reach = int(200 + 30 * float(score or 0) * rng.uniform(0.6, 1.4))
        if channel == "search":
            clicks = reach // rng.randint(25, 60)
            ads.set_metrics(
                external_ids[0],
                impressions=reach * 4,
                clicks=clicks,
                cost_micros=clicks * rng.randint(1_800_000, 4_200_000),
                conversions=round(clicks * rng.uniform(0.02, 0.08), 1),
            )
        else:
            social.set_metrics(
                external_ids[0],
                impression_count=reach,
                like_count=reach // rng.randint(20, 60),
                comment_count=rng.randint(0, 6),
                share_count=rng.randint(0, 4),
                retweet_count=rng.randint(0, 5),
                reply_count=rng.randint(0, 3),
                click_count=reach // rng.randint(40, 120),
            )
    return fetch_tenant(engine, settings, default_plugins(), tenant_id, now, days=60)
