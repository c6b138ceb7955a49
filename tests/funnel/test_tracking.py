"""Open and click tracking, end to end: a real send through tick() to the SMTP sink, the
received message parsed, its tracked links and pixel followed over real HTTP through the
engine's own server, and the events, rollups and `partnercast metrics` checked."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import time_machine
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from support.cli_tables import table
from support.world import CAMPAIGN, START, World, build_world, respond, run_days, start

from partnercast.campaigns import dispatching, tracking_links
from partnercast.campaigns.loader import read_campaign
from partnercast.campaigns.tracking_links import track_draft
from partnercast.channels.email.message import MessageTemplate
from partnercast.core import signing
from partnercast.core.models import Delivery, Dispatch, Event
from partnercast.core.settings import load_settings
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.funnel.metrics import funnel as funnel_rows
from partnercast.funnel.rollups import scan_rollups, stored_rollups
from partnercast.plugins import Draft, Recipient
from partnercast.plugins.manager import channel_template_suffixes
from partnercast.plugins.personalization import marker
from partnercast.tenants.models import Partner
from partnercast.web.app import make_http_server
from partnercast.web.tracking import PIXEL, Hit, bot_reason

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"
TRACKED_METRICS = ("opens", "opened", "clicks", "clicked")


@dataclass
class Served:
    base: str
    engine: Engine


@pytest.fixture
def served(any_engine: Engine) -> Iterator[Served]:
    """The engine's own HTTP server on a free port, before the world exists (its public
    base URL goes into the drafts)."""
    # Requests read the wall clock (the request's instant); the world sends on its own
    # simulated week, so the server lives in that week too (links expire: this test must
    # not depend on today's date).
    traveller = time_machine.travel(START + timedelta(days=1), tick=True)
    traveller.start()
    http = make_http_server(any_engine, load_settings(), "127.0.0.1", 0)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{http.server_port}", any_engine)
    finally:
        http.shutdown()
        http.server_close()
        traveller.stop()


def _world(served: Served, sink: SmtpSink, folder: Path, slug: str = "northwind") -> World:
    world = build_world(served.engine, folder, sink.port, slug=slug, web_base=served.base)
    with tenant_session(world.engine, world.tenant_id) as session:
        keys = sorted(p.external_id for p in session.exec(select(Partner)).all())
    respond(world, {keys[0]: "approve", keys[1]: "auto"})
    start(world)
    return world


def _html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return part.get_content()


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def _tracked_links(base: str, page: str) -> list[str]:
    return re.findall(re.escape(base) + r"/t/c/[^\"']+", page)


def _pixel(base: str, page: str) -> str:
    found = re.findall(r'<img src="(' + re.escape(base) + r'/t/o/[^"]+\.gif)"', page)
    assert len(found) == 1, found
    return found[0]


def _get(url: str, *, agent: str = BROWSER, method: str = "GET") -> requests.Response:
    return requests.request(
        method, url, headers={"User-Agent": agent}, allow_redirects=False, timeout=10
    )


def _events(world: World, kind: str) -> list[Event]:
    with tenant_session(world.engine, world.tenant_id) as session:
        return list(
            session.exec(select(Event).where(Event.kind == kind).order_by(col(Event.id))).all()
        )


def _all_tracking_events(engine: Engine, tenant_id: int) -> int:
    with tenant_session(engine, tenant_id) as session:
        rows = session.exec(select(Event).where(col(Event.kind).in_(("opened", "clicked")))).all()
        return len(rows)


def _tracked_rollups(world: World) -> tuple[dict[Any, Any], dict[Any, Any]]:
    with tenant_session(world.engine, world.tenant_id) as session:
        stored = {k: v for k, v in stored_rollups(session).items() if k[4] in TRACKED_METRICS}
        scanned = {k: v for k, v in scan_rollups(session).items() if k[4] in TRACKED_METRICS}
    return stored, scanned


def test_a_sent_email_is_tracked_end_to_end(
    served: Served, sink: SmtpSink, tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = _world(served, sink, tmp_path / "world")
    assert run_days(world, 0, 0) > 0
    message = sink.received.messages[0]
    page = _html(message)

    # Draft-time rewriting: every http(s) link goes through the tracker, nothing else does.
    links = _tracked_links(served.base, page)
    assert len(links) >= 1
    plain = re.findall(r'href="(https?://[^"]+)"', page)
    assert all(url.startswith(f"{served.base}/t/c/") for url in plain if "/u/" not in url)
    assert re.search(re.escape(served.base) + r"/u/[^\"']+", page)  # unsubscribe untouched
    recipient_parts = {link.rsplit("/", 1)[1] for link in links}
    recipient_parts.add(_pixel(served.base, page).rsplit("/", 1)[1].removesuffix(".gif"))
    assert len(recipient_parts) == 1  # one token per recipient, for its links and pixel
    text = _text(message)
    assert "/t/c/" not in text and "/t/o/" not in text
    assert "utm_medium=email" in text  # readable links, attributed by UTM

    # The pixel: a GIF, never cached, one event per hit, one unique per message.
    pixel = _pixel(served.base, page)
    first = _get(pixel)
    assert first.status_code == 200 and first.content == PIXEL
    assert first.headers["Content-Type"] == "image/gif"
    assert "no-store" in first.headers["Cache-Control"]
    assert _get(pixel).status_code == 200

    # A click: 302 to the target with UTM, an event attributed to the whole chain.
    response = _get(links[0])
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert target.scheme == "https" and target.netloc == "northwind.example"
    query = parse_qs(target.query)
    with tenant_session(world.engine, world.tenant_id) as session:
        delivery = session.exec(
            select(Delivery).where(Delivery.message_id == message["Message-ID"])
        ).one()
        dispatch = session.get(Dispatch, delivery.dispatch_id)
        partner = session.get(Partner, dispatch.partner_id)
    assert query["utm_source"] == [partner.external_id]
    assert query["utm_medium"] == ["email"]
    assert query["utm_campaign"] == ["cloud-security"]
    assert query["utm_content"] == ["intro"]
    # A HEAD request and a link scanner still get the redirect, flagged as bots.
    assert _get(links[0], method="HEAD").status_code == 302
    assert _get(links[-1], agent="Mozilla/5.0 (compatible; Barracuda Sentinel)").status_code == 302
    assert _get(links[-1]).status_code == 302

    opened = _events(world, "opened")
    clicked = _events(world, "clicked")
    assert len(opened) == 2 and [e.data["unique"] for e in opened] == [True, False]
    assert len(clicked) == 4
    assert [e.data["unique"] for e in clicked] == [True, False, False, False]
    assert [e.data.get("bot", "") for e in clicked] == ["", "head", "user agent barracuda", ""]
    for event in opened + clicked:
        assert event.partner_id == dispatch.partner_id
        assert event.dispatch_id == dispatch.id and event.contact_id == delivery.contact_id
        assert event.data["cycle_id"] == dispatch.cycle_id and event.data["touch"] == "intro"
        assert event.campaign_id is not None
    assert clicked[0].data["link"] == 0 and clicked[0].data["url"] == response.headers["Location"]

    # Rollups kept as the events arrived agree with a scan of the event log.
    stored, scanned = _tracked_rollups(world)
    assert stored == scanned
    with tenant_session(world.engine, world.tenant_id) as session:
        whole = funnel_rows(session, by="total")[0]
    assert (whole.counts["opened"], whole.counts["opens"]) == (1, 2)
    assert (whole.counts["clicked"], whole.counts["clicks"]) == (1, 4)
    assert whole.rates["open rate"] == pytest.approx(1 / whole.counts["delivered"])

    # The CLI shows them.
    monkeypatch.setenv(
        "PARTNERCAST_DATABASE_URL", world.engine.url.render_as_string(hide_password=False)
    )
    out = cli("metrics", "--tenant", "northwind", "--by", "total").stdout
    [row] = table(out, "email engagement by total (opened, clicked: unique)")
    names, cells = list(row), list(row.values())
    assert names[-6:] == ["opened", "opens", "clicked", "clicks", "open rate", "click rate"]
    assert cells[-6:-2] == ["1", "2", "1", "4"]


def test_a_click_with_no_recorded_open_counts_as_an_open(
    served: Served, sink: SmtpSink, tmp_path: Path
) -> None:
    world = _world(served, sink, tmp_path / "world")
    run_days(world, 0, 0)
    first, second = sink.received.messages[:2]
    link, pixel = _tracked_links(served.base, _html(first))[0], _pixel(served.base, _html(first))

    # A link scanner's click implies nothing; the reader's click (images blocked) does.
    assert _get(link, agent="Mozilla/5.0 (compatible; Barracuda Sentinel)").status_code == 302
    assert not _events(world, "opened")
    assert _get(link).status_code == 302
    opened = _events(world, "opened")
    assert [(e.data["unique"], e.data.get("implied")) for e in opened] == [(True, "click")]
    click = _events(world, "clicked")[-1]
    assert (opened[0].dispatch_id, opened[0].contact_id) == (click.dispatch_id, click.contact_id)
    assert opened[0].data["cycle_id"] == click.data["cycle_id"]
    # The images load later: a hit, but the message was already counted opened.
    assert _get(pixel).status_code == 200 and _get(link).status_code == 302
    assert [e.data["unique"] for e in _events(world, "opened")] == [True, False]

    # A message opened first and then clicked gets no second, implied open.
    assert _get(_pixel(served.base, _html(second))).status_code == 200
    assert _get(_tracked_links(served.base, _html(second))[0]).status_code == 302
    assert len(_events(world, "opened")) == 3

    stored, scanned = _tracked_rollups(world)
    assert stored == scanned
    with tenant_session(world.engine, world.tenant_id) as session:
        whole = funnel_rows(session, by="total")[0]
    assert (whole.counts["opened"], whole.counts["clicked"]) == (2, 2)
    assert whole.counts["opened"] >= whole.counts["clicked"]
    assert (whole.counts["opens"], whole.counts["clicks"]) == (3, 4)


def test_forged_damaged_and_unsigned_links_are_a_neutral_404(
    served: Served, sink: SmtpSink, tmp_path: Path
) -> None:
    world = _world(served, sink, tmp_path / "world")
    run_days(world, 0, 0)
    page = _html(sink.received.messages[0])
    link = _tracked_links(served.base, page)[0]
    pixel = _pixel(served.base, page)
    link_token, rcpt_token = link.split("/t/c/")[1].split("/")
    secret = load_settings().secret_key.get_secret_value()
    forged_target = URLSafeTimedSerializer("not-the-secret", salt="partnercast.track.link").dumps(
        [world.tenant_id, 1, "cloud-security", "intro", 0, "https://evil.example/"]
    )
    wrong_purpose = URLSafeTimedSerializer(secret, salt="partnercast.unsubscribe").dumps(
        [world.tenant_id, 1, "cloud-security", "intro", 0, "https://evil.example/"]
    )
    flipped = link_token[:-3] + ("A" if link_token[-3] != "A" else "B") + link_token[-2:]
    bad = [
        f"{served.base}/t/c/{flipped}/{rcpt_token}",
        f"{served.base}/t/c/{forged_target}/{rcpt_token}",
        f"{served.base}/t/c/{wrong_purpose}/{rcpt_token}",
        f"{served.base}/t/c/{link_token}/{rcpt_token[:-2]}xx",
        f"{served.base}/t/c/{link_token}/",
        f"{served.base}/t/c/https%3A%2F%2Fevil.example/{rcpt_token}",
        f"{served.base}/t/c/{link_token}/{rcpt_token}?url=https://evil.example",
        pixel.replace(".gif", "x.gif"),
        f"{served.base}/t/o/nothing.gif",
    ]
    for url in bad[:-3] + bad[-2:]:
        response = _get(url)
        assert response.status_code == 404, (url, response.status_code, response.text[:200])
        assert "Location" not in response.headers and "evil" not in response.text
    # Extra query parameters do not change where a valid link goes.
    assert "evil" not in _get(bad[-3]).headers["Location"]
    assert requests.post(link, timeout=10, allow_redirects=False).status_code == 404
    assert len(_events(world, "clicked")) == 1
    # The one genuine click implied the open the pixel never reported.
    assert [e.data.get("implied") for e in _events(world, "opened")] == ["click"]


def test_a_token_of_one_tenant_never_writes_in_another(
    served: Served, sink: SmtpSink, tmp_path: Path
) -> None:
    north = _world(served, sink, tmp_path / "north", "northwind")
    run_days(north, 0, 0)
    sent_north = sink.received.count
    south = _world(served, sink, tmp_path / "south", "southwind")
    run_days(south, 0, 0)

    def first_of(tenant: World, messages: list[EmailMessage]) -> tuple[str, str, str]:
        with tenant_session(tenant.engine, tenant.tenant_id) as session:
            ids = {d.message_id for d in session.exec(select(Delivery)).all()}
        message = next(m for m in messages if m["Message-ID"] in ids)
        page = _html(message)
        link_token, rcpt_token = _tracked_links(served.base, page)[0].split("/t/c/")[1].split("/")
        return link_token, rcpt_token, _pixel(served.base, page)

    messages = sink.received.messages
    north_link, north_rcpt, _ = first_of(north, messages[:sent_north])
    south_link, south_rcpt, south_pixel = first_of(south, messages[sent_north:])
    # Tamper: the north recipient token re-labelled for the south tenant (signature kept).
    value, stamp, signature = north_rcpt.rsplit(".", 2)
    _, dispatch, contact = value.split(".")
    relabelled = f"{south.tenant_id}.{dispatch}.{contact}.{stamp}.{signature}"
    # Valid tokens of two tenants combined, and a north dispatch signed for south's tenant.
    secret = load_settings().secret_key.get_secret_value()
    signer = TimestampSigner(secret, salt="partnercast.track.recipient")
    crossed = signer.sign(f"{south.tenant_id}.{dispatch}.{contact}").decode()
    for url in (
        f"{served.base}/t/c/{north_link}/{south_rcpt}",
        f"{served.base}/t/c/{south_link}/{north_rcpt}",
        f"{served.base}/t/c/{north_link}/{relabelled}",
        f"{served.base}/t/o/{relabelled}.gif",
        f"{served.base}/t/c/{south_link}/{crossed}",
        f"{served.base}/t/o/{crossed}.gif",
    ):
        assert _get(url).status_code == 404, url
    assert _all_tracking_events(served.engine, north.tenant_id) == 0
    assert _all_tracking_events(served.engine, south.tenant_id) == 0
    # Each tenant's own links still work, and write in that tenant only.
    assert _get(f"{served.base}/t/c/{south_link}/{south_rcpt}").status_code == 302
    assert _get(south_pixel).status_code == 200
    # The click, the open it implies (no pixel yet), the pixel's own hit.
    assert _all_tracking_events(served.engine, south.tenant_id) == 3
    assert _all_tracking_events(served.engine, north.tenant_id) == 0


def test_links_are_signed_once_per_draft_and_each_message_costs_one_token(
    served: Served, sink: SmtpSink, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = _world(served, sink, tmp_path / "world")
    calls = {"link": 0, "recipient": 0, "drafts": 0, "links_in_drafts": 0}
    real_sign = tracking_links.sign
    real_token = dispatching.recipient_token
    real_track = tracking_links.track_draft

    def counting_sign(*args: Any, **kwargs: Any) -> str:
        calls["link"] += 1
        return real_sign(*args, **kwargs)

    def counting_token(*args: Any, **kwargs: Any) -> str:
        calls["recipient"] += 1
        return real_token(*args, **kwargs)

    def counting_track(*args: Any, **kwargs: Any) -> Draft:
        draft = real_track(*args, **kwargs)
        calls["drafts"] += 1
        calls["links_in_drafts"] += draft.meta["tracking"]["links"]
        return draft

    monkeypatch.setattr(tracking_links, "sign", counting_sign)
    monkeypatch.setattr(dispatching, "recipient_token", counting_token)
    monkeypatch.setattr(tracking_links, "track_draft", counting_track)
    sent = run_days(world, 0, 0)
    assert sent == sink.received.count > 10
    assert calls["recipient"] == sent
    assert 1 <= calls["drafts"] <= 2 * 2  # two partners, at most two locales each
    assert calls["link"] == calls["links_in_drafts"] >= calls["drafts"]
    assert calls["link"] < sent  # per draft, not per message


def _sample_draft(links: int) -> Draft:
    nonce = "a1b2c3d4e5f6"
    body = "".join(
        f'<p><a href="https://vendor.example/p{i}?x=1&amp;y=2">L{i}</a></p>' for i in range(links)
    )
    page = (
        "<html><body>"
        f"{body}"
        '<a href="mailto:sales@vendor.example">mail</a>'
        f'<a href="{marker(nonce, "unsubscribe_url")}">unsubscribe</a>'
        f'<a href="https://vendor.example/me?e={marker(nonce, "email")}">mine</a>'
        '<a data-pc-track="no" href="https://vendor.example/private">private</a>'
        '<a href="http://127.0.0.1:9/t/c/already/there">tracked</a>'
        "</body></html>"
    )
    text = "Read https://vendor.example/p0. Thanks"
    return Draft("email", "intro", "en", nonce, {"subject": "Hi", "html": page, "text": text})


@dataclass
class _View:
    tenant: Any
    partner: Any
    spec: Any


def _view(tracking: dict[str, bool] | None, tmp_path: Path) -> Any:
    folder = tmp_path / "campaign"
    shutil.copytree(CAMPAIGN, folder)
    if tracking is not None:
        with (folder / "campaign.yaml").open("a", encoding="utf-8") as spec_file:
            spec_file.write("\ntracking:\n")
            for key, value in tracking.items():
                spec_file.write(f"  {key}: {'true' if value else 'false'}\n")
    spec = read_campaign(folder, channel_template_suffixes()).spec
    tenant = type("T", (), {"id": 1})()
    partner = type("P", (), {"id": 3, "external_id": "P003"})()
    return _View(tenant, partner, spec)


def test_the_rewriting_rules(tmp_path: Path) -> None:
    settings = load_settings(public_base_url="http://127.0.0.1:9/")
    view = _view(None, tmp_path)
    touch = view.spec.touches[0]
    draft = track_draft(settings, _sample_draft(3), view, touch, now=utcnow())
    page = draft.parts["html"]
    tracked = re.findall(r'href="(http://127\.0\.0\.1:9/t/c/[^"]+)"', page)
    assert len(tracked) == 4  # three links + the already-tracked one, left as it was
    assert draft.meta["tracking"] == {"opens": True, "clicks": True, "links": 3}
    assert 'href="mailto:sales@vendor.example"' in page
    assert f'href="{marker(draft.nonce, "unsubscribe_url")}"' in page
    assert "https://vendor.example/me?e=" in page  # a per-recipient URL stays as it is
    assert 'href="https://vendor.example/private"' in page and "data-pc-track" not in page
    recipient = marker(draft.nonce, "tracking")
    assert all(url.endswith(f"/{recipient}") for url in tracked[:3])
    assert page.index(f"/t/o/{recipient}.gif") < page.index("</body>")
    payload = tracking_links.read_link_token(settings, tracked[0].split("/")[5], now=utcnow())
    assert payload.target == (
        "https://vendor.example/p0?x=1&y=2&utm_source=P003&utm_medium=email"
        "&utm_campaign=cloud-security&utm_content=intro"
    )
    assert draft.parts["text"].startswith("Read https://vendor.example/p0?utm_source=P003")
    assert draft.parts["text"].endswith(". Thanks")


def test_a_utm_parameter_already_present_is_kept(tmp_path: Path) -> None:
    settings = load_settings(public_base_url="http://127.0.0.1:9")
    view = _view(None, tmp_path)
    draft = _sample_draft(0)
    draft.parts["html"] = '<body><a href="https://v.example/?utm_source=newsletter">x</a></body>'
    page = track_draft(settings, draft, view, view.spec.touches[0], now=utcnow()).parts["html"]
    token = re.findall(r"/t/c/([^/]+)/", page)[0]
    target = tracking_links.read_link_token(settings, token, now=utcnow()).target
    assert parse_qs(urlsplit(target).query)["utm_source"] == ["newsletter"]


def test_a_campaign_can_turn_opens_or_clicks_off(tmp_path: Path) -> None:
    settings = load_settings(public_base_url="http://127.0.0.1:9")
    no_opens = _view({"opens": False}, tmp_path / "a")
    assert no_opens.spec.tracking.opens is False and no_opens.spec.tracking.clicks is True
    page = track_draft(settings, _sample_draft(2), no_opens, no_opens.spec.touches[0], now=utcnow())
    assert "/t/o/" not in page.parts["html"] and page.meta["tracking"]["links"] == 2
    no_clicks = _view({"clicks": False}, tmp_path / "b")
    draft = track_draft(
        settings, _sample_draft(2), no_clicks, no_clicks.spec.touches[0], now=utcnow()
    )
    assert "/t/o/" in draft.parts["html"] and "/t/c/" not in draft.parts["html"].replace(
        "/t/c/already", ""
    )
    assert "utm_" not in draft.parts["html"] + draft.parts["text"]
    assert _view(None, tmp_path / "c").spec.tracking is None


def test_the_per_recipient_path_costs_one_token_whatever_the_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Personalising a draft with 40 tracked links signs nothing per link: the message
    grows by the same recipient token in each link, and no signature is made."""
    settings = load_settings(public_base_url="http://127.0.0.1:9")
    view = _view(None, tmp_path)
    draft = track_draft(settings, _sample_draft(40), view, view.spec.touches[0], now=utcnow())
    signed: list[int] = []
    monkeypatch.setattr(tracking_links, "sign", lambda *a, **k: signed.append(1) or "")
    template = MessageTemplate(
        draft, from_name="P", from_email="p@partner.example", clock=lambda: datetime.now(UTC)
    )
    token = signing.recipient_token(
        settings, tenant_id=1, dispatch_id=2, contact_id=3, now=utcnow()
    )
    values = {"email": "c@x.example", "unsubscribe_url": "http://127.0.0.1:9/u/x"}
    recipient = Recipient(1, 3, "c@x.example", "<m@x>", {**values, "tracking": token})
    untracked = Recipient(1, 3, "c@x.example", "<m@x>", values)
    assert len(template.render(recipient)) - len(template.render(untracked)) < 41 * len(token) * 2
    assert not signed
    assert tracking_links.read_recipient_token(settings, token, now=utcnow()).contact_id == 3


