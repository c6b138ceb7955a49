"""Security headers of every microsite page.

The pages run no scripts at all: the Content-Security-Policy allows none, no inline
styles, only the engine's own stylesheet, images over https (partner logos), and forms
that post back to the engine.
"""

from __future__ import annotations

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' https: data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def export_csp(engine_origin: str) -> str:
    """The policy of an exported page, which posts its form to the engine (a meta tag)."""
    return (
        "default-src 'none'; style-src 'self'; "
        f"img-src 'self' https: data: {engine_origin}; "
        f"form-action {engine_origin}; base-uri 'none'"
    )


def page_headers(content_type: str) -> dict[str, str]:
    """Headers for one page or asset served by the engine."""
    return {
        "Content-Type": content_type,
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }
