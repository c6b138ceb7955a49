"""What goes out must read right: names in any script drawn in the charts, no warnings on
stderr, the programme report linking every partner's, no step over 100% shown as a
conversion, and pages that fit a 390-pixel phone."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from funnel.test_partner_page import CHROMIUM, DevTools
from sqlmodel import select
from support.funnel_world import Funnel, add_form_lead
from support.world import START

from partnercast.funnel import report_charts
from partnercast.funnel.reports import write_reports
from partnercast.funnel.spend import add_spend
from partnercast.tenants.models import Partner

NOW = START + timedelta(days=2)
NAMES = {
    "P001": "株式会社クラウド東京 🚀",
    "P002": "Ünïcødé & Söhne Rechenzentrumsbetriebsgesellschaft",
}


@pytest.fixture
def named(funnel: Funnel) -> Funnel:
    add_form_lead(funnel, "P001", "a0@c.example", visits=9)  # 9 visits, fewer clicks
    with funnel.session() as session:
        add_spend(session, "P001", "cloud-security", 1000, now=NOW)
        for partner in session.exec(select(Partner)).all():
            if partner.external_id in NAMES:
                partner.name = NAMES[partner.external_id]
                session.add(partner)
    return funnel


def test_a_step_larger_than_the_one_before_is_not_a_conversion() -> None:
    counts = {"clicked": 1, "visits": 9, "forms": 1}
    labels = report_charts.step_labels(counts, ("clicked", "visits", "forms"))
    assert labels == ["1", "9  (more than clicked: other sources too)", "1  (11% of page visits)"]
    assert not any("900%" in label for label in labels)


def test_the_report_draws_every_name_and_links_every_partner(
    named: Funnel, cli, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    result = cli("report", "--tenant", "northwind", "--out", str(out), "--now", NOW.isoformat())
    captured = capfd.readouterr()
    for stream in (result.stderr, captured.err):
        assert "Warning" not in stream and "missing from font" not in stream, stream
        assert "findfont" not in stream, stream
    families = report_charts.font_families()
    if any("CJK" in family for family in families) and "Symbola" in families:
        assert "draw" not in result.stderr  # every character has a font: nothing to say
    else:  # said once, with what to install, instead of a warning per character
        assert "fonts-noto-cjk" in result.stderr and "株" in result.stderr
    assert "writing the reports" not in result.stderr  # no progress bar in a pipe
    programme = (out / "index.html").read_text(encoding="utf-8")
    with named.session() as session:
        partners = session.exec(select(Partner)).all()
    links = set(re.findall(r'href="(partners/[^"]+/index\.html)"', programme))
    assert len(links) == len(partners)
    for link in links:
        assert (out / link).is_file(), link
    assert NAMES["P001"] in programme


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_pages_fit_a_390_pixel_phone(named: Funnel, cli, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    cli("report", "--tenant", "northwind", "--out", str(out), "--now", NOW.isoformat())
    pages = [out / "index.html", out / "partners" / "P002" / "index.html"]
    browser = DevTools(tmp_path / "profile")
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        browser.call("Page.enable", session=session)
        metrics = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}
        browser.call("Emulation.setDeviceMetricsOverride", metrics, session=session)
        widths = {}
        for page in pages:
            browser.call("Page.navigate", {"url": page.as_uri()}, session=session)
            widths[f"{page.parent.name}/{page.name}"] = _measured(browser, session, page)
    finally:
        browser.close()
    for page, (scroll, inner) in widths.items():
        assert inner == 390 and scroll <= inner, (page, scroll, inner)


def test_writing_the_reports_says_how_far_it_is(named: Funnel, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    with named.session() as session:
        files = write_reports(
            session, tmp_path / "r", now=NOW, on_progress=lambda d, t: seen.append((d, t))
        )
    total = len(files.partners) + 1
    assert seen == [(done, total) for done in range(1, total + 1)]


MEASURE = (
    "JSON.stringify([location.href, document.readyState,"
    " document.documentElement.scrollWidth, window.innerWidth])"
)


def _measured(browser: DevTools, session: str, page: Path) -> tuple[int, int]:
    """(scroll width, viewport width) of ``page`` once it has loaded (asked until it has:
    on a loaded machine the load event of the page before may still be in the queue)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = browser.call(
            "Runtime.evaluate", {"expression": MEASURE, "returnByValue": True}, session=session
        )
        value = answer.get("result", {}).get("value")
        if value:
            href, state, scroll, inner = json.loads(value)
            if href == page.as_uri() and state == "complete":
                return int(scroll), int(inner)
        time.sleep(0.2)
    raise AssertionError(f"{page} did not load in 60 seconds")
