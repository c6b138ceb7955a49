"""Fixtures of the API tests: the world (tests/support/api_world.py) and the engine's own
HTTP server on a free port."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from support.api_world import Client, Side, build_side

from partnercast.core.settings import load_settings
from partnercast.web.app import make_http_server


@pytest.fixture
def sides(engine: Engine, tenant_a: int, tenant_b: int) -> tuple[Side, Side]:
    return build_side(engine, tenant_a, "A"), build_side(engine, tenant_b, "B")


@pytest.fixture
def server(engine: Engine) -> Iterator[str]:
    """The engine's own HTTP server (uvicorn) on a free port: its base URL."""
    http = make_http_server(engine, load_settings(), "127.0.0.1", 0)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        http.server_close()


@pytest.fixture
def client(server: str) -> Iterator[Client]:
    api = Client(f"{server}/api/v1")
    yield api
    api.http.close()
