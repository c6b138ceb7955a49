"""A partner without a logo or colours still gets its landing page (was a 500: the
sample page asks `{% if brand.logo_url %}`, and the key was undefined)."""

from __future__ import annotations

from sqlmodel import select
from support.microsite_site import Site, approve

from partnercast.core.tenancy import tenant_session
from partnercast.tenants.models import Partner


def test_a_partner_without_logo_or_colours_gets_its_page(site: Site) -> None:
    with tenant_session(site.a.engine, site.a.tenant_id) as session:
        partner = session.exec(select(Partner).where(Partner.external_id == "P001")).one()
        partner.logo_url = ""
        partner.primary_color = ""
        partner.secondary_color = ""
    approve(site.a, "P001", page_headline="No logo, still a page")
    page = site.get("northwind", "P001")
    assert page.status_code == 200, page.text[:500]
    assert "No logo, still a page" in page.text
    assert 'class="pc-logo"' not in page.text  # no image without a logo
    assert "--pc-primary:#" in site.get("northwind", "P001", "site.css").text  # the default
