"""A campaign folder with social touches, loaded and rendered by the engine itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from partnercast.campaigns.loader import LoadedCampaign, read_campaign
from partnercast.campaigns.rendering import PartnerView, render_touch
from partnercast.channels.social.linkedin import LinkedInChannel
from partnercast.channels.social.post import PARTNER_COPY_REQUIRED
from partnercast.channels.social.x import XChannel
from partnercast.core.timeutil import utcnow
from partnercast.tenants.models import Partner, Tenant

CAMPAIGN = """\
key: shield-social
name: Northwind Shield on social
cycle_days: 30
locales: [en]
default_locale: en
segments: [gold-emea]
variables:
  landing_url: https://northwind.example/shield
editable_fields:
  social_post:
    type: text
    label: Your post
    hint: Say in your own words why your customers should look at Shield.
    max_length: 250
    required: true
    default: Northwind Shield watches your hybrid cloud around the clock.
touches:
  - key: launch-x
    channel: x
    day: 2
    template: social/launch
    content:
      link: "{{ vars.landing_url }}"
      hashtags: [CloudSecurity]
      require_partner_copy: true
  - key: launch-linkedin
    channel: linkedin
    day: 2
    template: social/launch
    content:
      link: "{{ vars.landing_url }}"
      hashtags: [CloudSecurity, HybridCloud]
      require_partner_copy: true
"""
TEMPLATE = "{{ fields.social_post }}\n"


@pytest.fixture
def loaded(tmp_path: Path) -> LoadedCampaign:
    (tmp_path / "templates" / "social").mkdir(parents=True)
    (tmp_path / "campaign.yaml").write_text(CAMPAIGN)
    (tmp_path / "templates" / "social" / "launch.en.txt").write_text(TEMPLATE)
    suffixes = {"email": ".mjml", "x": ".txt", "linkedin": ".txt"}
    return read_campaign(tmp_path, suffixes)


def _view(loaded: LoadedCampaign, customization: dict[str, Any]) -> PartnerView:
    tenant = Tenant(id=1, slug="northwind", name="Northwind Cloud", created_at=utcnow())
    partner = Partner(
        id=7,
        tenant_id=1,
        external_id="P001",
        name="Acme IT",
        languages=["en"],
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    return PartnerView(tenant, partner, loaded.spec, loaded.templates, "gold-emea", customization)


@pytest.mark.parametrize("channel", [XChannel, LinkedInChannel], ids=["x", "linkedin"])
def test_the_vendor_default_is_refused_and_partner_words_pass(loaded, channel) -> None:
    touch = next(t for t in loaded.spec.touches if t.channel == channel.name)
    social = channel()
    untouched = render_touch(social, _view(loaded, {}), touch, "en")
    assert social.validate(untouched) == [PARTNER_COPY_REQUIRED]

    own_words = {"social_post": "Our R&D team hardened 40 hybrid clouds this year. Ask us how."}
    draft = render_touch(social, _view(loaded, own_words), touch, "en")
    assert social.validate(draft) == []
    text = draft.parts["text"]
    assert text.startswith("Our R&D team hardened")  # plain text, not HTML-escaped
    assert (
        "https://northwind.example/shield?utm_source="
        f"{channel.name}&utm_medium=social&utm_campaign=shield-social"
        f"&utm_content={touch.key}&utm_term=P001"
    ) in text
    assert text.endswith("#CloudSecurity" if channel is XChannel else "#HybridCloud")
