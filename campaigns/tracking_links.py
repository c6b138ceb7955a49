"""Open and click tracking, prepared once per draft so that each recipient costs one token.

An email touch renders once per (touch, partner, locale) into a Draft whose contact values
are merge markers. :func:`track_draft` rewrites that draft once:

- every http(s) link of the HTML part (not ``mailto:``, not the unsubscribe link, not a
  link that carries a merge marker, not one already pointing at the tracker, not one
  marked ``data-pc-track="no"``) gets the campaign's UTM parameters and becomes
  ``<public_base_url>/t/c/<link token>/<recipient marker>``. The link token is signed once
  here (core/signing.py) and carries the tenant, partner, campaign key, touch key, the
  link's index and the target URL: nothing about a dispatch or a contact;
- a 1x1 transparent GIF ``<public_base_url>/t/o/<recipient marker>.gif`` goes before
  ``</body>``;
- the plain-text part keeps its links readable: they get the UTM parameters only, no
  redirect and no token, so a text-only reader is attributed by UTM on the landing page.

The recipient marker is filled per message with ``values["tracking"]``, ONE signed token
per recipient (:func:`recipient_token`: tenant, dispatch, contact), whatever the number
of links. The web side (web/tracking.py) checks both tokens and that they agree.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from partnercast.campaigns.spec import TouchSpec
from partnercast.core import signing
from partnercast.core.settings import Settings
from partnercast.core.signing import InvalidToken, RecipientToken, sign, unsign
from partnercast.plugins import Draft
from partnercast.plugins.personalization import marker
from partnercast.plugins.utm import tag_url

if TYPE_CHECKING:
    from partnercast.campaigns.rendering import PartnerView

LINK_PURPOSE = "track.link"
TRACKING_VALUE = "tracking"
"""The merge value (``Recipient.values``) that holds the recipient's token."""
CLICK_PATH = "/t/c/"
OPEN_PATH = "/t/o/"
TOKEN_DAYS = 730
"""Tracked links and pixels work for two years after the message was built."""
OPT_OUT = re.compile(r"""\s+data-pc-track\s*=\s*(["']?)no\1""", re.IGNORECASE)

_ANCHOR = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""(\bhref\s*=\s*)("([^"]*)"|'([^']*)')""", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_TEXT_URL = re.compile(r"https?://[^\s<>\"'\[\]()]+")
_TRAILING = ".,;:!?)]}»"


@dataclass(frozen=True)
class TrackedLink:
    """One link of a draft, as the tracker rewrote it."""

    index: int
    target: str  # the URL with UTM parameters, where the redirect goes


def utm_parameters(view: PartnerView, touch: TouchSpec) -> dict[str, str]:
    """The UTM values of an email touch for one partner."""
    return {
        "utm_source": view.partner.external_id,
        "utm_medium": "email",
        "utm_campaign": view.spec.key,
        "utm_content": touch.key,
    }


def _base(settings: Settings) -> str:
    return settings.public_base_url.rstrip("/")


def track_draft(
    settings: Settings, draft: Draft, view: PartnerView, touch: TouchSpec, *, now: datetime
) -> Draft:
    """Rewrite ``draft`` in place for tracking as its campaign asks; returns it. Its link
    tokens are stamped ``now``: they work for :data:`TOKEN_DAYS` from then.

    Called once per draft (campaigns/rendering.py DraftCache), never per recipient.
    """
    if "html" not in draft.parts:
        return draft
    options = view.spec.tracking
    opens = options.opens if options is not None else True
    clicks = options.clicks if options is not None else True
    base = _base(settings)
    recipient = marker(draft.nonce, TRACKING_VALUE)
    utm = utm_parameters(view, touch)
    links: list[TrackedLink] = []
    page = draft.parts["html"]
    if clicks:
        ids = [view.tenant.id or 0, view.partner.id or 0, view.spec.key, touch.key]
        signer = _LinkSigner(settings, ids, now)
        page = _rewrite_anchors(page, base, recipient, utm, signer, links)
        if "text" in draft.parts:
            draft.parts["text"] = _tag_text(draft.parts["text"], utm)
    if opens:
        page = _add_pixel(page, f"{base}{OPEN_PATH}{recipient}.gif")
    draft.parts["html"] = page
    draft.meta["tracking"] = {"opens": opens, "clicks": clicks, "links": len(links)}
    return draft


