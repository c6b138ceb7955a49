"""The microsite's HTTP endpoints, under ``/p/<tenant>/<partner>/<campaign>/``.

``GET  .../``          the landing page (records a ``visit``); ``?lang=de`` picks a locale
``POST .../lead``      the lead form: rate limit, token, honeypot, validation, then a Lead
                       and a ``form`` event, and a redirect to the thank-you page
``GET  .../thanks``    the thank-you page
``GET  .../site.css``  the page's stylesheet (the partner's colours)
``GET  .../pixel.gif`` counts a visit of an exported copy of the page

Anything not live (unknown tenant, partner or campaign, not approved as is, another
tenant's partner) is the same 404.
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from markupsafe import Markup
from sqlalchemy.engine import Engine

from partnercast.channels.microsite.urls import PREFIX
from partnercast.core.settings import Settings
from partnercast.core.timeutil import utcnow
from partnercast.plugins.manager import Plugins
from partnercast.web import landing, leadform, pages, security
from partnercast.web.landing import LivePage, NewLead
from partnercast.web.ratelimit import RateLimiter
from partnercast.web.texts import texts

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
MAX_BODY_BYTES = 32_000
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
SUBPAGES = ("", "lead", "thanks", "site.css", "pixel.gif")


@dataclass
class MicrositeOptions:
    """Tunables of the lead form (tests make them small)."""

    rate_limit: int = 5
    rate_window_seconds: float = 600.0
    form_token_seconds: int = leadform.PAGE_TOKEN_SECONDS


@dataclass(frozen=True)
class Request:
    method: str
    parts: tuple[str, str, str]
    sub: str
    query: Mapping[str, list[str]]
    client: str
    environ: Mapping[str, Any]


def parse_path(path_info: str) -> tuple[tuple[str, str, str], str] | None:
    """((tenant, partner, campaign), sub-page) of a microsite path, or None."""
    # WSGI hands the path over as latin-1 text of the raw (percent-decoded) bytes.
    path = path_info.encode("latin-1", "replace").decode("utf-8", "replace")
    pieces = path[len(PREFIX) :].split("/")
    if len(pieces) != 4 or not all(pieces[:3]) or pieces[3] not in SUBPAGES:
        return None
    return (pieces[0], pieces[1], pieces[2]), pieces[3]


class MicrositeRoutes:
    """Serves landing pages and takes their lead forms."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        plugins: Plugins,
        options: MicrositeOptions | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.plugins = plugins
        self.options = options or MicrositeOptions()
        self.limiter = RateLimiter(self.options.rate_limit, self.options.rate_window_seconds)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        parsed = parse_path(environ.get("PATH_INFO", ""))
        if parsed is None:
            return _not_found(start_response)
        request = Request(
            method=environ.get("REQUEST_METHOD", "GET"),
            parts=parsed[0],
            sub=parsed[1],
            query=parse_qs(environ.get("QUERY_STRING", "")),
            client=environ.get("REMOTE_ADDR", ""),
            environ=environ,
        )
        page = landing.find_live_page(self.engine, *request.parts)
        if page is None:
            return _not_found(start_response)
        handler = {
            ("GET", ""): self._landing,
            ("POST", "lead"): self._lead,
            ("GET", "thanks"): self._thanks,
            ("GET", "site.css"): self._css,
            ("GET", "pixel.gif"): self._pixel,
        }.get((request.method, request.sub))
        if handler is None:
            return _respond(start_response, "405 Method Not Allowed", b"", "text/plain")
        return handler(page, request, start_response)

    # --- pages ------------------------------------------------------------------------

    def _landing(self, page: LivePage, request: Request, start: StartResponse) -> list[bytes]:
        locale = landing.choose_locale(page, _first(request.query, "lang"))
        utm = leadform.utm_values(request.query)
        landing.record_visit(self.engine, page, locale=locale, utm=utm)
        form = leadform.LeadForm(utm=utm)
        return self._page(start, "200 OK", page, locale, form)

    def _page(
        self,
        start: StartResponse,
        status: str,
        page: LivePage,
        locale: str,
        form: leadform.LeadForm,
        errors: Mapping[str, str] | None = None,
        notice: str = "",
    ) -> list[bytes]:
        rendered = landing.render_page(page, self.plugins, self.settings, locale)
        view = pages.FormView(
            action=f"{page.path}lead?lang={quote(locale)}",
            token=leadform.form_token(self.settings, page.path, now=utcnow()),
            words=texts(locale),
            partner=page.partner.name,
            form=form,
            errors=errors or {},
            notice=notice,
        )
        shell = pages.Shell(locale, rendered.title, f"{page.path}site.css", rendered.description)
        body = pages.page_html(
            shell, rendered.before_form, pages.form_html(view), rendered.after_form
        )
        return _html(start, status, body)

    def _thanks(self, page: LivePage, request: Request, start: StartResponse) -> list[bytes]:
        locale = landing.choose_locale(page, _first(request.query, "lang"))
        words = texts(locale)
        message = pages.message_html(
            words["thanks_title"], words["thanks"].format(partner=page.partner.name)
        )
        shell = pages.Shell(locale, words["thanks_title"], f"{page.path}site.css")
        return _html(start, "200 OK", pages.page_html(shell, message, Markup("")))

    def _css(self, page: LivePage, request: Request, start: StartResponse) -> list[bytes]:
        css = pages.site_css(brand_colors(page)).encode()
        return _respond(start, "200 OK", css, "text/css; charset=utf-8")

    def _pixel(self, page: LivePage, request: Request, start: StartResponse) -> list[bytes]:
        locale = landing.choose_locale(page, _first(request.query, "lang"))
        utm = leadform.utm_values(request.query)
        landing.record_visit(self.engine, page, locale=locale, utm=utm, exported=True)
        return _respond(start, "200 OK", PIXEL, "image/gif")

    # --- the lead form ------------------------------------------------------------------

    def _lead(self, page: LivePage, request: Request, start: StartResponse) -> list[bytes]:
        locale = landing.choose_locale(page, _first(request.query, "lang"))
        words = texts(locale)
        body = _read_body(request.environ)
        if body is None:
            return _respond(start, "413 Content Too Large", b"", "text/plain")
        form = leadform.parse_form(body)
        wait = self.limiter.hit((request.client, page.path))
        if wait is not None:
            minutes = max(1, math.ceil(wait / 60))
            notice = words["rate_limited"].format(minutes=minutes)
            return self._page(start, "429 Too Many Requests", page, locale, form, notice=notice)
        try:
            leadform.check_form_token(
                self.settings,
                form.token,
                page.path,
                now=utcnow(),
                page_seconds=self.options.form_token_seconds,
            )
        except leadform.FormTokenError as error:
            notice = words["expired" if error.expired else "invalid"]
            return self._page(start, "400 Bad Request", page, locale, form, notice=notice)
        if form.honeypot:
            # Bots get the thank-you page they expect, and nothing is written.
            log.info("microsite form with the honeypot filled ignored (%s)", page.path)
            return self._thanks(page, request, start)
        errors = leadform.field_errors(form, words, page.partner.name)
        if errors:
            notice = words["fix_below"]
            return self._page(
                start, "422 Unprocessable Content", page, locale, form, errors, notice
            )
        landing.accept_lead(self.engine, page, _new_lead(form, words, page, locale))
        location = f"{page.path}thanks?lang={quote(locale)}"
        start("303 See Other", [("Location", location), ("Content-Length", "0")])
        return [b""]


