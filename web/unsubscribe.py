"""RFC 8058 one-click unsubscribe: ``/u/<token>``.

``POST /u/<token>`` (what mail clients send, with the body ``List-Unsubscribe=One-Click``)
suppresses the address at once; ``GET /u/<token>`` (a person clicking the link) shows a
page with a confirm button, because link scanners fetch URLs with GET and must not
unsubscribe anyone. The token is the message's recipient token (or, for messages sent
before it, the older signed list): :mod:`partnercast.tenants.suppressions`.

Both pages name the sender (the partner the message came from, and the vendor when an
unsubscribe stops every partner of the vendor) and speak the contact's language (their
locale, else the partner's first language), from the ``pages`` catalogues; a page for a
link that cannot be read speaks the browser's language.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request, Response
from sqlalchemy.engine import Engine as SqlEngine

from partnercast.core.settings import Settings as EngineSettings
from partnercast.core.signing import InvalidToken
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.models import Contact, Partner, Tenant
from partnercast.tenants.suppressions import _unsubscribe_ids, unsubscribe_by_token
from partnercast.web.context import Engine, Now, Settings
from partnercast.web.i18n import best_locale, gettext_for
from partnercast.web.templating import page

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)
OTHER_METHODS = ["PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]


def N_(message: str) -> str:  # gettext's marker: extracted, translated later
    return message


# core.signing's reasons, as the pages catalogue knows them.
REASONS = {
    "this link is not valid": N_("This link is not valid."),
    "this link has expired": N_("This link has expired."),
}


@dataclass(frozen=True)
class Sender:
    """Who a message's unsubscribe link is about: the partner, the vendor, the language."""

    partner: str
    vendor: str
    every_partner: bool  # the tenant's unsubscribe stops every partner of the vendor
    locale: str


def sender_of(
    engine: SqlEngine, settings: EngineSettings, token: str, now: datetime
) -> Sender | None:
    """The sender a valid unsubscribe token names (read only), or None."""
    try:
        tenant_id, contact_id, _dispatch = _unsubscribe_ids(settings, token, now)
    except (InvalidToken, ValueError, TypeError):
        return None
    with tenant_session(engine, tenant_id) as session:
        contact = session.get(Contact, contact_id)
        tenant = session.get(Tenant, tenant_id)
        if contact is None or tenant is None:
            return None
        partner = session.get(Partner, contact.partner_id)
        if partner is None:
            return None
        languages = [language for language in partner.languages or [] if language]
        locale = contact.locale or (languages[0] if languages else tenant.default_locale)
        return Sender(
            partner=partner.sender_name or partner.name,
            vendor=tenant.name,
            every_partner=tenant.unsubscribe_scope == "vendor",
            locale=locale or "en",
        )


def _browser(request: Request) -> str:
    return best_locale(accept_language=request.headers.get("accept-language", ""))


def _not_found(request: Request) -> Response:
    locale = _browser(request)
    _ = gettext_for(locale, "pages")
    return page(404, _("Not found"), heading=_("Not found"), locale=locale)


@router.get("/u/{token:path}")
def confirm(request: Request, token: str, engine: Engine, settings: Settings, now: Now) -> Response:
    """The confirm button: GET never unsubscribes (link scanners follow links)."""
    if not token:
        return _not_found(request)
    sender = sender_of(engine, settings, token, now)
    locale = sender.locale if sender else _browser(request)
    _ = gettext_for(locale, "pages")
    return page(
        200, _("Unsubscribe"), "unsubscribe.html", token=token, sender=sender, locale=locale
    )


@router.post("/u/{token:path}")
def unsubscribe(
    request: Request, token: str, engine: Engine, settings: Settings, now: Now
) -> Response:
    """One click, any body: the address is suppressed in the token's tenant."""
    if not token:
        return _not_found(request)
    sender = sender_of(engine, settings, token, now)
    locale = sender.locale if sender else _browser(request)
    _ = gettext_for(locale, "pages")
    try:
        result = unsubscribe_by_token(engine, settings, token, now=now)
    except InvalidToken as error:
        reason = _(REASONS.get(error.message, REASONS["this link is not valid"]))
        return page(400, _("Link not valid"), heading=reason, locale=locale)
    log.info("unsubscribed a contact (new=%s)", result.newly_suppressed)
    return page(
        200,
        _("Unsubscribed"),
        "unsubscribed.html",
        email=result.email,
        sender=sender,
        locale=locale,
    )


@router.api_route("/u/{token:path}", methods=OTHER_METHODS)
def not_allowed(request: Request, token: str) -> Response:
    if not token:
        return _not_found(request)
    _ = gettext_for(_browser(request), "pages")
    return page(405, _("Not allowed"), heading=_("Not allowed"), locale=_browser(request))
