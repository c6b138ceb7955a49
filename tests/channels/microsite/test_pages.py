"""Landing pages over HTTP: approved partners only, the right tenant only, visits, escaping."""

from __future__ import annotations

from sqlmodel import select
from support.microsite_site import Site, approve, change_partner

from partnercast.campaigns.enrollment import find_enrollment
from partnercast.core.models import Event
from partnercast.core.tenancy import tenant_session


def _visits(world) -> list[Event]:
    with tenant_session(world.engine, world.tenant_id) as session:
        return list(session.exec(select(Event).where(Event.kind == "visit")).all())


def test_an_approved_partners_page_shows_its_brand_and_words(site: Site) -> None:
    approve(site.a, "P001", page_headline="Hybrid cloud, hardened by P001")
    page = site.get("northwind", "P001")
    assert page.status_code == 200
    assert "Hybrid cloud, hardened by P001" in page.text  # the partner's words
    assert "Team P001" in page.text  # its signature line
    assert ".example/logo.png" in page.text  # its logo
    assert 'action="/p/northwind/P001/cloud-security/lead?lang=' in page.text
    assert "<!-- partnercast:lead-form -->" not in page.text  # the slot became the form
    css = site.get("northwind", "P001", "site.css")
    assert css.headers["Content-Type"].startswith("text/css")
    assert "--pc-primary:#" in css.text


def test_the_page_speaks_the_asked_for_locale(site: Site) -> None:
    approve(site.a, "P001")
    page = site.get("northwind", "P001", lang="de")
    assert '<html lang="de">' in page.text
    assert "Sichern Sie Ihre Hybrid Cloud in 45 Tagen" in page.text
    assert "Ihr Name" in page.text


def test_pages_carry_security_headers(site: Site) -> None:
    approve(site.a, "P001")
    headers = site.get("northwind", "P001").headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp  # no scripts at all
    assert "unsafe-inline" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_a_partner_that_has_not_approved_gets_404(site: Site) -> None:
    approve(site.a, "P001")
    assert site.get("northwind", "P002").status_code == 404  # invited, never approved
    assert site.get("northwind", "P002", "site.css").status_code == 404


def test_content_changed_after_approval_takes_the_page_down(site: Site) -> None:
    approve(site.a, "P001")
    with tenant_session(site.a.engine, site.a.tenant_id) as session:
        enrollment = find_enrollment(session, "cloud-security", "P001")
        enrollment.customization = {**enrollment.customization, "page_headline": "Unapproved"}
    page = site.get("northwind", "P001")
    assert page.status_code == 404
    assert "Unapproved" not in page.text


def test_another_tenants_partner_id_is_404_and_unknown_names_too(site: Site) -> None:
    change_partner(site.b, "P006", external_id="Q900")
    approve(site.b, "Q900")
    assert site.get("southwind", "Q900").status_code == 200
    assert site.get("northwind", "Q900").status_code == 404  # B's partner under A's slug
    assert site.get("nowhere", "P001").status_code == 404
    assert site.http.get(f"{site.base}/p/northwind/P001/other/", timeout=5).status_code == 404
    assert site.http.get(f"{site.base}/p/northwind/P001/", timeout=5).status_code == 404


def test_each_visit_is_recorded_in_the_right_tenant(site: Site) -> None:
    approve(site.a, "P001")
    approve(site.b, "P001")
    site.get("northwind", "P001", utm_source="email", utm_content="intro")
    site.get("northwind", "P001")
    visits = _visits(site.a)
    assert len(visits) == 2
    assert {v.source for v in visits} == {"microsite"}
    assert visits[0].data["utm"] == {"utm_source": "email", "utm_content": "intro"}
    assert _visits(site.b) == []  # B's P001 has a page too, but nobody visited it


def test_partner_text_is_escaped(site: Site) -> None:
    attack = '<script>alert("x")</script>'
    change_partner(site.a, "P001", name=f"Evil {attack}", primary_color="red;}body{x:y")
    approve(site.a, "P001", page_headline=attack, page_intro='"><img src=x onerror=alert(1)>')
    page = site.get("northwind", "P001")
    assert page.status_code == 200
    assert "<script" not in page.text
    assert "onerror=alert(1)>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    css = site.get("northwind", "P001", "site.css").text
    assert "body{x:y" not in css  # a colour that is not a colour never reaches the CSS