def _new_lead(
    form: leadform.LeadForm, words: Mapping[str, str], page: LivePage, locale: str
) -> NewLead:
    return NewLead(
        email=form.values["email"],
        name=form.values["name"],
        company=form.values["company"],
        message=form.values["message"],
        consent_text=pages.consent_text(words, page.partner.name),
        locale=locale,
        utm=form.utm,
    )


def brand_colors(page: LivePage) -> dict[str, str]:
    """The partner's colours over the vendor's."""
    brand = {key: str(value) for key, value in page.tenant.brand.items()}
    for key in ("primary_color", "secondary_color"):
        value = getattr(page.partner, key, "")
        if value:
            brand[key] = value
    return brand


def _first(query: Mapping[str, list[str]], name: str) -> str:
    return query.get(name, [""])[0]


def _read_body(environ: Mapping[str, Any]) -> bytes | None:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if length > MAX_BODY_BYTES:
        return None
    return environ["wsgi.input"].read(length) if length > 0 else b""


def _html(start: StartResponse, status: str, body: str) -> list[bytes]:
    return _respond(start, status, body.encode(), "text/html; charset=utf-8")


def _respond(start: StartResponse, status: str, payload: bytes, content_type: str) -> list[bytes]:
    start(status, security.page_headers(content_type, len(payload)))
    return [payload]


def _not_found(start: StartResponse) -> list[bytes]:
    words = texts("en")
    shell = pages.Shell("en", "Not found", "")
    body = pages.page_html(shell, pages.message_html("Not found", words["not_found"]), Markup(""))
    return _html(start, "404 Not Found", body)
