"""A runaway template cannot take down the web server that renders it.

The landing page of one tenant's stored campaign version is made a memory bomb, then a
CPU burner (a version stored before the launch checks, as if it had slipped through): the
server, running in this test's process as ``partnercast serve`` runs it, answers that page
with an error within the render limits, keeps serving the other tenant's page, and this
process's own peak memory does not grow with the bomb (the render ran in a render process).
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import Engine
from sqlmodel import select
from support import world as world_module
from support.microsite_site import Site, approve, microsite_campaign
from support.world import World, build_world

from partnercast.campaigns.models import CampaignVersion
from partnercast.core.tenancy import tenant_session
from partnercast.web.app import make_http_server

LANDING = "microsite/landing."
BOMBS = [
    pytest.param("{% set s = 'x' * 1999999 %}{{ ([s] * 400)|map('upper')|join }}", id="memory"),
    pytest.param("{{ ('a ' * 999999)" + "|wordwrap(1)" * 20 + "|length }}", id="cpu"),
]


@pytest.fixture
def site(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setattr(world_module, "CAMPAIGN", microsite_campaign(tmp_path / "cloud-security"))
    a = build_world(engine, tmp_path / "a", 3, slug="northwind")
    b = build_world(engine, tmp_path / "b", 3, slug="southwind")
    server = make_http_server(engine, a.settings, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.server_port}"
    for world in (a, b):
        world.settings.public_base_url = base
    monkeypatch.setenv("PARTNERCAST_PUBLIC_BASE_URL", base)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with requests.Session() as http:
            yield Site(a, b, base, http)
    finally:
        server.shutdown()
        server.server_close()


def _replace_landing(world: World, source: str) -> None:
    with tenant_session(world.engine, world.tenant_id) as session:
        version = session.exec(select(CampaignVersion)).one()
        version.templates = {
            name: source if name.startswith(LANDING) else text
            for name, text in version.templates.items()
        }


def _peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.mark.parametrize("bomb", BOMBS)
def test_a_runaway_landing_page_fails_alone_and_the_server_keeps_serving(
    site: Site, bomb: str
) -> None:
    approve(site.a, "P001")
    approve(site.b, "P001")
    assert site.get("northwind", "P001").status_code == 200  # served before the bomb
    _replace_landing(site.a, bomb)
    peak = _peak_bytes()

    started = time.monotonic()
    answer = site.http.get(site.url("northwind", "P001"), timeout=120)
    took = time.monotonic() - started

    assert answer.status_code >= 500
    assert "Traceback" not in answer.text
    assert took < 60  # a hang guard: the render process's CPU limit ends it in ~1.25 s of CPU
    assert _peak_bytes() - peak < 64 * 1024 * 1024  # the 800 MB bomb went off elsewhere
    # A new connection: the server closed the one that got the error.
    other = requests.get(site.url("southwind", "P001"), timeout=10)
    assert other.status_code == 200
    assert "Team P001" in other.text
