"""The microsite's HTTP endpoints, under ``/p/<tenant>/<partner>/<campaign>/``.

``GET  .../``          the landing page (records a ``visit``); ``?lang=de`` picks a locale
``POST .../lead``      the lead form: rate limit, token, honeypot, validation, then a Lead
                       and a ``form`` event, and a redirect to the thank-you page
``GET  .../thanks``    the thank-you page
``GET  .../site.css``  the page's stylesheet (the partner's colours)
``GET  .../pixel.gif`` counts a visit of an exported copy of the page

Anything not live (unknown tenant, partner or campaign, not approved as is, another
tenant's partner) is the same 404. Mounted through the ``register_routes`` hook; the
engine is reached only through the plugin host.
"""

# No `from __future__ import annotations`: FastAPI reads the route functions' annotations,
# and the dependency aliases below are local to router().
import base64
import logging
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from markupsafe import Markup
from starlette.datastructures import FormData

from partnercast.channels.microsite import leadform, pages, security
from partnercast.channels.microsite.channel import FORM_SLOT
from partnercast.channels.microsite.ratelimit import RateLimiter
from partnercast.channels.microsite.settings import NAMESPACE, MicrositeSettings
from partnercast.channels.microsite.texts import texts
from partnercast.channels.microsite.urls import PREFIX, page_path
from partnercast.plugins.host import Host, LivePage, NewLead
from partnercast.plugins.web import Now, client_address

log = logging.getLogger(__name__)

CHANNEL = "microsite"
MAX_BODY_BYTES = 32_000
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
PAGE = PREFIX + "{tenant}/{partner}/{campaign}/"
SUBPAGES = ("", "lead", "thanks", "site.css", "pixel.gif")


def path_of(page: LivePage) -> str:
    return page_path(page.tenant_slug, page.partner_key, page.campaign_key)


