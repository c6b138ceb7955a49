"""The engine's own HTTP endpoints, as a small WSGI application.

RFC 8058 one-click unsubscribe, the microsites' landing pages and lead forms under
``/p/`` (see :mod:`partnercast.web.microsite`), email click and open tracking under ``/t/``
(see :mod:`partnercast.web.tracking`). ``POST /u/<token>`` (what mail clients send, with
the body ``List-Unsubscribe=One-Click``) suppresses the address at once; ``GET /u/<token>``
(a person clicking the link) shows a page with a confirm button, because link scanners
fetch URLs with GET and must not unsubscribe anyone.
"""

from __future__ import annotations

import html
import logging
import socketserver
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from sqlalchemy.engine import Engine

from partnercast.channels.microsite.urls import PREFIX as MICROSITE_PREFIX
from partnercast.core.settings import Settings
from partnercast.core.signing import InvalidToken
from partnercast.core.timeutil import utcnow
from partnercast.plugins.manager import Plugins, default_plugins
from partnercast.tenants.suppressions import unsubscribe_by_token
from partnercast.web.crm import PREFIX as CRM_PREFIX
from partnercast.web.crm import CrmRoutes
from partnercast.web.feedback import PREFIX as FEEDBACK_PREFIX
from partnercast.web.feedback import FeedbackRoutes
from partnercast.web.microsite import MicrositeOptions, MicrositeRoutes
from partnercast.web.partner_page import PREFIX as PARTNER_PREFIX
from partnercast.web.partner_page import PartnerPageRoutes
from partnercast.web.tracking import PREFIX as TRACKING_PREFIX
from partnercast.web.tracking import TrackingRoutes

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}
button{{font-size:1rem;padding:.6rem 1.2rem}}</style></head><body>{body}</body></html>"""


def _page(start_response: StartResponse, status: str, title: str, body: str) -> list[bytes]:
    payload = _PAGE.format(title=html.escape(title), body=body).encode()
    start_response(
        status,
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(payload))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
        ],
    )
    return [payload]


class EngineApp:
    """The WSGI application: routes requests to the engine's handlers."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        plugins: Plugins | None = None,
        microsite: MicrositeOptions | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.microsite = MicrositeRoutes(
            engine, settings, plugins or default_plugins(), microsite or MicrositeOptions()
        )
        self.crm = CrmRoutes(engine, settings)
        self.tracking = TrackingRoutes(engine, settings)
        self.feedback = FeedbackRoutes(engine, settings)
        self.partner_page = PartnerPageRoutes(engine, settings)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path.startswith("/u/") and len(path) > 3:
            return self._unsubscribe(path[3:], method, start_response)
        if path.startswith(MICROSITE_PREFIX):
            return self.microsite(environ, start_response)
        if path.startswith(CRM_PREFIX):
            return self.crm(environ, start_response)
        if path.startswith(TRACKING_PREFIX):
            return self.tracking(environ, start_response)
        if path.startswith(FEEDBACK_PREFIX):
            return self.feedback(environ, start_response)
        if path.startswith(PARTNER_PREFIX):
            return self.partner_page(environ, start_response)
        return _page(start_response, "404 Not Found", "Not found", "<h1>Not found</h1>")

    def _unsubscribe(self, token: str, method: str, start_response: StartResponse) -> list[bytes]:
        if method == "GET":
            body = (
                "<h1>Unsubscribe</h1><p>Stop all emails from this sender?</p>"
                f'<form method="post" action="/u/{html.escape(token)}">'
                '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                "<button type=submit>Unsubscribe</button></form>"
            )
            return _page(start_response, "200 OK", "Unsubscribe", body)
        if method != "POST":
            return _page(
                start_response, "405 Method Not Allowed", "Not allowed", "<h1>Not allowed</h1>"
            )
        try:
            result = unsubscribe_by_token(self.engine, self.settings, token, now=utcnow())
        except InvalidToken as error:
            return _page(
                start_response,
                "400 Bad Request",
                "Link not valid",
                f"<h1>{html.escape(error.message)}</h1>",
            )
        log.info("unsubscribed a contact (new=%s)", result.newly_suppressed)
        return _page(
            start_response,
            "200 OK",
            "Unsubscribed",
            f"<h1>You are unsubscribed</h1><p>{html.escape(result.email)} "
            "will get no more emails from this sender.</p>",
        )


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.client_address[0], *args)


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def make_http_server(
    engine: Engine,
    settings: Settings,
    host: str,
    port: int,
    *,
    plugins: Plugins | None = None,
    microsite: MicrositeOptions | None = None,
) -> WSGIServer:
    """A threaded HTTP server for the engine's endpoints (port 0 picks a free port)."""
    return make_server(
        host,
        port,
        EngineApp(engine, settings, plugins=plugins, microsite=microsite),
        server_class=ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
