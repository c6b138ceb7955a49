"""The tracker answers a hit only once it is recorded: `partnercast serve` killed with
SIGKILL in the middle of a burst of opens and clicks loses none that it answered, on
SQLite and PostgreSQL, and what it recorded keeps the rollups equal to the event log."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from support.world import World, build_world, respond, run_days, start

from partnercast.campaigns.tracking_links import LINK_PURPOSE
from partnercast.core.models import Delivery, Dispatch, Event
from partnercast.core.settings import load_settings
from partnercast.core.signing import recipient_token, sign
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.funnel.rollups import scan_rollups, stored_rollups
from partnercast.tenants.models import Partner

READY = re.compile(r"serving on http://127\.0\.0\.1:(\d+)")
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
TRACKED = ("opens", "opened", "clicks", "clicked")


@contextmanager
def serving(tmp_path: Path, url: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "partnercast", "serve", "--port", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PARTNERCAST_DATABASE_URL": url, "COLUMNS": "200"},
        )
    try:
        deadline = time.monotonic() + 60
        while not (found := READY.search(log.read_text())):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        yield process, f"http://127.0.0.1:{found.group(1)}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _sent_world(engine: Engine, sink: SmtpSink, folder: Path) -> World:
    world = build_world(engine, folder, sink.port)
    with tenant_session(world.engine, world.tenant_id) as session:
        keys = sorted(p.external_id for p in session.exec(select(Partner)).all())
    respond(world, dict.fromkeys(keys, "approve"))
    start(world)
    assert run_days(world, 0, 0) > 20
    return world


def _hits(world: World) -> list[tuple[str, int, int, str]]:
    """(kind, dispatch, contact, path) of a pixel hit or a click for every message sent,
    with the tokens the engine makes (stamped now: the server checks their age on the
    real clock)."""
    settings = load_settings()
    now = utcnow()
    with tenant_session(world.engine, world.tenant_id) as session:
        rows = session.exec(
            select(Delivery.dispatch_id, Delivery.contact_id, Dispatch.partner_id).join(
                Dispatch, col(Dispatch.id) == Delivery.dispatch_id
            )
        ).all()
    hits = []
    for n, (dispatch, contact, partner) in enumerate(rows):
        rcpt = recipient_token(
            settings, tenant_id=world.tenant_id, dispatch_id=dispatch, contact_id=contact, now=now
        )
        if n % 2:
            link = sign(
                settings,
                LINK_PURPOSE,
                [world.tenant_id, partner, "cloud-security", "intro", 0, "https://example.com/"],
                now=now,
            )
            hits.append(("clicked", dispatch, contact, f"/t/c/{link}/{rcpt}"))
        else:
            hits.append(("opened", dispatch, contact, f"/t/o/{rcpt}.gif"))
    return hits


@pytest.mark.crash
def test_a_killed_tracker_loses_no_hit_it_answered(
    any_engine: Engine, sink: SmtpSink, tmp_path: Path
) -> None:
    world = _sent_world(any_engine, sink, tmp_path / "world")
    hits = _hits(world)
    url = any_engine.url.render_as_string(hide_password=False)
    answered: Counter[tuple[str, int, int]] = Counter()
    lock = threading.Lock()

    with serving(tmp_path, url) as (process, base):
        stop = threading.Event()

        def reader(mine: list[tuple[str, int, int, str]]) -> None:
            with requests.Session() as client:
                while not stop.is_set():
                    for kind, dispatch, contact, path in mine:
                        try:
                            response = client.get(
                                base + path,
                                headers={"User-Agent": BROWSER},
                                allow_redirects=False,
                                timeout=30,
                            )
                        except requests.RequestException:
                            return  # the server is gone
                        assert response.status_code == (302 if kind == "clicked" else 200)
                        with lock:
                            answered[(kind, dispatch, contact)] += 1

        threads = [
            threading.Thread(target=reader, args=(hits[n::16],), daemon=True) for n in range(16)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while sum(answered.values()) < 2 * len(hits) and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)  # in the middle of the burst
        process.wait()
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    assert sum(answered.values()) >= 2 * len(hits)
    with tenant_session(world.engine, world.tenant_id) as session:
        events = session.exec(
            select(Event.kind, Event.dispatch_id, Event.contact_id, Event.data).where(
                col(Event.kind).in_(("opened", "clicked"))
            )
        ).all()
        stored = {k: v for k, v in stored_rollups(session).items() if k[4] in TRACKED}
        scanned = {k: v for k, v in scan_rollups(session).items() if k[4] in TRACKED}
    recorded = Counter(
        (kind, dispatch, contact)
        for kind, dispatch, contact, data in events
        if not data.get("implied")
    )
    lost = {key: n - recorded[key] for key, n in answered.items() if recorded[key] < n}
    assert not lost, f"answered but not recorded: {list(lost.items())[:5]}"
    # Hits in flight when it died may be recorded too, never more than were sent.
    assert sum(recorded.values()) - sum(answered.values()) <= 16
    assert stored == scanned
    uniques = Counter(kind for kind, _, _, data in events if data["unique"])
    assert uniques["clicked"] == len({k for k in recorded if k[0] == "clicked"})

    with serving(tmp_path, url) as (_, base):  # it starts again and goes on counting
        path = hits[0][3]
        answer = requests.get(base + path, headers={"User-Agent": BROWSER}, timeout=30)
        assert answer.status_code == 200
