"""Behind a reverse proxy the lead form's rate limit counts each visitor's own address
(X-Forwarded-For), but only when the proxy is trusted: a client that talks to the engine
directly cannot pick the address it is counted under."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests
from support.microsite_site import Site, approve

from partnercast.core.settings import load_settings
from partnercast.web.app import make_http_server

PAGE = "/p/northwind/P001/cloud-security/"


@pytest.fixture
def behind_proxy(site: Site, request: pytest.FixtureRequest) -> Iterator[str]:
    """A second server on the same engine, trusting proxies at ``request.param``."""
    server = make_http_server(
        site.a.engine,
        site.a.settings,
        "127.0.0.1",
        0,
        proxy_headers=True,
        forwarded_allow_ips=request.param,
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _post(base: str, client: str) -> int:
    """One lead form (invalid: no consent, so nothing is written) from ``client``."""
    with requests.Session() as http:
        page = http.get(base + PAGE, timeout=10).text
        token = page.split('name="token" value="', 1)[1].split('"', 1)[0]
        answer = http.post(
            base + PAGE + "lead",
            params={"lang": "en"},
            data={"token": token, "email": "a@b.example", "name": "A", "company": "B"},
            headers={"X-Forwarded-For": client},
            timeout=10,
        )
    return answer.status_code


@pytest.mark.parametrize("behind_proxy", ["127.0.0.1"], indirect=True)
def test_a_trusted_proxy_gives_each_visitor_its_own_limit(site: Site, behind_proxy: str) -> None:
    approve(site.a, "P001")
    assert [_post(behind_proxy, "203.0.113.7") for _ in range(6)] == [422] * 5 + [429]
    assert _post(behind_proxy, "198.51.100.9") == 422  # another visitor, its own window


@pytest.mark.parametrize("behind_proxy", ["192.0.2.1"], indirect=True)
def test_an_untrusted_peer_cannot_choose_its_address(site: Site, behind_proxy: str) -> None:
    approve(site.a, "P001")
    answers = [_post(behind_proxy, f"203.0.113.{n}") for n in range(6)]
    assert answers == [422] * 5 + [429]  # all counted as 127.0.0.1, the real peer


def test_without_proxy_headers_the_header_is_ignored(site: Site) -> None:
    approve(site.a, "P001")
    answers = [_post(site.base, f"203.0.113.{n}") for n in range(6)]
    assert answers == [422] * 5 + [429]


def test_the_rate_limit_is_the_microsites_own_setting(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    approve(site.a, "P001")
    monkeypatch.setenv("PARTNERCAST_MICROSITE_RATE_LIMIT", "2")  # [microsite] rate_limit
    server = make_http_server(site.a.engine, load_settings(), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert [_post(base, "") for _ in range(3)] == [422, 422, 429]
    finally:
        server.shutdown()
        server.server_close()
