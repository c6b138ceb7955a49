"""A partner's own results page: the signed link, what the page shows, what it never shows.

Everything goes through the engine's own HTTP server (make_http_server), on a world that
ran two days of a cycle, with leads, CRM stages and spend. Partner P001 ("Alpha") is the
one whose page is opened; P002 and P003 carry distinctive names and numbers that must
never appear on it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from select import select as readable
from typing import Any

import pytest
import requests
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from support.funnel_world import Funnel, add_form_lead, write_csv
from support.world import START, build_world, respond, run_days, start

from partnercast.core.signing import sign
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.funnel.crm_import import import_leads
from partnercast.funnel.partner_link import make_token, read_token
from partnercast.funnel.spend import add_spend
from partnercast.tenants.models import Partner
from partnercast.web.app import make_http_server

HEADER = "partner,email,campaign,stage,deal_value,currency,occurred_at\n"
ALPHA = "Alpha Own Results Ltd"
BRAVO = "Bravoquist Unmatched GmbH"
CHARLIE = "Charlieworth Peculiar SA"
# Numbers only B and C have (as the page would print them, and raw).
OTHERS_NUMBERS = ("987,654", "987654", "313,131", "313131", "4,567", "2,389", "best partner:")


@dataclass
class Served:
    funnel: Funnel
    base: str
    http: requests.Session
    names: dict[str, str]  # external id -> name, every partner of the tenant

    def token(self, external_id: str, *, days: int = 30, now: datetime | None = None) -> str:
        """A token made at ``now`` (the wall clock by default: the page checks it against
        the request's instant)."""
        with self.funnel.session() as session:
            partner = session.exec(select(Partner).where(Partner.external_id == external_id)).one()
            return make_token(
                self.funnel.world.settings,
                self.funnel.world.tenant_id,
                partner,
                days=days,
                now=now or utcnow(),
            )

    def get(self, token: str) -> requests.Response:
        return self.http.get(f"{self.base}/partner/{token}", timeout=60)


@pytest.fixture
def served(funnel: Funnel, tmp_path: Path) -> Iterator[Served]:
    with serve(funnel, tmp_path) as running:
        yield running


@contextlib.contextmanager
def serve(funnel: Funnel, tmp_path: Path) -> Iterator[Served]:
    """Distinctive partners and numbers, and the engine's HTTP server on a free port."""
    with funnel.session() as session:
        partners = {
            p.external_id: p for p in session.exec(select(Partner).order_by(col(Partner.id)))
        }
        partners["P001"].name = ALPHA
        partners["P002"].name = BRAVO
        partners["P003"].name = CHARLIE
        names = {eid: p.name for eid, p in partners.items()}
    for n in range(3):
        add_form_lead(funnel, "P001", f"a{n}@c.example")
    for n in range(13):  # B is the tenant's best partner for leads: 13
        add_form_lead(funnel, "P002", f"b{n}@c.example")
    for n in range(2):
        add_form_lead(funnel, "P003", f"c{n}@c.example")
    csv = write_csv(
        tmp_path / "crm.csv",
        HEADER
        + "P001,a0@c.example,,mql,,,\n"
        + "P001,a1@c.example,,mql,,,\n"
        + "P001,a0@c.example,,opportunity,50000,,\n"
        + "P002,b0@c.example,,opportunity,987654,,\n"
        + "P003,c0@c.example,,won,313131,,\n",
    )
    with funnel.session() as session:
        assert not import_leads(session, csv, now=START).rejected
        add_spend(session, "P001", "cloud-security", 1000, now=START)
        add_spend(session, "P002", "cloud-security", 4567, now=START)
        add_spend(session, "P003", "cloud-security", 2389, now=START)
    server = make_http_server(funnel.engine, funnel.world.settings, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with requests.Session() as http:
            yield Served(funnel, f"http://127.0.0.1:{server.server_port}", http, names)
    finally:
        server.shutdown()
        server.server_close()


def visible(page: str) -> str:
    """The page without its inline images' bytes (base64 could hold any short string)."""
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:", page)


def figure(page: str, key: str) -> str:
    found = re.search(rf'data-figure="{key}"><dt>[^<]*</dt><dd>([^<]*)</dd>', page)
    assert found, f"no figure {key}"
    return found.group(1)


def test_the_page_shows_the_partners_own_funnel_return_and_score(served: Served) -> None:
    answer = served.get(served.token("P001"))
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["Cache-Control"].startswith("no-store")
    assert "script-src" not in answer.headers["Content-Security-Policy"]  # default-src 'none'
    page = answer.text
    assert f"{ALPHA}: your results with Northwind Cloud" in page
    assert figure(page, "leads") == "3"
    assert figure(page, "mql") == "2"
    assert figure(page, "opportunity") == "1"
    assert figure(page, "pipeline") == "50,000"
    assert figure(page, "spend") == "1,000"
    assert figure(page, "roi") == "50.0x"
    assert int(figure(page, "sent")) > 0 and int(figure(page, "delivered")) > 0
    for key in ("bounced", "complained", "opened", "clicked", "visits", "forms", "sql", "won"):
        figure(page, key)
    assert "meets the 20x target" in page
    # the score: every component with its weight, and what holds the partner back
    for name, weight in (("approval speed", 15), ("leads", 20), ("trend", 10)):
        assert re.search(rf"<td>{name}</td><td>\w+</td><td>{weight}</td>", page), name
    assert re.search(r'<p id="holds-back">What holds you back: <b>[^<]+</b>', page)
    assert "What to do:" in page
    # per campaign (with spend and ROI) and per cycle
    assert re.search(r'<table id="campaigns">.*<td>cloud-security</td>.*50\.0x', page, re.S)
    assert re.search(r'<table id="cycles">.*<td>cloud-security cycle 1</td>', page, re.S)
    # the report's four charts, inline PNGs
    for chart in ("funnel", "roi", "score", "trend"):
        assert re.search(rf'<img id="chart-{chart}" src="data:image/png;base64,iVBORw0KGgo', page)


def test_the_page_never_shows_another_partners_name_id_or_numbers(served: Served) -> None:
    page = served.get(served.token("P001")).text
    text = visible(page)
    others = {eid: name for eid, name in served.names.items() if eid != "P001"}
    assert BRAVO in others.values() and CHARLIE in others.values()
    leaked = [x for eid, name in others.items() for x in (eid, name) if x in page]
    assert not leaked
    assert not [n for n in OTHERS_NUMBERS if n in text]
    # the leads component compares with the best partner without saying its count (13)
    assert "3 leads, against the best partner of the programme" in text
    # (the page's own date and time, "as of ... until ...", may contain a 13 of its own)
    dated = re.sub(r"as of [^.]* UTC\. This link works until [\d-]+\.", "", text)
    assert dated != text and not re.search(r"\b13\b", dated)
    # and B's own page is B's
    bravo = visible(served.get(served.token("P002")).text)
    assert BRAVO in bravo and "987,654" in bravo and "4,567" in bravo
    assert ALPHA not in bravo and CHARLIE not in bravo and "50,000" not in bravo


def test_on_postgresql_too(postgres_engine: Engine, sink: SmtpSink, tmp_path: Path) -> None:
    world = build_world(postgres_engine, tmp_path / "pg", sink.port)
    other = build_world(postgres_engine, tmp_path / "pg-other", sink.port, slug="southwind")
    respond(world, {"P001": "approve", "P002": "approve", "P003": "auto", "P004": "silent"})
    start(world)
    run_days(world, 0, 2)
    with tenant_session(postgres_engine, world.tenant_id) as session:
        ids = {p.external_id: p.id or 0 for p in session.exec(select(Partner)).all()}
    with serve(Funnel(world, ids), tmp_path) as running:
        page = running.get(running.token("P001")).text
        text = visible(page)
        assert ALPHA in text and figure(page, "pipeline") == "50,000"
        assert figure(page, "leads") == "3" and figure(page, "roi") == "50.0x"
        leaked = [x for eid, n in running.names.items() if eid != "P001" for x in (eid, n)]
        assert not [x for x in leaked if x in page]
        assert not [n for n in OTHERS_NUMBERS if n in text]
        # the other tenant's id in front of this tenant's token: refused
        refused(running.get(f"{other.tenant_id}.{running.token('P001').split('.', 1)[1]}"))


def refused(answer: requests.Response) -> None:
    assert answer.status_code == 403, answer.status_code
    assert "not valid or has expired" in answer.text
    assert len(answer.text) < 600
    assert "P00" not in answer.text and "Northwind" not in answer.text


def test_a_tampered_token_is_refused(served: Served) -> None:
    token = served.token("P001")
    # Change the signature's first character: its last one may carry only padding bits
    # (a 20-byte HMAC is 27 base64 characters), which decode to the same bytes.
    signed, signature = token.rsplit(".", 1)
    tampered = ("A" if signature[0] != "A" else "B") + signature[1:]
    refused(served.get(f"{signed}.{tampered}"))
    refused(served.get(token[:-8]))
    refused(served.get("1.not-a-token"))
    refused(served.get("x" + token))
    # Another partner's payload under P001's signature (swap the signed part)
    alpha, bravo = token.rsplit(".", 1), served.token("P002").rsplit(".", 1)
    refused(served.get(f"{bravo[0]}.{alpha[1]}"))
    refused(served.get(f"{alpha[0]}.{bravo[1]}"))


def test_changing_the_partner_in_a_signed_payload_needs_the_key(served: Served) -> None:
    settings, tenant = served.funnel.world.settings, served.funnel.world.tenant_id
    other = settings.model_copy(update={"secret_key": SecretStr("another-deployments-key")})
    with served.funnel.session() as session:
        bravo = session.exec(select(Partner).where(Partner.external_id == "P002")).one()
        bravo_id = bravo.id
    forged = make_token(other, tenant, bravo, now=utcnow())
    refused(served.get(forged))
    # signed with the right key, but the external id does not match the partner id: 404
    payload = [tenant, bravo_id, "P001", int(time.time()) + 3600]
    mismatched = f"{tenant}.{sign(settings, f'partner_results.t{tenant}', payload, now=utcnow())}"
    gone = served.get(mismatched)
    assert gone.status_code == 404
    assert BRAVO not in gone.text and ALPHA not in gone.text


def test_an_expired_token_is_refused(served: Served) -> None:
    old = served.token("P001", days=1, now=utcnow() - timedelta(days=1, seconds=5))
    refused(served.get(old))
    assert served.get(
        served.token("P001", days=1, now=utcnow() - timedelta(days=1, seconds=-60))
    ).ok


def test_a_token_of_one_tenant_never_opens_another(served: Served, tmp_path: Path) -> None:
    world = served.funnel.world
    south = build_world(world.engine, tmp_path / "south", 9, slug="southwind")
    settings = world.settings
    x_token = served.token("P001")  # northwind's P001
    # the same token presented as the other tenant's (its id in front): another key
    refused(served.get(f"{south.tenant_id}.{x_token.split('.', 1)[1]}"))
    # a payload naming northwind, signed with southwind's key: refused either way
    with tenant_session(world.engine, south.tenant_id) as session:
        south_p1 = session.exec(select(Partner).where(Partner.external_id == "P001")).one()
    payload = [world.tenant_id, south_p1.id, "P001", int(time.time()) + 3600]
    signed = sign(settings, f"partner_results.t{south.tenant_id}", payload, now=utcnow())
    refused(served.get(f"{south.tenant_id}.{signed}"))
    refused(served.get(f"{world.tenant_id}.{signed}"))
    # southwind's own P001 link opens southwind's P001: none of northwind's numbers
    y_token = make_token(settings, south.tenant_id, south_p1, now=utcnow())
    page = visible(served.get(y_token).text)
    assert south_p1.name in page and ALPHA not in page and "50,000" not in page
    assert read_token(settings, y_token, now=utcnow()).tenant_id == south.tenant_id


def test_only_get(served: Served) -> None:
    answer = served.http.post(f"{served.base}/partner/{served.token('P001')}", timeout=30)
    assert answer.status_code == 405


def test_partners_link_prints_a_working_link(
    served: Served, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTNERCAST_PUBLIC_BASE_URL", served.base + "/")
    said = cli("partners", "link", "P001", "--tenant", "northwind", "--days", "7")
    url = said.stdout.strip()
    assert url.startswith(f"{served.base}/partner/") and "\n" not in url
    assert "development-only" not in said.stdout  # the secret is never printed
    link = read_token(served.funnel.world.settings, url.rsplit("/", 1)[1], now=utcnow())
    assert 6.9 * 86400 < link.expires_at - time.time() <= 7 * 86400
    answer = served.http.get(url, timeout=60)
    assert answer.status_code == 200 and ALPHA in answer.text
    wrong = cli("partners", "link", "P404", "--tenant", "northwind", expect=1)
    assert "no partner 'P404'" in wrong.stderr and "Traceback" not in wrong.stderr
    bad = cli("partners", "link", "P001", "--tenant", "northwind", "--days", "0", expect=1)
    assert "--days" in bad.stderr and "Traceback" not in bad.stderr


# --- a real browser -----------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")
# The flags of tests/channels/microsite/test_browser.py, with DevTools over a pipe instead of a
# screenshot: the test asks the page itself whether each chart decoded.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,900",
    "--remote-debugging-pipe",
)


class DevTools:
    """The Chrome DevTools Protocol over --remote-debugging-pipe (fd 3 in, fd 4 out):
    JSON messages ended by a NUL byte. Only the standard library."""

    def __init__(self, profile: Path) -> None:
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()
        # Above any fd the child's dup2 targets, so 3 and 4 cannot clobber each other.
        a, b = fcntl.fcntl(to_child, fcntl.F_DUPFD, 10), fcntl.fcntl(from_child, fcntl.F_DUPFD, 10)
        os.close(to_child)
        os.close(from_child)

        def wire() -> None:
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.process = subprocess.Popen(
            [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(3, 4),
            preexec_fn=wire,
        )
        os.close(a)
        os.close(b)
        self._buffer = b""
        self._next = 0
        self.events: list[dict[str, Any]] = []

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._message()
            if answer.get("id") == self._next:
                assert "error" not in answer, answer
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method: str) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._message()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _message(self, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = readable([self._read], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("chromium said nothing for a minute")
            chunk = os.read(self._read, 65536)
            if not chunk:
                err = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                raise RuntimeError(f"chromium closed its pipe:\n{err[-2000:]}")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._write)
        os.close(self._read)
        if self.process.stderr:
            self.process.stderr.close()


IN_PAGE = """JSON.stringify({
  images: Array.from(document.images).map(i => ({id: i.id, complete: i.complete,
    width: i.naturalWidth, height: i.naturalHeight, shown: i.getBoundingClientRect().width})),
  figures: Object.fromEntries(Array.from(document.querySelectorAll('[data-figure]')).map(
    f => [f.dataset.figure, {text: f.querySelector('dd').innerText,
      visible: f.checkVisibility() && f.getBoundingClientRect().height > 0}])),
  styled: getComputedStyle(document.querySelector('.figure')).borderTopStyle,
  text: document.body.innerText
})"""


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_chromium_loads_the_page_and_every_chart(served: Served, tmp_path: Path) -> None:
    url = f"{served.base}/partner/{served.token('P001')}"
    browser = DevTools(tmp_path / "profile")
    try:
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        browser.call("Page.enable", session=session)
        browser.call("Runtime.enable", session=session)
        browser.call("Page.navigate", {"url": url}, session=session)
        browser.wait_for("Page.loadEventFired")
        result = browser.call(
            "Runtime.evaluate", {"expression": IN_PAGE, "returnByValue": True}, session=session
        )
        seen = json.loads(result["result"]["value"])
        shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)
    finally:
        browser.close()
    charts = {image["id"]: image for image in seen["images"]}
    assert set(charts) == {"chart-funnel", "chart-roi", "chart-score", "chart-trend"}
    for name, image in charts.items():
        assert image["complete"] and image["width"] > 400 and image["height"] > 150, name
        assert image["shown"] > 0, name
    figures = seen["figures"]
    for key, shown in (("leads", "3"), ("pipeline", "50,000"), ("spend", "1,000")):
        assert figures[key] == {"text": shown, "visible": True}, key
    assert figures["roi"]["text"] == "50.0x" and figures["roi"]["visible"]
    assert seen["styled"] == "solid"  # the inline style passed the page's CSP (its hash)
    assert "What holds you back:" in seen["text"] and "meets the 20x target" in seen["text"]
    assert BRAVO not in seen["text"] and CHARLIE not in seen["text"]
    # CSP violations would show as console errors; none were reported
    complaints = [
        e
        for e in browser.events
        if e.get("method") == "Runtime.consoleAPICalled"
        or (e.get("method") == "Runtime.exceptionThrown")
    ]
    assert not complaints, complaints[:3]
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000
