"""Rendering a touch for a partner: the layered context, and drafts cached per variant.

The context is layered, each layer overriding the one before it:
tenant brand < campaign < segment variant < locale < partner brand < partner
customisation < contact. The contact layer is made of merge markers, so a touch renders
(and its MJML compiles) once per (touch, partner, locale) and is then personalised per
recipient by the channel.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from markupsafe import Markup

from partnercast.campaigns.partner_text import partner_text
from partnercast.campaigns.sandbox import TemplateSet, render_limited, template_environment
from partnercast.campaigns.spec import CampaignSpec, TouchSpec, localize
from partnercast.plugins import Channel, Draft, RenderRequest
from partnercast.plugins.contrast import button_colours, readable_colour
from partnercast.plugins.personalization import marker, new_nonce
from partnercast.tenants.models import Partner, Tenant

BRAND_KEYS = (
    "legal_name",
    "postal_address",
    "logo_url",
    "primary_color",
    "secondary_color",
    "signature",
)
MARKUP_SUFFIXES = (".mjml", ".html", ".htm", ".xml", ".svg")
"""Template suffixes rendered with HTML autoescaping; any other (.txt) renders as plain text."""
CONTACT_TOKENS = ("first_name", "last_name", "company", "email")


def pick_locale(contact_locale: str, spec: CampaignSpec, partner_languages: list[str]) -> str:
    """The campaign locale a contact reads: theirs, else the partner's, else the default."""
    for candidate in (contact_locale, *partner_languages):
        if not candidate:
            continue
        if candidate in spec.locales:
            return candidate
        language = candidate.replace("-", "_").split("_")[0]
        if language in spec.locales:
            return language
    return spec.default_locale


@dataclass(frozen=True)
class PartnerView:
    """Everything about one partner's enrollment that shapes what it sends."""

    tenant: Tenant
    partner: Partner
    spec: CampaignSpec
    templates: Mapping[str, str]
    segment_key: str
    customization: Mapping[str, Any]


def identity(view: PartnerView) -> dict[str, str]:
    """Who the partner's messages go out as."""
    brand = _brand(view)
    return {
        "name": view.partner.name,
        "legal_name": brand.get("legal_name", ""),
        "postal_address": brand.get("postal_address", ""),
        "sender_name": view.partner.sender_name or view.partner.name,
        "sender_email": view.partner.sender_email,
    }


def _brand(view: PartnerView) -> dict[str, Any]:
    # Every documented key is there, empty when neither the partner nor the tenant has
    # it: `{% if brand.logo_url %}` on a partner without a logo answered 500 (undefined).
    brand: dict[str, Any] = dict.fromkeys(BRAND_KEYS, "")
    brand.update({key: value for key, value in view.tenant.brand.items() if value})
    brand["name"] = view.tenant.name
    for key in BRAND_KEYS:
        value = getattr(view.partner, key, "")
        if value:
            brand[key] = value
    brand["name"] = view.partner.name
    return _readable(brand)


def _readable(brand: dict[str, Any]) -> dict[str, Any]:
    """Brand colours that read on white (WCAG 2.1 AA, 4.5:1), whether as headings, links
    or white text on a button of that colour (contrast is symmetric): a colour that fails
    keeps its hue and is darkened until it passes; the colour given stays in
    ``<key>_given``. ``on_primary_color`` is the text colour for a primary button."""
    for key in ("primary_color", "secondary_color"):
        given = brand.get(key) or ""
        brand[f"{key}_given"] = given
        if given:
            brand[key] = readable_colour(given)
    primary = brand["primary_color"]
    brand["on_primary_color"] = button_colours(primary)[1] if primary else "#ffffff"
    return brand


def _localized(values: Mapping[str, Any], locale: str, spec: CampaignSpec) -> dict[str, Any]:
    return {name: localize(value, locale, spec.default_locale) for name, value in values.items()}


def _overlay(values: dict[str, Any], layer: Mapping[str, Any], spec: CampaignSpec) -> None:
    """Lay ``layer`` over ``values``, locale by locale.

    A layer that sets a field for some locales only (a partner writing just the German
    headline) leaves the lower layer's text in the other locales.
    """
    for name, value in layer.items():
        below = values.get(name)
        if isinstance(value, Mapping) and below is not None:
            base = dict(below) if isinstance(below, Mapping) else dict.fromkeys(spec.locales, below)
            values[name] = {**base, **value}
        else:
            values[name] = value


def layered_context(
    view: PartnerView, touch: TouchSpec, locale: str, nonce: str, *, html: bool
) -> dict[str, Any]:
    """The template context for one partner, touch and locale (contact values as markers)."""
    spec = view.spec
    variant = spec.variants.get(view.segment_key)
    variables = _localized(spec.variables, locale, spec)
    fields = {name: definition.default for name, definition in spec.editable_fields.items()}
    if variant is not None:
        variables.update(_localized(variant.variables, locale, spec))
        _overlay(fields, variant.defaults, spec)
    _overlay(fields, view.customization, spec)
    fields = _localized(fields, locale, spec)
    rendered_fields = {
        name: _field_value(value, spec, name, nonce, html=html) for name, value in fields.items()
    }
    return {
        "brand": _brand(view),
        "partner": {
            "name": view.partner.name,
            "contact_name": view.partner.contact_name,
            "contact_email": view.partner.contact_email,
            "region": view.partner.region,
            "tier": view.partner.tier,
        },
        "campaign": {"key": spec.key, "name": spec.name},
        "vars": variables,
        "fields": rendered_fields,
        "locked": _localized(spec.locked, locale, spec),
        "contact": {token: Markup(marker(nonce, token)) for token in CONTACT_TOKENS},
        "links": {"unsubscribe": Markup(marker(nonce, "unsubscribe_url"))},
        "touch": {"key": touch.key, "day": touch.day},
        "locale": locale,
    }


