"""The stable address of a partner's landing page, shared by the channel and the server.

``/p/<tenant-slug>/<partner-external-id>/<campaign-key>/``: every part is a name the
vendor chose, so the address survives re-imports and new campaign versions, and it holds
no row id that could be counted up to reach another tenant's pages.
"""

from __future__ import annotations

from urllib.parse import quote

PREFIX = "/p/"


def page_path(tenant_key: str, partner_key: str, campaign_key: str) -> str:
    """The path of one landing page (each part percent-encoded, trailing slash)."""
    parts = (tenant_key, partner_key, campaign_key)
    return PREFIX + "/".join(quote(part, safe="") for part in parts) + "/"


def page_url(base_url: str, path: str) -> str:
    """``path`` under the engine's public base URL."""
    return base_url.rstrip("/") + path
