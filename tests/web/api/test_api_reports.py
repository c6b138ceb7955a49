"""GET /reports/programme and its CSV files through the engine's own server: the page
``partnercast report`` writes for the vendor (charts inlined, partners linked to their own
report in the API), the data files byte for byte as the command writes them (formulas
neutralised), staff tokens that see every partner only."""

from __future__ import annotations

from pathlib import Path

from conftest import make_tenant
from sqlmodel import select
from support.api_world import Client, make_token
from support.world import World

from partnercast.concierge.tasks import add_concierge
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.funnel.reports import write_reports
from partnercast.tenants.access import Role
from partnercast.tenants.api_tokens import create_token
from partnercast.tenants.models import Partner

PAYLOAD = '=HYPERLINK("http://evil","x")'


def test_the_programme_report_and_its_data_for_staff_only(
    client: Client, world: World, tmp_path: Path
) -> None:
    engine, tenant = world.engine, world.tenant_id
    with tenant_session(engine, tenant) as session:
        partners = sorted(session.exec(select(Partner)).all(), key=lambda p: p.external_id)
        partners[0].name = PAYLOAD  # a formula in a text column of the exports
        session.add(partners[0])
    admin = make_token(engine, tenant, Role.AGENCY_ADMIN)
    page = client.get("/reports/programme", token=admin)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "programme report" in html and 'src="data:image/png;base64,' in html
    assert 'src="funnel.png"' not in html  # every chart is inlined
    for partner in partners:
        assert f'href="/api/v1/partners/{partner.id}/report"' in html
    for name in ("funnel", "cycles", "scores"):
        assert f'href="/api/v1/reports/programme/{name}.csv"' in html

    with tenant_session(engine, tenant) as session:
        write_reports(session, tmp_path / "cli", now=utcnow())
    for name in ("funnel", "cycles", "scores"):
        answer = client.get(f"/reports/programme/{name}.csv", token=admin)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/csv")
        assert answer.content == (tmp_path / "cli" / f"{name}.csv").read_bytes(), name
    scores = client.get("/reports/programme/scores.csv", token=admin).text
    assert partners[0].external_id in scores
    funnel_csv = client.get("/reports/programme/funnel.csv", token=admin).text
    assert "=HYPERLINK" not in funnel_csv.replace("'=HYPERLINK", "")

    marketer = make_token(engine, tenant, Role.VENDOR_MARKETER)
    assert client.get("/reports/programme", token=marketer).status_code == 200
    partner = make_token(engine, tenant, Role.PARTNER, partner_id=partners[0].id)
    for path in ("/reports/programme", "/reports/programme/funnel.csv"):
        refused = client.get(path, token=partner)
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
    with tenant_session(engine, tenant) as session:
        cleo = add_concierge(session, "Cleo", languages=["en"], now=utcnow())
        _, covering = create_token(
            session, name="cleo", role=Role.CONCIERGE, concierge_id=cleo.id, now=utcnow()
        )
    assert client.get("/reports/programme/scores.csv", token=covering).status_code == 403
    everyone = make_token(engine, tenant, Role.CONCIERGE)
    assert client.get("/reports/programme/scores.csv", token=everyone).status_code == 200

    stranger = make_token(engine, make_tenant(engine, "stranger"), Role.AGENCY_ADMIN)
    theirs = client.get("/reports/programme", token=stranger)
    assert theirs.status_code == 200
    assert all(f"/partners/{p.id}/report" not in theirs.text for p in partners)
    assert partners[1].name not in theirs.text
    assert client.get("/reports/programme").status_code == 401