def _field_value(value: Any, spec: CampaignSpec, name: str, nonce: str, *, html: bool) -> Any:
    if not isinstance(value, str):
        return value
    definition = spec.editable_fields.get(name)
    tokens = definition.merge_tokens if definition is not None else []
    return partner_text(value, tokens, nonce, html=html)


def touch_content(touch: TouchSpec, locale: str, spec: CampaignSpec) -> dict[str, Any]:
    """The channel content a touch declares (subject, preheader...), in one locale."""
    content: dict[str, Any] = {
        key: localize(value, locale, spec.default_locale) for key, value in touch.content.items()
    }
    for key in ("subject", "preheader"):
        value = getattr(touch, key, None)
        if value:
            content[key] = localize(value, locale, spec.default_locale)
    return content


@dataclass
class DraftCache:
    """Drafts by (touch, partner content, locale): MJML compiles once per variant."""

    drafts: dict[str, Draft] = field(default_factory=dict)
    filters: Mapping[str, Callable[..., Any]] | None = None
    track: Callable[[Draft, PartnerView, TouchSpec], Draft] | None = None
    """Open/click tracking applied once to each new draft of an audience channel."""
    environments: Environments = field(default_factory=lambda: Environments())
    """Jinja environments by template set: a version's templates are parsed and compiled
    once, not once per partner (that was most of a draft's time)."""

    def get_or_render(
        self, channel: Channel, view: PartnerView, touch: TouchSpec, locale: str
    ) -> Draft:
        key = _cache_key(view, touch, locale)
        if key not in self.drafts:
            draft = render_touch(
                channel, view, touch, locale, self.filters, environments=self.environments
            )
            if self.track is not None and channel.audience:
                draft = self.track(draft, view, touch)
            self.drafts[key] = draft
        return self.drafts[key]


def _cache_key(view: PartnerView, touch: TouchSpec, locale: str) -> str:
    body = json.dumps(
        [
            view.tenant.id,
            view.partner.id,
            view.spec.key,
            touch.key,
            locale,
            view.segment_key,
            view.customization,
            _brand(view),
        ],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


class Environments:
    """Template sets shared by the drafts of one run, by templates, escaping and filters:
    each is hashed once, and the render process compiles it once and keeps it
    (campaigns/sandbox.py). Safe to share: every render gets its own context and budget."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, bool, int], TemplateSet] = {}

    def get(
        self,
        templates: Mapping[str, str],
        *,
        autoescape: bool,
        filters: Mapping[str, Callable[..., Any]] | None,
    ) -> TemplateSet:
        digest = hashlib.sha256(
            json.dumps(dict(templates), sort_keys=True).encode("utf-8")
        ).hexdigest()
        key = (digest, autoescape, id(filters))
        if key not in self._made:
            self._made[key] = template_environment(
                templates, autoescape=autoescape, filters=filters
            )
        return self._made[key]


def _renderers(
    view: PartnerView,
    touch: TouchSpec,
    locale: str,
    nonce: str,
    suffix: str,
    filters: Mapping[str, Callable[..., Any]] | None = None,
    environments: Environments | None = None,
) -> tuple[Callable[[str], str], Callable[..., str]]:
    """render_template and render_string over one partner view's layered context."""
    if environments is None:
        environments = Environments()
    html_env = environments.get(view.templates, autoescape=True, filters=filters)
    text_env = environments.get(view.templates, autoescape=False, filters=filters)
    html_context = layered_context(view, touch, locale, nonce, html=True)
    text_context = layered_context(view, touch, locale, nonce, html=False)
    markup = suffix.lower() in MARKUP_SUFFIXES

    def render_template(name: str) -> str:
        path = f"{name}.{locale}{suffix}"
        environment, context = (html_env, html_context) if markup else (text_env, text_context)
        return render_limited(environment, path, context, where=f"templates/{path}")

    def render_string(source: str, *, html: bool = False) -> str:
        environment = html_env if html else text_env
        context = html_context if html else text_context
        return render_limited(
            environment, "<inline>", context, where=f"touch {touch.key!r}", source=source
        )

    return render_template, render_string


def render_touch(
    channel: Channel,
    view: PartnerView,
    touch: TouchSpec,
    locale: str,
    filters: Mapping[str, Callable[..., Any]] | None = None,
    *,
    environments: Environments | None = None,
) -> Draft:
    """Render one touch for one partner and locale through its channel.

    ``filters`` are extra Jinja filters from plugins (the ``template_filters`` hook);
    ``environments`` lets many renders share compiled templates.
    """
    nonce = new_nonce()
    suffix = channel.template_suffix
    environments = environments if environments is not None else Environments()
    render_template, render_string = _renderers(
        view, touch, locale, nonce, suffix, filters, environments
    )
    vendor_view = replace(view, customization={})
    vendor_template, vendor_string = _renderers(
        vendor_view, touch, locale, nonce, suffix, filters, environments
    )
    request = RenderRequest(
        channel=channel.name,
        touch_key=touch.key,
        template=touch.template,
        locale=locale,
        content=touch_content(touch, locale, view.spec),
        nonce=nonce,
        render_template=render_template,
        render_string=render_string,
        identity=identity(view),
        render_vendor_template=vendor_template,
        render_vendor_string=vendor_string,
        campaign_key=view.spec.key,
        partner_external_id=view.partner.external_id,
        tenant_key=view.tenant.slug,
    )
    return channel.render(request)
