"""Exporting a landing page as static files that a partner can host anywhere.

``index.html`` and ``assets/site.css``; the form posts to the engine's public URL with a
long-lived token (a hosted copy cannot fetch fresh ones), and a 1x1 image from the engine
counts the copy's visits. The partner's logo stays where the partner's brand points: the
engine fetches no URL a partner supplied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

from markupsafe import Markup

from partnercast.channels.microsite import leadform, pages, security
from partnercast.channels.microsite.channel import FORM_SLOT
from partnercast.channels.microsite.routes import CHANNEL, path_of
from partnercast.channels.microsite.texts import texts
from partnercast.plugins.host import Host

CSS_FILE = "assets/site.css"


class NoLivePage(Exception):
    """The partner has no live page in the campaign (one line for the user)."""


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    files: list[Path]
    form_action: str
    locale: str


def export_page(
    host: Host,
    tenant_slug: str,
    campaign_key: str,
    partner_key: str,
    out: Path,
    *,
    now: datetime,
    locale: str = "",
) -> ExportResult:
    """Write the partner's live page for ``campaign_key`` into ``out`` (its form's token
    made at ``now``)."""
    page = host.find_live_page(CHANNEL, tenant_slug, partner_key, campaign_key)
    if page is None:
        raise NoLivePage(
            f"no live landing page for partner {partner_key!r} in {campaign_key!r}: the "
            "partner must exist, be enrolled, have approved, and the campaign needs a "
            "microsite touch"
        )
    chosen = page.locale(locale)
    rendered = host.render_live_page(page, chosen)
    before, slot, after = rendered.html.partition(FORM_SLOT)
    base = host.public_base_url.rstrip("/")
    path = path_of(page)
    action = f"{base}{path}lead?lang={quote(chosen)}"
    form = pages.FormView(
        action=action,
        token=leadform.form_token(host, path, now=now, exported=True),
        words=texts(chosen),
        partner=page.partner_name,
    )
    shell = pages.Shell(
        chosen,
        rendered.title,
        CSS_FILE,
        rendered.description,
        csp_meta=security.export_csp(_origin(base)),
        pixel=f"{base}{path}pixel.gif?lang={quote(chosen)}",
    )
    # The sandbox's output: partner text is escaped there.
    html = pages.page_html(
        shell, Markup(before), pages.form_html(form), Markup(after if slot else "")
    )
    files = [
        _write(out / "index.html", html),
        _write(out / CSS_FILE, pages.site_css(page.colors)),
    ]
    return ExportResult(out, files, action, chosen)


def _origin(base_url: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
