"""Rendering: the layered context, and MJML compiled once per (touch, partner, locale)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import col, select
from support.world import World, respond, run_days, start

import partnercast.channels.email.channel as email_channel
from partnercast.campaigns.enrollment import find_enrollment
from partnercast.campaigns.models import CampaignVersion
from partnercast.campaigns.rendering import PartnerView, layered_context, pick_locale
from partnercast.campaigns.store import version_spec
from partnercast.core.tenancy import tenant_session
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.plugins.personalization import marker
from partnercast.tenants.models import Contact, Partner, Tenant


def _view(world: World, external_id: str, customization: dict | None = None) -> PartnerView:
    with tenant_session(world.engine, world.tenant_id) as session:
        enrollment = find_enrollment(session, "cloud-security", external_id)
        partner = session.get(Partner, enrollment.partner_id)
        tenant = session.get(Tenant, world.tenant_id)
        version = session.get(CampaignVersion, enrollment.version_id)
        spec = version_spec(version)
        return PartnerView(
            tenant,
            partner,
            spec,
            version.templates,
            enrollment.segment_key,
            customization if customization is not None else enrollment.customization,
        )


def test_each_layer_overrides_the_one_below(world: World) -> None:
    view = _view(world, "P001", {"intro": {"de": "Unser eigener Text"}})
    assert view.segment_key == "gold-emea"
    touch = view.spec.touches[0]
    context = layered_context(view, touch, "de", "n0nce", html=True)
    # tenant brand < partner brand
    assert context["brand"]["legal_name"] == view.partner.legal_name != "Northwind Cloud Inc."
    assert context["brand"]["name"] == view.partner.name
    # campaign < segment variant < locale: gold-emea gets its own German discount
    assert (
        context["vars"]["discount"] == view.spec.variants["gold-emea"].variables["discount"]["de"]
    )
    assert (
        context["fields"]["call_to_action"]
        == view.spec.variants["gold-emea"].defaults["call_to_action"]
    )
    # defaults < partner customisation (per locale)
    assert context["fields"]["intro"] == "Unser eigener Text"
    english = layered_context(view, touch, "en", "n0nce", html=True)
    assert english["fields"]["intro"] != "Unser eigener Text"  # the English default stays
    # contact: merge markers, filled per recipient later
    assert context["contact"]["first_name"] == marker("n0nce", "first_name")
    # locked zones come from the campaign only
    assert context["locked"]["legal"] == view.spec.locked["legal"]["de"]


def test_a_variant_applies_only_to_its_segment(world: World) -> None:
    silver = _view(world, "P003")
    assert silver.segment_key == "silver-na"
    context = layered_context(silver, silver.spec.touches[0], "en", "x", html=True)
    assert context["vars"]["discount"] == silver.spec.variables["discount"]["en"]


@pytest.mark.parametrize(
    ("contact_locale", "languages", "expected"),
    [
        ("de", ["en"], "de"),
        ("de_AT", ["en"], "de"),
        ("fr", ["de", "en"], "de"),
        ("", ["en"], "en"),
        ("ja", ["ja"], "en"),
    ],
)
def test_pick_locale(
    world: World, contact_locale: str, languages: list[str], expected: str
) -> None:
    spec = _view(world, "P001").spec
    assert pick_locale(contact_locale, spec, languages) == expected


def test_mjml_compiles_once_per_touch_partner_and_locale(
    world: World, sink: SmtpSink, monkeypatch
) -> None:
    calls: Counter[str] = Counter()
    real = email_channel.mjml2html

    def counting(source: str) -> str:
        calls["compile"] += 1
        return real(source)

    monkeypatch.setattr(email_channel, "mjml2html", counting)
    respond(world, {"P001": "approve", "P003": "approve"})
    start(world)
    run_days(world, 0, 46)
    with tenant_session(world.engine, world.tenant_id) as session:
        partners = session.exec(
            select(Partner).where(col(Partner.external_id).in_(["P001", "P003"]))
        )
        locales = {
            partner.external_id: set(
                session.exec(select(Contact.locale).where(Contact.partner_id == partner.id)).all()
            )
            for partner in partners.all()
        }
    variants = sum(
        len({"de" if loc.startswith("de") else "en" for loc in locs}) for locs in locales.values()
    )
    touches = 3
    assert calls["compile"] == variants * touches
    assert sink.received.count > calls["compile"]  # fewer compiles than messages


def test_text_templates_render_without_html_escaping(world: World) -> None:
    from partnercast.campaigns.rendering import _renderers

    view = _view(world, "P001", {"signature_line": "R&D <team> 'Ops'"})
    templates = {
        **view.templates,
        "social/t.en.txt": "{{ fields.signature_line }}",
        "web/t.en.html": "<p>{{ fields.signature_line }}</p>",
    }
    from dataclasses import replace

    view = replace(view, templates=templates)
    touch = view.spec.touches[0]
    text_template, _ = _renderers(view, touch, "en", "n", ".txt")
    html_template, _ = _renderers(view, touch, "en", "n", ".html")
    assert text_template("social/t") == "R&D <team> 'Ops'"
    assert html_template("web/t") == "<p>R&amp;D &lt;team&gt; &#39;Ops&#39;</p>"