@dataclass(frozen=True)
class _LinkSigner:
    """Signs the link tokens of one draft: its ids, stamped with one instant."""

    settings: Settings
    ids: list[Any]
    now: datetime

    def token(self, index: int, target: str) -> str:
        return sign(self.settings, LINK_PURPOSE, [*self.ids, index, target], now=self.now)


def _rewrite_anchors(
    page: str,
    base: str,
    recipient: str,
    utm: dict[str, str],
    signer: _LinkSigner,
    links: list[TrackedLink],
) -> str:
    def anchor(match: re.Match[str]) -> str:
        tag = match.group(0)
        if OPT_OUT.search(tag):
            return OPT_OUT.sub("", tag)
        found = _HREF.search(tag)
        if found is None:
            return tag
        raw = found.group(3) if found.group(3) is not None else found.group(4)
        url = html.unescape(raw).strip()
        if not _trackable(url, base):
            return tag
        target = tag_url(url, utm)
        token = signer.token(len(links), target)
        links.append(TrackedLink(len(links), target))
        href = f'{found.group(1)}"{base}{CLICK_PATH}{token}/{recipient}"'
        return tag[: found.start()] + href + tag[found.end() :]

    return _ANCHOR.sub(anchor, page)


def _trackable(url: str, base: str) -> bool:
    lowered = url.lower()
    if not lowered.startswith(("http://", "https://")):
        return False  # mailto:, tel:, anchors, the unsubscribe marker
    if "⟦pc:" in url:
        return False  # a per-recipient URL cannot sit inside a once-per-draft token
    return not url.startswith(f"{base}{CLICK_PATH}")


def _add_pixel(page: str, src: str) -> str:
    pixel = (
        f'<img src="{src}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px" />'
    )
    ends = list(_BODY_END.finditer(page))
    if not ends:
        return page + pixel
    at = ends[-1].start()
    return page[:at] + pixel + page[at:]


def _tag_text(text: str, utm: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        url = found.rstrip(_TRAILING)
        return tag_url(url, utm) + found[len(url) :]

    return _TEXT_URL.sub(replace, text)


def draft_tracker(
    settings: Settings, now: datetime
) -> Callable[[Draft, PartnerView, TouchSpec], Draft]:
    """What DraftCache calls on each new draft of an audience channel in a run at ``now``."""

    def track(draft: Draft, view: PartnerView, touch: TouchSpec) -> Draft:
        return track_draft(settings, draft, view, touch, now=now)

    return track


# --- tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkToken:
    tenant_id: int
    partner_id: int
    campaign_key: str
    touch_key: str
    index: int
    target: str


def read_link_token(settings: Settings, token: str, *, now: datetime) -> LinkToken:
    """The ids and target of a link token followed at ``now``, or InvalidToken."""
    max_age = TOKEN_DAYS * 86400
    payload = unsign(settings, LINK_PURPOSE, token, max_age_seconds=max_age, now=now)
    try:
        tenant, partner, campaign, touch, index, target = payload
        found = LinkToken(int(tenant), int(partner), str(campaign), str(touch), int(index), target)
    except (TypeError, ValueError) as error:
        raise InvalidToken("this link is not valid") from error
    if not isinstance(target, str) or not target.lower().startswith(("http://", "https://")):
        raise InvalidToken("this link is not valid")
    return found


def read_recipient_token(settings: Settings, token: str, *, now: datetime) -> RecipientToken:
    """The ids in a recipient token of a tracked link or pixel met at ``now``, or
    InvalidToken."""
    max_age = TOKEN_DAYS * 86400
    return signing.read_recipient_token(settings, token, max_age_seconds=max_age, now=now)
