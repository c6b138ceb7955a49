"""Microsite fixtures: the sample campaign with a landing page, two tenants, a live server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import Engine
from support import world as world_module
from support.microsite_site import Site, microsite_campaign
from support.world import build_world

from partnercast.web.app import make_http_server


@pytest.fixture
def campaign_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = microsite_campaign(tmp_path / "cloud-security")
    monkeypatch.setattr(world_module, "CAMPAIGN", folder)
    return folder


@pytest.fixture
def site(
    engine: Engine,
    tmp_path: Path,
    campaign_folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Site]:
    a = build_world(engine, tmp_path / "a", 9, slug="northwind")
    b = build_world(engine, tmp_path / "b", 9, slug="southwind")
    # The lead form's rate limit is the microsite's default: 5 a page per 10 minutes.
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
