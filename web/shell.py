"""The layout every signed-in page shares (``shell/base.html``) and how to render a page
in it, in the visitor's language.

A page template extends ``shell/base.html`` and fills its blocks ``title``, ``nav`` and
``main``. The layout needs the values :func:`shell_context` gives (the language's ``_``
and Babel formatters, ``lang``, ``csrf_field``/``csrf_token``, the visitor, the tenants
they may switch between, and the tenant in view); :func:`render_page` renders a page with
them merged under the route's own values, and :func:`environment` is the Jinja
environment (web/templates/, autoescaped) the shell's pages use. Another area's pages may
use their own environment (jinja2-fragments for htmx blocks) as long as they pass
:func:`shell_context`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.engine import Engine

from partnercast.plugins.contrast import button_colours, readable_colour
from partnercast.tenants.models import Tenant
from partnercast.web.csrf import csrf_field, csrf_token
from partnercast.web.i18n import template_globals
from partnercast.web.identity import Visitor, home_path, visible_tenants

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("partnercast.web", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
    )


def shell_context(
    request: Request,
    *,
    visitor: Visitor | None,
    engine: Engine | None = None,
    domain: str = "shell",
    tenant: Tenant | None = None,
    locale: str | None = None,
    brand_colour: str | None = None,
) -> dict[str, Any]:
    """The values ``shell/base.html`` reads, in ``locale`` (default: the visitor's)."""
    language = locale or (visitor.locale if visitor else "en")
    switcher: list[dict[str, Any]] = []
    if visitor is not None and engine is not None:
        for each in visible_tenants(visitor, engine):
            switcher.append(
                {
                    "slug": each.slug,
                    "name": each.name,
                    "url": home_path(visitor, each),
                    "current": tenant is not None and each.id == tenant.id,
                }
            )
    accent = readable_colour(brand_colour or "#1a56db")
    button_bg, button_text = button_colours(brand_colour or "#1a56db")
    return {
        **template_globals(language, domain),
        "request": request,
        "visitor": visitor,
        "tenant": tenant,
        "tenants": switcher,
        "csrf_field": csrf_field(request),
        "csrf_token": csrf_token(request),
        "accent": accent,
        "button_bg": button_bg,
        "button_text": button_text,
    }


def render_page(
    request: Request,
    template: str,
    *,
    visitor: Visitor | None,
    engine: Engine | None = None,
    domain: str = "shell",
    tenant: Tenant | None = None,
    locale: str | None = None,
    status: int = 200,
    brand_colour: str | None = None,
    **values: Any,
) -> HTMLResponse:
    """``template`` rendered in the layout, never cached (``brand_colour``: the accent and
    button colours, made readable by :mod:`partnercast.plugins.contrast`)."""
    context = shell_context(
        request,
        visitor=visitor,
        engine=engine,
        domain=domain,
        tenant=tenant,
        locale=locale,
        brand_colour=brand_colour,
    )
    body = environment().get_template(template).render(**context, **values)
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


__all__ = ["PAGE_HEADERS", "environment", "render_page", "shell_context"]