def test_bots_and_prefetch_are_flagged() -> None:
    now = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
    sent = now - timedelta(seconds=1)
    assert bot_reason(Hit("clicked", "HEAD", BROWSER, now), None) == "head"
    assert bot_reason(Hit("clicked", "GET", "", now), None) == "no user agent"
    assert bot_reason(Hit("opened", "GET", "python-requests/2.32", now), None).startswith("user")
    assert bot_reason(Hit("clicked", "GET", BROWSER, now), sent) == "within 2 s of sending"
    assert bot_reason(Hit("clicked", "GET", BROWSER, now), now - timedelta(seconds=5)) == ""
    assert bot_reason(Hit("clicked", "GET", BROWSER, now), now + timedelta(hours=1)) == ""
    naive = sent.replace(tzinfo=None)
    assert bot_reason(Hit("clicked", "GET", BROWSER, now), naive) == "within 2 s of sending"


@pytest.mark.parametrize(
    "payload",
    [[1, 22, 333], ["a" * 300], {"x": "é", "b": [1, 2]}, [1, 2, "email", "https://x/?a=b", 0]],
)
def test_tokens_made_on_the_send_path_are_itsdangerous_own(
    payload: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """core.signing.sign and recipient_token build their tokens without itsdangerous'
    per-call machinery (speed): they must be byte for byte what itsdangerous makes, so
    that every link already sent, and itsdangerous' checks, keep working."""

    settings = load_settings()
    secret = settings.secret_key.get_secret_value()
    monkeypatch.setattr("time.time", lambda: 1_790_000_000.5)  # itsdangerous reads the clock
    signed_at = datetime.fromtimestamp(1_790_000_000.5, UTC)  # ours is given the same second
    expected = URLSafeTimedSerializer(secret, salt="partnercast.unsubscribe").dumps(payload)
    assert signing.sign(settings, "unsubscribe", payload, now=signed_at) == expected
    assert (
        signing.unsign(settings, "unsubscribe", expected, max_age_seconds=60, now=signed_at)
        == payload
    )
    token = signing.recipient_token(
        settings, tenant_id=1, dispatch_id=22, contact_id=333, now=signed_at
    )
    signer = TimestampSigner(secret, salt="partnercast.track.recipient")
    assert token == signer.sign("1.22.333").decode()
    with pytest.raises(signing.InvalidToken):  # another purpose's key: refused
        signing.unsign(settings, "track.link", expected, max_age_seconds=60, now=signed_at)
