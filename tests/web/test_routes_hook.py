"""The routes hook: a plugin's router is mounted on the engine's application with the
engine as its host, and a plugin whose hook fails is reported while the others mount."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Annotated

import pytest
import requests
from conftest import make_tenant
from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.engine import Engine

from partnercast.core.settings import load_settings
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.funnel.crm_secret import SIGNATURE_HEADER, new_secret, signed_headers
from partnercast.plugins import hookimpl
from partnercast.plugins.host import Host, NotSigned
from partnercast.plugins.manager import Plugins, load_plugins
from partnercast.plugins.web import Now, RegisterRouter, json_answer, limited_body
from partnercast.web.app import make_http_server
from partnercast.web.host import EngineHost


class Receiver:
    """A third party's plugin: a signed endpoint, as docs/plugins.md shows it."""

    @hookimpl
    def register_routes(self, register: RegisterRouter, host: Host) -> None:
        routes = APIRouter()

        @routes.post("/receiver/{tenant}")
        def receive(
            tenant: str,
            request: Request,
            body: Annotated[bytes | None, Depends(limited_body(100))],
            now: Now,
        ) -> Response:
            if body is None:
                return json_answer(413, {"error": "body too large"})
            try:
                post = host.accept_signed(tenant, body, request.headers, source="receiver", now=now)
            except NotSigned as refused:
                return json_answer(refused.status, {"error": refused.reason})
            return json_answer(200, {"tenant": post.tenant_id, "bytes": len(body)})

        register(routes)


class Broken:
    @hookimpl
    def register_routes(self, register: RegisterRouter) -> None:
        raise RuntimeError("this plugin is broken")


@pytest.fixture
def plugins() -> Plugins:
    return load_plugins(extra=[Broken(), Receiver()])


@pytest.fixture
def base(engine: Engine, plugins: Plugins) -> Iterator[str]:
    server = make_http_server(engine, load_settings(), "127.0.0.1", 0, plugins=plugins)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_plugins_routes_reach_the_engine_through_the_host(
    engine: Engine, base: str, plugins: Plugins
) -> None:
    tenant_id = make_tenant(engine, "acme")
    with tenant_session(engine, tenant_id) as session:
        secret = new_secret(session, load_settings(), now=utcnow())
    body = b'{"hello": 1}'
    headers = signed_headers(secret, body, message_id="msg_1", sent_at=utcnow())
    signed = requests.post(f"{base}/receiver/acme", data=body, headers=headers)
    assert (signed.status_code, signed.json()) == (200, {"tenant": tenant_id, "bytes": 12})
    replayed = requests.post(f"{base}/receiver/acme", data=body, headers=headers)
    assert replayed.status_code == 409  # the host accepts each message id once
    forged = requests.post(
        f"{base}/receiver/acme", data=body, headers={**headers, SIGNATURE_HEADER: "v1,x"}
    )
    assert forged.status_code == 401
    assert requests.post(f"{base}/receiver/acme", data=b"x" * 101).status_code == 413
    # The built-ins' routes are mounted beside it, though another plugin's hook failed.
    assert requests.get(f"{base}/p/acme/P1/c/", timeout=5).status_code == 404
    assert requests.post(f"{base}/feedback/acme", data=b"x", timeout=5).status_code == 401


def test_a_failing_hook_is_reported_and_the_others_mount(
    engine: Engine, plugins: Plugins, caplog: pytest.LogCaptureFixture
) -> None:
    host = EngineHost(engine, load_settings(), plugins)
    routers = plugins.routers(host)
    paths = {getattr(route, "path", "") for router in routers for route in router.routes}
    assert "/receiver/{tenant}" in paths and "/feedback/{slug}" in paths
    assert "failed to register routes: this plugin is broken" in caplog.text
