"""The contender score (components, weights, what holds a partner back) and the reports."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from support.funnel_world import Funnel, add_form_lead, write_csv
from support.world import START

from partnercast.campaigns.enrollment import find_enrollment
from partnercast.core.timeutil import utcnow
from partnercast.funnel.crm_import import import_leads
from partnercast.funnel.reports import write_reports
from partnercast.funnel.score import WEIGHTS, score_partners
from partnercast.funnel.spend import add_spend
from partnercast.tenants.models import Partner

HEADER = "partner,email,campaign,stage,deal_value,currency,occurred_at\n"
# The funnel fixture ran the world to its day 2: what the CRM sends arrives then.
NOW = START + timedelta(days=2)


@pytest.fixture
def results(funnel: Funnel, tmp_path: Path) -> Funnel:
    for n in range(3):
        add_form_lead(funnel, "P001", f"a{n}@c.example")
    add_form_lead(funnel, "P002", "b0@c.example")
    csv = write_csv(
        tmp_path / "crm.csv",
        HEADER
        + "P001,a0@c.example,,mql,,,\n"
        + "P001,a1@c.example,,mql,,,\n"
        + "P001,a0@c.example,,opportunity,50000,,\n"
        + "P002,b0@c.example,,mql,,,\n",
    )
    with funnel.session() as session:
        assert not import_leads(session, csv, now=NOW).rejected
        add_spend(session, "P001", "cloud-security", 1000, now=NOW)
        add_spend(session, "P002", "cloud-security", 1000, now=NOW)
    return funnel


def test_weights_add_up_to_100_and_each_component_explains_itself(results: Funnel) -> None:
    assert sum(WEIGHTS.values()) == 100
    with results.session() as session:
        cards = {card.external_id: card for card in score_partners(session)}
    p1 = cards["P001"]
    assert 0 <= p1.score <= 100
    assert [c.name for c in p1.components] == list(WEIGHTS)
    assert all(c.detail for c in p1.components)
    named = {c.name: c for c in p1.components}
    assert named["leads"].value == 1.0  # the best partner for leads
    assert named["pipeline per spend"].value == 1.0  # 50x against the 20x target
    assert named["MQL to SQL"].value == 0.5  # a0 reached sql on its way to opportunity
    assert named["activity"].value == 1.0
    assert p1.score > cards["P002"].score > cards["P006"].score
    # P002 has one MQL that never became an SQL: that is what holds it back
    assert cards["P002"].weakest.name in {"MQL to SQL", "leads", "pipeline per spend"}
    # P006 never approved: nothing went out under its name, so that holds it back, not the
    # leads it could not get (which lose more points).
    p6 = cards["P006"]
    assert p6.weakest.name == "approval speed" and p6.weakest.blocks
    assert max(p6.components, key=lambda c: c.lost).name == "leads"
    assert "approve the campaign waiting for you" in p6.weakest.explain()
    assert not any(c.blocks for c in p1.components)


def test_customising_the_copy_raises_the_customisation_component(results: Funnel) -> None:
    def customisation(external_id: str) -> float:
        with results.session() as session:
            card = score_partners(session, external_id)[0]
        return next(c.value for c in card.components if c.name == "customisation")

    before = customisation("P001")
    with results.session() as session:
        enrollment = find_enrollment(session, "cloud-security", "P001")
        enrollment.customization = {
            **enrollment.customization,
            "headline": "Quartz engineers harden hybrid clouds before auditors arrive",
            "intro": "We have run forty audits this year; here is what we learned.",
        }
        session.add(enrollment)
    assert customisation("P001") > before


def test_score_command_names_what_holds_a_partner_back(results: Funnel, cli) -> None:
    one = cli("score", "--tenant", "northwind", "P002")
    assert "what holds it back" in one.stdout and "weight" in one.stdout
    everyone = cli("score", "--tenant", "northwind")
    assert "P001" in everyone.stdout and "P006" in everyone.stdout
    cli("score", "--tenant", "northwind", "P404", expect=1)


def test_reports_are_written_and_a_partner_report_holds_only_its_own_data(
    results: Funnel, tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    with results.session() as session:
        files = write_reports(session, out, now=NOW)
        names = {p.external_id: p.name for p in session.exec(select(Partner)).all()}
    for name in ("index.html", "funnel.png", "roi.png", "scores.png", "trend.png", "funnel.csv"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "funnel.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    programme = files.programme.read_text()
    assert all(name in programme for name in names.values())
    for external_id, path in files.partners.items():
        folder = path.parent
        assert {"index.html", "funnel.png", "roi.png", "trend.png", "score.png", "funnel.csv"} <= {
            f.name for f in folder.iterdir()
        }
        text = "".join(f.read_text() for f in folder.iterdir() if f.suffix in (".html", ".csv"))
        assert names[external_id] in text
        others = [n for eid, n in names.items() if eid != external_id]
        leaked = [n for n in others if n in text]
        assert not leaked, (external_id, leaked)
        others_ids = [eid for eid in names if eid != external_id]
        assert not [eid for eid in others_ids if eid in text]


def test_report_command(results: Funnel, cli, tmp_path: Path) -> None:
    out = cli("report", "--tenant", "northwind", "--out", str(tmp_path / "r"))
    assert "programme report" in out.stdout and "6 partner reports" in out.stdout


def test_one_partners_report_to_hand_over(results: Funnel, cli, tmp_path: Path) -> None:
    folder = tmp_path / "for-p002"
    said = cli("report", "--tenant", "northwind", "--partner", "P002", "--out", str(folder))
    assert str(folder / "index.html") in said.stdout.split()  # whole, to copy
    assert {f.name for f in folder.iterdir()} == {
        "index.html",
        "funnel.png",
        "roi.png",
        "trend.png",
        "score.png",
        "funnel.csv",
        "cycles.csv",
        "score.csv",
    }
    with results.session() as session:
        names = {p.external_id: p.name for p in session.exec(select(Partner)).all()}
    text = "".join(f.read_text() for f in folder.iterdir() if f.suffix in (".html", ".csv"))
    assert names["P002"] in text
    assert not [n for eid, n in names.items() if eid != "P002" and (n in text or eid in text)]
    # the leads component compares with the best partner without naming that one's count
    assert "best partner:" not in text and "against the best partner" in text
    wrong = cli("report", "--tenant", "northwind", "--partner", "P404", expect=1)
    assert "no partner 'P404'" in wrong.stderr and "Traceback" not in wrong.stderr


def test_what_holds_a_partner_back_says_what_it_costs_and_what_to_do(results: Funnel) -> None:
    with results.session() as session:
        cards = {card.external_id: card for card in score_partners(session)}
    weakest = cards["P006"].weakest
    said = weakest.explain()
    assert said.startswith(f"{weakest.name}: {weakest.detail}; ")
    assert f"{weakest.points:.1f} of {weakest.weight:.0f} points" in said
    assert "To do: " in said and weakest.advice in said
    assert all(c.advice for c in cards["P001"].components)


def test_the_report_reads_as_a_report(results: Funnel, tmp_path: Path) -> None:
    from PIL import Image

    from partnercast.funnel import report_charts

    out = tmp_path / "reports"
    with results.session() as session:
        files = write_reports(session, out, now=NOW)
    programme = files.programme.read_text()
    # Two tables that fit a page (reach; pipeline and return), the target marked per row.
    assert "<th>reach</th>" in programme and "<th>pipeline</th>" in programme
    assert "50.0x ✓" in programme and '<td class="ok">' in programme
    assert programme.count("<h2>") >= 5
    # The funnel: two panels side by side; each step's share of the one before.
    width, height = Image.open(out / "funnel.png").size
    assert width > 2 * height
    counts = {"leads": 4, "mql": 3, "sql": 1, "opportunity": 1, "won": 0}
    assert report_charts.step_labels(counts, report_charts.PIPELINE_STEPS) == [
        "4",
        "3  (75% of leads)",
        "1  (33% of MQL)",
        "1  (100% of SQL)",
        "0  (0% of opportunities)",
    ]
    social = {"impressions": 5400, "engagements": 210, "link_clicks": 96}
    assert report_charts.step_labels(social, report_charts.SOCIAL_STEPS) == [
        "5,400",
        "210  (4% of impressions)",
        "96  (2% of impressions)",  # a click is not a kind of engagement
    ]
    # A partner's page says what holds it back and what to do, and carries its own table.
    mine = files.partners["P002"].read_text()
    assert "What holds you back: <b>" in mine and "What to do:" in mine
    assert "<th>reach</th>" in mine
    header = (files.partners["P002"].parent / "funnel.csv").read_text().splitlines()[0]
    assert "impressions" in header and "ad_cost" in header


def test_the_roi_chart_leaves_out_empty_bars_but_names_them(tmp_path: Path) -> None:
    from PIL import Image

    from partnercast.funnel import report_charts

    labels = [f"P{n:03d} Partner" for n in range(30)]
    rois = [30.0, 5.0, *([0.0] * 25), None, None, None]
    report_charts.roi_chart(labels, rois, 20.0, "ROI", tmp_path / "few.png")
    report_charts.roi_chart(labels[:2], rois[:2], 20.0, "ROI", tmp_path / "two.png")
    # Two bars drawn however many partners have spend and no pipeline: the chart stays short.
    few, two = (Image.open(tmp_path / name).size[1] for name in ("few.png", "two.png"))
    assert few - two < 40


def test_a_tenant_with_nothing_yet_still_gets_a_report(results: Funnel, tmp_path: Path) -> None:
    from partnercast.core.tenancy import plain_session, tenant_session
    from partnercast.tenants.models import Tenant

    with plain_session(results.engine) as session:
        empty = Tenant(slug="southwind", name="Southwind", created_at=utcnow())
        session.add(empty)
    with tenant_session(results.engine, empty.id or 0) as session:
        files = write_reports(session, tmp_path / "empty", now=NOW)
    assert files.partners == {}
    page = files.programme.read_text()
    assert "Southwind" in page and "Northwind" not in page
    for chart in ("funnel.png", "roi.png", "scores.png", "trend.png"):
        assert (tmp_path / "empty" / chart).stat().st_size > 0


def test_the_funnel_gets_a_social_panel_once_the_networks_reported(tmp_path: Path) -> None:
    from PIL import Image

    from partnercast.funnel import report_charts

    email = {"sent": 100, "delivered": 98, "leads": 3}
    report_charts.funnel_chart(email, "F", tmp_path / "two.png")
    report_charts.funnel_chart({**email, "impressions": 900}, "F", tmp_path / "three.png")
    two = Image.open(tmp_path / "two.png").size
    three = Image.open(tmp_path / "three.png").size
    assert three[1] == two[1] and three[0] > two[0] * 1.4
