"""Exporting a landing page as static files that a partner can host anywhere.

``index.html`` and ``assets/site.css``; the form posts to the engine's public URL with a
long-lived token (a hosted copy cannot fetch fresh ones), and a 1x1 image from the engine
counts the copy's visits. The partner's logo stays where the partner's brand points: the
engine fetches no URL a partner supplied.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from sqlalchemy.engine import Engine

from partnercast.core.errors import NotFound
from partnercast.core.settings import Settings
from partnercast.core.tenancy import plain_session
from partnercast.core.timeutil import utcnow
from partnercast.plugins.manager import Plugins, default_plugins
from partnercast.tenants.models import Tenant
from partnercast.web import landing, leadform, pages, security
from partnercast.web.microsite import brand_colors
from partnercast.web.texts import texts

CSS_FILE = "assets/site.css"


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    files: list[Path]
    form_action: str
    locale: str


def export_page(
    engine: Engine,
    settings: Settings,
    tenant_id: int,
    campaign_key: str,
    partner_key: str,
    out: Path,
    *,
    locale: str = "",
    plugins: Plugins | None = None,
) -> ExportResult:
    """Write the partner's live page for ``campaign_key`` into ``out``."""
    with plain_session(engine) as session:
        tenant = session.get(Tenant, tenant_id)
    page = (
        landing.find_live_page(engine, tenant.slug, partner_key, campaign_key) if tenant else None
    )
    if page is None:
        raise NotFound(
            f"no live landing page for partner {partner_key!r} in {campaign_key!r}: the "
            "partner must exist, be enrolled, have approved, and the campaign needs a "
            "microsite touch"
        )
    chosen = landing.choose_locale(page, locale)
    rendered = landing.render_page(page, plugins or default_plugins(), settings, chosen)
    base = settings.public_base_url.rstrip("/")
    action = f"{base}{page.path}lead?lang={quote(chosen)}"
    form = pages.FormView(
        action=action,
        token=leadform.form_token(settings, page.path, now=utcnow(), exported=True),
        words=texts(chosen),
        partner=page.partner.name,
    )
    shell = pages.Shell(
        chosen,
        rendered.title,
        CSS_FILE,
        rendered.description,
        csp_meta=security.export_csp(_origin(base)),
        pixel=f"{base}{page.path}pixel.gif?lang={quote(chosen)}",
    )
    html = pages.page_html(shell, rendered.before_form, pages.form_html(form), rendered.after_form)
    files = [
        _write(out / "index.html", html),
        _write(out / CSS_FILE, pages.site_css(brand_colors(page))),
    ]
    return ExportResult(out, files, action, chosen)


def _origin(base_url: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
