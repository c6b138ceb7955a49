"""The engine's one ASGI application (FastAPI), and the factory that builds it.

A router per feature, each in its own module:

* ``/u/<token>``: RFC 8058 one-click unsubscribe (:mod:`partnercast.web.unsubscribe`);
* ``/t/c/<link>/<recipient>`` and ``/t/o/<recipient>.gif``: email click and open tracking
  (:mod:`partnercast.web.tracking`);
* ``/crm/<tenant>/leads``: lead stages a partner's CRM pushes (:mod:`partnercast.web.crm`);
* ``/partner/<token>``: a partner's own results page (:mod:`partnercast.web.partner_page`);
* ``/healthz``;
* ``/api/v1/...``: the REST API, an application of its own (:mod:`partnercast.web.api`);
* and every route plugins mount through the ``register_routes`` hook, each given the
  application's :class:`~partnercast.web.host.EngineHost`: the microsite's landing pages
  and lead forms under ``/p/``, the email channel's ``/feedback/<tenant>``.

Routes depend on the engine and settings on ``app.state`` (:mod:`partnercast.web.context`);
building the application opens nothing. :mod:`partnercast.web.server` serves it with uvicorn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from partnercast.core.settings import Settings, load_settings
from partnercast.funnel import rollups
from partnercast.plugins.manager import Plugins, default_plugins
from partnercast.web import (
    crm,
    dashboard,
    outgoing_events,
    partner_page,
    signin,
    tracking,
    unsubscribe,
)
from partnercast.web.api.app import PREFIX as API_PREFIX
from partnercast.web.api.app import create_api
from partnercast.web.host import EngineHost
from partnercast.web.portal import install as install_portal
from partnercast.web.server import HttpServer, ServeOptions
from partnercast.web.templating import page

ENGINE_ROUTERS = (unsubscribe.router, tracking.router, crm.router, partner_page.router)
health = APIRouter(include_in_schema=False)


@health.api_route("/healthz", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def healthz() -> Response:
    return Response(b"ok\n", headers={"Content-Type": "text/plain"})


def create_app(engine: Engine, settings: Settings, *, plugins: Plugins | None = None) -> FastAPI:
    """The application for ``engine``: the engine's routers, then the plugins' routes."""
    # The application composes the engine (each `serve --workers` process builds its own):
    # every event a request records keeps the funnel's rollups in step.
    rollups.install()
    outgoing_events.install()  # and what a request records is written for the webhooks
    loaded = plugins or default_plugins()
    tracker = tracking.HitWriter(engine, tracking.bot_reason)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        tracker.close()  # every hit answered is recorded; the rest waiting are, too

    app = FastAPI(
        title="partnercast", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.engine = engine
    app.state.tracker = tracker
    app.state.settings = settings
    app.state.host = EngineHost(engine, settings, loaded)
    for router in (health, *ENGINE_ROUTERS, *loaded.routers(app.state.host)):
        app.include_router(router)
    # The REST API is an application of its own: its OpenAPI document is the API's only.
    app.mount(API_PREFIX, create_api(engine, settings))
    signin.install(app)  # sign-in, sign-out, the shell's /static/ (web/signin.py)
    install_portal(app)  # the partner portal, /portal/{tenant}/ (web/portal.py)
    dashboard.install(app)  # the concierge dashboard, /dashboard/{tenant}/ (web/dashboard.py)
    app.add_exception_handler(HTTPException, _not_found)
    app.add_exception_handler(RequestValidationError, _not_found)
    app.add_exception_handler(ClientDisconnect, _gone)
    return app


async def _not_found(request: Request, error: Exception) -> Response:
    """Every address no route knows, and every malformed one, is the same short page (in
    the browser's language: a German visitor asking for another tenant's page reads
    "Nicht gefunden")."""
    from partnercast.web.i18n import best_locale, gettext_for

    locale = best_locale(accept_language=request.headers.get("accept-language", ""))
    _ = gettext_for(locale, "pages")
    return page(404, _("Not found"), heading=_("Not found"), locale=locale)


async def _gone(request: Request, error: Exception) -> Response:
    """The client went (or the server closed a request whose body was too slow, see
    :mod:`partnercast.web.limits`) while its body was read: nobody to answer, nothing to log."""
    return Response(status_code=400)


def app_from_settings() -> FastAPI:
    """The application for the configured database."""
    from partnercast.core.cli import open_engine

    settings = load_settings()
    return create_app(open_engine(settings), settings)


def served_from_settings() -> tracking.TrackerFront:
    """What each ``serve --workers N`` process runs (uvicorn imports it by name): the
    application for the configured database behind the tracker's front
    (:class:`~partnercast.web.tracking.TrackerFront`)."""
    from partnercast.web.server import settle_serving_process

    front = tracking.TrackerFront(app_from_settings())
    settle_serving_process()  # the process serves until uvicorn's supervisor stops it
    return front


def make_http_server(
    engine: Engine,
    settings: Settings,
    host: str,
    port: int,
    *,
    plugins: Plugins | None = None,
    proxy_headers: bool = False,
    forwarded_allow_ips: str = "127.0.0.1",
) -> HttpServer:
    """The application for ``engine`` on ``host:port`` (0 picks a free port), served by
    ``serve_forever()`` in the calling thread until ``shutdown()``."""
    options = ServeOptions(
        host, port, proxy_headers=proxy_headers, forwarded_allow_ips=forwarded_allow_ips
    )
    return HttpServer(create_app(engine, settings, plugins=plugins), options)
