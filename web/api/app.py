"""The API application: built by :func:`create_api`, mounted at :data:`PREFIX`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from partnercast.core.settings import Settings
from partnercast.web import problems
from partnercast.web.api.auth import RateLimit
from partnercast.web.api.conventions import describe_conventions

PREFIX = "/api/v1"
VERSION = "1.0.0"


def create_api(
    engine: Engine, settings: Settings, *, rate_limit: RateLimit | None = None
) -> FastAPI:
    """The API application (mount it at :data:`PREFIX`)."""
    from partnercast.web.api import (
        campaigns,
        contacts,
        cycles,
        enrollments,
        funnel,
        partners,
        reports,
        segments,
        tasks,
        tenant,
        webhooks,
    )

    api = FastAPI(
        title="partnercast REST API",
        version=VERSION,
        description=(
            "Everything the `partnercast` command does, for an agency's own tools and a "
            "vendor's CRM. Authenticate with `Authorization: Bearer pct_...` "
            "(`partnercast api-tokens create`). Errors are RFC 9457 problem documents. "
            "See docs/api.md."
        ),
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    api.state.engine = engine
    api.state.settings = settings
    api.state.rate_limit = rate_limit or RateLimit(
        settings.api_rate_burst, settings.api_rate_per_second
    )
    for router in (
        tenant.router,
        partners.router,
        contacts.router,
        campaigns.router,
        enrollments.router,
        cycles.router,
        tasks.router,
        funnel.router,
        segments.router,
        reports.router,
        webhooks.router,
    ):
        api.include_router(router)
    problems.install(api)
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = describe_conventions(generate())
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    return api
