"""Static export: files a partner can host, whose form posts to the engine."""

from __future__ import annotations

import re
from pathlib import Path

from sqlmodel import select
from support.microsite_site import Site, approve

from partnercast.core.models import Event
from partnercast.core.tenancy import tenant_session
from partnercast.funnel.leads import Lead


def test_export_writes_a_page_whose_form_posts_to_the_engine(
    site: Site, cli, tmp_path: Path
) -> None:
    approve(site.a, "P001", page_headline="Exported by P001")
    out = tmp_path / "export"
    result = cli(
        "microsite", "export", "cloud-security", "P001", "--tenant", "northwind", "--out", str(out)
    )
    action = f"{site.base}/p/northwind/P001/cloud-security/lead?lang=de"
    assert action in result.stdout
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "Exported by P001" in html
    assert f'action="{action}"' in html
    assert 'href="assets/site.css"' in html and (out / "assets" / "site.css").is_file()
    assert f"form-action {site.base}" in html  # its own CSP, as a meta tag
    # The hosted copy's form works against the engine, and its pixel counts visits.
    token = re.search(r'name="token" value="([^"]+)"', html).group(1)
    fields = {"token": token, "email": "kim@buyer.example", "name": "Kim", "company": "Buyer AG"}
    answer = site.http.post(action, data={**fields, "consent": "yes"}, timeout=10)
    assert answer.status_code == 200 and "Vielen Dank" in answer.text
    pixel = re.search(r'<img class="pc-pixel" src="([^"]+)"', html).group(1)
    assert site.http.get(pixel.replace("&amp;", "&"), timeout=5).content.startswith(b"GIF")
    with tenant_session(site.a.engine, site.a.tenant_id) as session:
        assert [lead.email for lead in session.exec(select(Lead)).all()] == ["kim@buyer.example"]
        visits = session.exec(select(Event).where(Event.kind == "visit")).all()
    assert [visit.source for visit in visits] == ["microsite-export"]


def test_export_of_an_unapproved_page_is_one_clear_error(site: Site, cli, tmp_path: Path) -> None:
    out = tmp_path / "nothing"
    result = cli(
        "microsite",
        "export",
        "cloud-security",
        "P002",
        "--tenant",
        "northwind",
        "--out",
        str(out),
        expect=1,
    )
    assert "no live landing page for partner 'P002'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_export_takes_now_and_a_bad_one_is_one_line(site: Site, cli, tmp_path: Path) -> None:
    approve(site.a, "P001", page_headline="Exported at a fixed instant")
    out = tmp_path / "export"
    cli(
        "microsite", "export", "cloud-security", "P001", "--tenant", "northwind",
        "--out", str(out), "--now", "2026-12-01T09:00",
    )  # fmt: skip
    assert "Exported at a fixed instant" in (out / "index.html").read_text(encoding="utf-8")
    elsewhere = tmp_path / "never"
    result = cli(
        "microsite", "export", "cloud-security", "P001", "--tenant", "northwind",
        "--out", str(elsewhere), "--now", "next tuesday", expect=2,
    )  # fmt: skip
    assert "'next tuesday' is not an ISO date or datetime" in result.stderr
    assert "Traceback" not in result.stderr and not elsewhere.exists()
