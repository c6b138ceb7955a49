"""Render requests for the search channel, rendered with plain Jinja as the engine would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment

from partnercast.plugins import RenderRequest

NONCE = "5ea4c0"
CONTEXT: dict[str, Any] = {
    "campaign": {"key": "cloud-security", "name": "Secure your hybrid cloud"},
    "partner": {"name": "Nordlicht Systemhaus", "region": "DACH"},
    "brand": {"name": "Nordlicht Systemhaus"},
    "vars": {"product": "Northwind Shield", "landing_url": "https://northwind.example/shield"},
    "fields": {"search_headline": "Hybrid Cloud sicher in 45 Tag"},
}
CONTENT: dict[str, Any] = {
    "final_url": "{{ vars.landing_url }}?ref=partner",
    "headlines": [
        "{{ vars.product }} Partner",
        {"text": "{{ fields.search_headline }}", "pin": 1},
        "Free Cloud Security Review",
    ],
    "descriptions": [
        "Close the gaps in your hybrid cloud in 45 days with {{ brand.name }}.",
        "Book a 30-minute review of your cloud estate with our certified team.",
    ],
    "path1": "shield",
    "keywords": ["hybrid cloud security", "[northwind shield]", '"cloud audit"'],
    "daily_budget_micros": 20_000_000,
}
IDENTITY = {"name": "Nordlicht Systemhaus", "sender_email": "marketing@nordlicht.example"}


def request(
    content: Mapping[str, Any] | None = None,
    *,
    template: str = "",
    context: Mapping[str, Any] | None = None,
    identity: Mapping[str, str] | None = None,
    **extra: Any,
) -> RenderRequest:
    """A search RenderRequest; ``template`` is the source of the touch's template file."""
    values = {**CONTEXT, **(context or {})}
    html_env = Environment(autoescape=True)
    text_env = Environment(autoescape=False)

    def render_string(source: str, html: bool = False) -> str:
        return (html_env if html else text_env).from_string(source).render(values)

    return RenderRequest(
        channel="search",
        touch_key="search-ad",
        template="search/ad",
        locale="en",
        content=dict(CONTENT if content is None else content),
        nonce=NONCE,
        render_template=lambda _name: html_env.from_string(template).render(values),
        render_string=render_string,
        identity=dict(IDENTITY if identity is None else identity),
        **extra,
    )
