"""The shell every web page shares: the layout in a real browser (axe-core, 390 px), brand
colours made readable, the catalogues, and which partners a concierge covers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from support.browser import LiveServer, assert_accessible, screenshots

from partnercast.concierge.coverage import covered_partner_ids
from partnercast.concierge.models import Concierge, PartnerAssignment
from partnercast.core.tenancy import tenant_session
from partnercast.plugins.contrast import button_colours, contrast_ratio, readable_colour
from partnercast.tenants.access import PartnerScope
from partnercast.tenants.models import Partner
from partnercast.web.i18n import language_of, template_globals

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_the_sign_in_page_is_accessible_and_fits_a_phone(
    live_server: LiveServer, page: object, tmp_path: Path
) -> None:
    page.goto(live_server.path("/sign-in"))  # type: ignore[attr-defined]
    assert page.locator("h1").inner_text() == "Sign in"  # type: ignore[attr-defined]
    assert_accessible(page)
    shots = screenshots(page, tmp_path / "shots", "sign-in")
    assert [shot.name for shot in shots] == ["sign-in-1280.png", "sign-in-390.png"]
    assert all(shot.stat().st_size > 0 for shot in shots)


@pytest.mark.parametrize(
    "brand", ["#ffcc00", "#00a3e0", "#ff6600", "#f0f0f0", "#777", "not a colour"]
)
def test_a_brand_colour_is_made_readable_keeping_its_hue(brand: str) -> None:
    text = readable_colour(brand)
    assert contrast_ratio(text, "#ffffff") >= 4.5
    background, ink = button_colours(brand)
    assert contrast_ratio(background, ink) >= 4.5


def test_a_readable_brand_colour_is_kept() -> None:
    assert readable_colour("#1a56db") == "#1a56db"
    assert button_colours("#1a56db") == ("#1a56db", "#ffffff")


def test_language_and_formatting_follow_the_locale() -> None:
    assert language_of("de_AT") == "de" and language_of("fr-CA") == "fr"
    assert language_of("pt_BR") == "en" and language_of(None) == "en"
    german = template_globals("de_DE")
    assert german["format_number"](1234.5) == "1.234,5"
    assert german["format_date"](NOW.date()) == "02.03.2026"
    french = template_globals("fr")
    assert french["format_currency"](12.5, "EUR") == "12,50\u00a0€"
    assert "Paris" not in french["format_datetime"](NOW, tz="Europe/Paris")


def test_a_concierge_covers_the_partners_assigned_to_them(engine: Engine, tenant_a: int) -> None:
    with tenant_session(engine, tenant_a) as session:
        partners = [
            Partner(external_id=f"p{i}", name=f"P{i}", created_at=NOW, updated_at=NOW)
            for i in range(3)
        ]
        for partner in partners:
            session.add(partner)
        anna = Concierge(name="Anna", languages=["de"], created_at=NOW)
        session.add(anna)
        session.flush()
        session.add(
            PartnerAssignment(
                partner_id=partners[1].id, concierge_id=anna.id, language="de", assigned_at=NOW
            )
        )
        session.flush()
        ids = [partner.id for partner in partners]
        assert covered_partner_ids(session, PartnerScope(everything=True)) is None
        assert covered_partner_ids(session, PartnerScope(concierge_ids=frozenset({anna.id}))) == {
            ids[1]
        }
        assert covered_partner_ids(
            session,
            PartnerScope(partner_ids=frozenset({ids[0]}), concierge_ids=frozenset({anna.id})),
        ) == {ids[0], ids[1]}
        assert covered_partner_ids(session, PartnerScope()) == frozenset()
