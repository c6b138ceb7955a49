"""The engine's own page templates (``web/templates/``), rendered with autoescape.

Every value passed in is data and comes out escaped; the templates are the engine's, not
partner-editable. Loaded from the installed package (package data), never from the
current directory.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("partnercast.web", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
    )


def render(name: str, *, locale: str = "en", **values: Any) -> str:
    """The template ``name`` (a path under web/templates/) rendered with ``values``, in
    ``locale``'s language: ``_`` and ``lang`` from the ``pages`` catalogues
    (:mod:`partnercast.web.i18n`)."""
    from partnercast.web.i18n import template_globals

    texts = template_globals(locale, "pages")
    return environment().get_template(name).render(**texts, **values)


def page(
    status: int, title: str, template: str = "heading.html", *, locale: str = "en", **values: Any
) -> Response:
    """One of the engine's short pages (unsubscribe, not found), never cached; ``title``
    and any text passed in are already in ``locale``'s language."""
    body = render(template, locale=locale, title=title, **values)
    return Response(
        body,
        status_code=status,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
