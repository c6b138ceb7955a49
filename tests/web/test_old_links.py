"""Links in mail already sent keep working: every kind of link the engine has put in a
message or handed to a partner, made with the unchanged signing code, is replayed over
real HTTP against the engine's own server, and must get the answers the hand-written
WSGI server gave (recorded in fixtures/old_answers.json from that server before the move
to FastAPI): status, Location and every header but Date, Server and Content-Length case,
and the body where it holds no clock.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests
import time_machine
from sqlalchemy.engine import Engine
from sqlmodel import select
from support import world as world_module
from support.microsite_site import approve, microsite_campaign
from support.world import START, World, build_world, respond, run_days, start

from partnercast.core.models import Delivery
from partnercast.core.signing import sign
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.funnel.partner_link import make_token
from partnercast.tenants.models import Partner
from partnercast.tenants.suppressions import UNSUBSCRIBE
from partnercast.web.app import make_http_server

ANSWERS = Path(__file__).parent / "fixtures" / "old_answers.json"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"
SKIPPED_HEADERS = {"date", "server", "connection", "keep-alive", "transfer-encoding"}


@pytest.fixture
def served(engine: Engine) -> Iterator[tuple[str, Any]]:
    from partnercast.core.settings import load_settings

    # Requests read the wall clock (the request's instant); the world sends on its own
    # simulated week, so the server lives in that week too (links expire: this test must
    # not depend on today's date).
    traveller = time_machine.travel(START + timedelta(days=1), tick=True)
    traveller.start()
    http = make_http_server(engine, load_settings(), "127.0.0.1", 0)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}", http
    finally:
        http.shutdown()
        http.server_close()
        traveller.stop()


def _html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def _links(world: World, base: str, message: EmailMessage) -> dict[str, str]:
    """The links of one sent message, and the ones made for its recipient and partner."""
    page = _html(message)
    unsubscribe = re.search(r"<(http[^>]+)>", str(message["List-Unsubscribe"]))
    assert unsubscribe
    click = re.findall(re.escape(base) + r"/t/c/[^\"']+", page)[0]
    pixel = re.findall(r'<img src="(' + re.escape(base) + r'/t/o/[^"]+\.gif)"', page)[0]
    with tenant_session(world.engine, world.tenant_id) as session:
        delivery = session.exec(
            select(Delivery).where(Delivery.message_id == message["Message-ID"])
        ).one()
        partner = session.exec(select(Partner).where(Partner.external_id == "P001")).one()
    # The unsubscribe token of messages sent before the recipient token (a signed list).
    old_unsubscribe = sign(
        world.settings,
        UNSUBSCRIBE,
        [world.tenant_id, delivery.contact_id, delivery.dispatch_id],
        now=utcnow(),
    )
    partner_token = make_token(world.settings, world.tenant_id, partner, now=utcnow())
    return {
        "unsubscribe": unsubscribe.group(1),
        "old-unsubscribe": f"{base}/u/{old_unsubscribe}",
        "click": click,
        "pixel": pixel,
        "partner": f"{base}/partner/{partner_token}",
        "page": f"{base}/p/northwind/P001/cloud-security/",
    }


def _answer(response: requests.Response, base: str, keep_body: bool) -> dict[str, Any]:
    headers = {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower() not in SKIPPED_HEADERS
    }
    if "location" in headers:
        headers["location"] = headers["location"].replace(base, "BASE")
    body = ""
    if keep_body:
        body = re.sub(r'(/u/|name="token" value=")[A-Za-z0-9_.\-]+', r"\1TOKEN", response.text)
        body = body.replace(base, "BASE")
    return {"status": response.status_code, "headers": headers, "body": body}


def _replay(links: dict[str, str], base: str) -> dict[str, Any]:
    http = requests.Session()
    http.headers["User-Agent"] = BROWSER

    def ask(method: str, url: str, keep_body: bool = True, **kwargs: Any) -> dict[str, Any]:
        response = http.request(method, url, allow_redirects=False, timeout=10, **kwargs)
        return _answer(response, base, keep_body)

    one_click = {"data": b"List-Unsubscribe=One-Click"}
    form = {"headers": {"Content-Type": "application/x-www-form-urlencoded"}}
    return {
        "pixel": ask("GET", links["pixel"], keep_body=False),
        "pixel HEAD": ask("HEAD", links["pixel"]),
        "click": ask("GET", links["click"]),
        "click HEAD": ask("HEAD", links["click"]),
        "click POST": ask("POST", links["click"]),
        "click forged": ask("GET", links["click"][:-3] + "xyz"),
        "unsubscribe GET": ask("GET", links["unsubscribe"]),
        "unsubscribe PUT": ask("PUT", links["unsubscribe"]),
        "unsubscribe POST": ask("POST", links["unsubscribe"], **one_click, **form),
        "old unsubscribe POST": ask("POST", links["old-unsubscribe"], **one_click, **form),
        "unsubscribe forged": ask("POST", base + "/u/WyIxIiwxLDFd.forged", **one_click, **form),
        "partner": ask("GET", links["partner"], keep_body=False),
        "partner forged": ask("GET", links["partner"][:-4] + "abcd"),
        "partner POST": ask("POST", links["partner"]),
        "page": ask("GET", links["page"]),
        "page css": ask("GET", links["page"] + "site.css"),
        "page pixel": ask("GET", links["page"] + "pixel.gif", keep_body=False),
        "page thanks": ask("GET", links["page"] + "thanks?lang=de"),
        "page unknown": ask("GET", base + "/p/northwind/P003/cloud-security/"),
        "page unknown sub": ask("GET", links["page"] + "nope"),
        "page wrong method": ask("DELETE", links["page"]),
        "crm GET": ask("GET", base + "/crm/northwind/leads"),
        "crm unsigned": ask("POST", base + "/crm/northwind/leads", data=b"{}"),
        "crm other path": ask("POST", base + "/crm/northwind/other", data=b"{}"),
        "feedback GET": ask("GET", base + "/feedback/northwind"),
        "feedback unsigned": ask("POST", base + "/feedback/northwind", data=b"x"),
        "healthz": ask("GET", base + "/healthz"),
        "unknown": ask("GET", base + "/nothing/here"),
    }


def test_links_made_before_the_move_get_the_same_answers(
    served: tuple[str, Any],
    engine: Engine,
    sink: SmtpSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, _server = served
    folder = microsite_campaign(tmp_path / "cloud-security")
    monkeypatch.setattr(world_module, "CAMPAIGN", folder)
    world = build_world(engine, tmp_path / "world", sink.port, web_base=base)
    respond(world, {"P001": "approve", "P002": "auto"})
    approve(world, "P001")
    start(world)
    assert run_days(world, 0, 0) > 0
    message = next(m for m in sink.received.messages if "/t/o/" in _html(m))
    answers = _replay(_links(world, base, message), base)
    expected = json.loads(ANSWERS.read_text())
    assert sorted(answers) == sorted(expected)
    for name, answer in expected.items():
        assert _comparable(name, answers[name]) == _comparable(name, answer), name


def _comparable(name: str, answer: dict[str, Any]) -> dict[str, Any]:
    """The answer without what depends on the world's data (which address a message went
    to, the partner's numbers): such bodies, and so their length, are compared shapes."""
    body = re.sub(r"[\w.+-]+@[\w-]+(\.[\w-]+)+", "EMAIL", answer["body"])
    headers = dict(answer["headers"])
    if body != answer["body"] or "BASE" in body or "TOKEN" in body or name == "partner":
        headers.pop("content-length", None)
    return {**answer, "body": body, "headers": headers}