class Microsite:
    """Serves landing pages and takes their lead forms, for one application's host."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.options = host.config.section(NAMESPACE, MicrositeSettings)
        self.limiter = RateLimiter(self.options.rate_limit, self.options.rate_window_seconds)

    def live_page(self, tenant: str, partner: str, campaign: str) -> LivePage | None:
        return self.host.find_live_page(CHANNEL, tenant, partner, campaign)

    def page(
        self,
        status: int,
        page: LivePage,
        locale: str,
        form: leadform.LeadForm,
        now: datetime,
        errors: Mapping[str, str] | None = None,
        notice: str = "",
    ) -> Response:
        """The landing page with its lead form (as the visitor left it, on an error)."""
        rendered = self.host.render_live_page(page, locale)
        before, slot, after = rendered.html.partition(FORM_SLOT)
        path = path_of(page)
        view = pages.FormView(
            action=f"{path}lead?lang={quote(locale)}",
            token=leadform.form_token(self.host, path, now=now),
            words=texts(locale),
            partner=page.partner_name,
            form=form,
            errors=errors or {},
            notice=notice,
        )
        shell = pages.Shell(locale, rendered.title, f"{path}site.css", rendered.description)
        # The sandbox's output: partner text is escaped there.
        body = pages.page_html(
            shell, Markup(before), pages.form_html(view), Markup(after if slot else "")
        )
        return html_response(status, body)

    def thanks(self, page: LivePage, locale: str) -> Response:
        words = texts(locale)
        message = pages.message_html(
            words["thanks_title"], words["thanks"].format(partner=page.partner_name)
        )
        shell = pages.Shell(locale, words["thanks_title"], f"{path_of(page)}site.css")
        return html_response(200, pages.page_html(shell, message, Markup("")))

    def lead(
        self, page: LivePage, locale: str, form: leadform.LeadForm, client: str, now: datetime
    ) -> Response:
        """Refuse the form with the reason beside it, or record the lead and redirect."""
        words = texts(locale)
        path = path_of(page)
        wait = self.limiter.hit((client, path))
        if wait is not None:
            notice = words["rate_limited"].format(minutes=max(1, math.ceil(wait / 60)))
            return self.page(429, page, locale, form, now, notice=notice)
        try:
            leadform.check_form_token(
                self.host,
                form.token,
                path,
                now=now,
                page_seconds=self.options.form_token_seconds,
            )
        except leadform.FormTokenError as error:
            notice = words["expired" if error.expired else "invalid"]
            return self.page(400, page, locale, form, now, notice=notice)
        if form.honeypot:
            # Bots get the thank-you page they expect, and nothing is written.
            log.info("microsite form with the honeypot filled ignored (%s)", path)
            return self.thanks(page, locale)
        errors = leadform.field_errors(form, words, page.partner_name)
        if errors:
            return self.page(422, page, locale, form, now, errors, words["fix_below"])
        self.host.accept_lead(page, _new_lead(form, words, page, locale), now=now)
        location = f"{path}thanks?lang={quote(locale)}"
        return Response(status_code=303, headers={"Location": location})


async def _lead_form(request: Request) -> leadform.LeadForm | None:
    """The lead form as sent, or None when its body is longer than a form can be."""
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
        return None
    fields: FormData = await request.form(max_files=0, max_fields=40, max_part_size=MAX_BODY_BYTES)
    return leadform.parse_form(fields)


def router(host: Host) -> APIRouter:
    """The microsite's routes, for an application whose engine is ``host``."""
    site = Microsite(host)
    routes = APIRouter(include_in_schema=False)

    def live(tenant: str, partner: str, campaign: str) -> LivePage | None:
        return site.live_page(tenant, partner, campaign)

    Live = Annotated[LivePage | None, Depends(live)]

    @routes.get(PAGE)
    def landing(page: Live, request: Request, now: Now) -> Response:
        if page is None:
            return not_found()
        locale = page.locale(leadform.first(request.query_params, "lang"))
        utm = leadform.utm_values(request.query_params)
        host.record_visit(page, locale=locale, utm=utm, exported=False, now=now)
        return site.page(200, page, locale, leadform.LeadForm(utm=utm), now)

    @routes.post(PAGE + "lead")
    def lead(
        page: Live,
        request: Request,
        form: Annotated[leadform.LeadForm | None, Depends(_lead_form)],
        now: Now,
    ) -> Response:
        if page is None:
            return not_found()
        if form is None:
            return plain_response(413, b"", "text/plain")
        locale = page.locale(leadform.first(request.query_params, "lang"))
        return site.lead(page, locale, form, client_address(request), now)

    @routes.get(PAGE + "thanks")
    def thanks(page: Live, request: Request) -> Response:
        if page is None:
            return not_found()
        return site.thanks(page, page.locale(leadform.first(request.query_params, "lang")))

    @routes.get(PAGE + "site.css")
    def css(page: Live) -> Response:
        if page is None:
            return not_found()
        return plain_response(200, pages.site_css(page.colors).encode(), "text/css; charset=utf-8")

    @routes.get(PAGE + "pixel.gif")
    def pixel(page: Live, request: Request, now: Now) -> Response:
        if page is None:
            return not_found()
        locale = page.locale(leadform.first(request.query_params, "lang"))
        utm = leadform.utm_values(request.query_params)
        host.record_visit(page, locale=locale, utm=utm, exported=True, now=now)
        return plain_response(200, PIXEL, "image/gif")

    @routes.api_route(
        PREFIX + "{rest:path}",
        methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    )
    def anything_else(rest: str, request: Request) -> Response:
        """A known page asked with the wrong method is 405; every other address is 404."""
        parts = rest.split("/")
        known = len(parts) == 4 and all(parts[:3]) and parts[3] in SUBPAGES
        if known and site.live_page(*parts[:3]) is not None:
            return plain_response(405, b"", "text/plain")
        return not_found()

    return routes


def _new_lead(
    form: leadform.LeadForm, words: Mapping[str, str], page: LivePage, locale: str
) -> NewLead:
    return NewLead(
        email=form.values["email"],
        name=form.values["name"],
        company=form.values["company"],
        message=form.values["message"],
        consent_text=pages.consent_text(words, page.partner_name),
        locale=locale,
        utm=form.utm,
    )


def html_response(status: int, body: str) -> Response:
    return plain_response(status, body.encode(), "text/html; charset=utf-8")


def plain_response(status: int, payload: bytes, content_type: str) -> Response:
    """A page or asset with the microsite's security headers (no scripts, no framing)."""
    return Response(payload, status_code=status, headers=security.page_headers(content_type))


def not_found() -> Response:
    words = texts("en")
    shell = pages.Shell("en", "Not found", "")
    body = pages.page_html(shell, pages.message_html("Not found", words["not_found"]), Markup(""))
    return html_response(404, body)
