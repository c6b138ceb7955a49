"""The CRM webhook over real HTTP: signed records are applied, anything else writes nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
import requests
from sqlmodel import func, select
from support.funnel_world import Funnel
from support.world import START

from partnercast.core.models import Event
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.funnel.crm_secret import SIGNATURE_HEADER, new_secret, sign
from partnercast.funnel.leads import Lead
from partnercast.funnel.models import CrmSecret
from partnercast.tenants.models import Tenant
from partnercast.web.app import make_http_server


@pytest.fixture
def server(funnel: Funnel) -> Iterator[str]:
    http = make_http_server(funnel.engine, funnel.world.settings, "127.0.0.1", 0)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        http.server_close()


@pytest.fixture
def secret(funnel: Funnel) -> str:
    with funnel.session() as session:
        return new_secret(session, funnel.world.settings, now=START)


def _crm_rows(funnel: Funnel) -> tuple[int, int]:
    with funnel.session() as session:
        leads = session.exec(select(func.count()).select_from(Lead)).one()
        events = session.exec(
            select(func.count()).select_from(Event).where(Event.source == "crm")
        ).one()
    return leads, events


BODY = json.dumps(
    {
        "leads": [
            {"partner": "P001", "email": "ann@client.example", "stage": "sql"},
            {"partner": "P002", "email": "ben@client.example", "stage": "won", "deal_value": 900},
            {"partner": "P002", "email": "x@client.example", "stage": "maybe"},
        ]
    }
).encode()


def _post(base: str, body: bytes, signature: str | None, slug: str = "northwind"):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return requests.post(f"{base}/crm/{slug}/leads", data=body, headers=headers, timeout=10)


def test_a_signed_call_is_applied(funnel: Funnel, server: str, secret: str) -> None:
    response = _post(server, BODY, sign(secret, BODY))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["created"] == 2
    assert answer["rejected"] == [{"index": 2, "reason": answer["rejected"][0]["reason"]}]
    assert "maybe" in answer["rejected"][0]["reason"]
    assert _crm_rows(funnel)[1] == 2
    again = _post(server, BODY, sign(secret, BODY)).json()
    assert again["unchanged"] == 2 and _crm_rows(funnel)[1] == 2


def test_the_secret_is_stored_encrypted(funnel: Funnel, secret: str) -> None:
    with funnel.session() as session:
        row = session.exec(select(CrmSecret)).one()
    assert secret not in row.sealed


@pytest.mark.parametrize(
    "signature",
    [None, "", "sha256=" + "0" * 64, "sha1=abc", "sha256=not-hex"],
    ids=["unsigned", "empty", "wrong", "other-scheme", "garbage"],
)
def test_unsigned_or_wrongly_signed_is_401_and_writes_nothing(
    funnel: Funnel, server: str, secret: str, signature: str | None
) -> None:
    before = _crm_rows(funnel)
    response = _post(server, BODY, signature)
    assert response.status_code == 401
    assert _crm_rows(funnel) == before


def test_a_signature_over_another_body_is_401(funnel: Funnel, server: str, secret: str) -> None:
    response = _post(server, BODY, sign(secret, BODY + b" "))
    assert response.status_code == 401


def test_malformed_json_is_400_with_a_reason(funnel: Funnel, server: str, secret: str) -> None:
    for body in (b"{not json", b'"a string"', b'{"leads": []}'):
        response = _post(server, body, sign(secret, body))
        assert response.status_code == 400, body
        assert response.json()["error"]
    assert _crm_rows(funnel)[1] == 0


def test_another_tenants_slug_with_this_tenants_secret_is_401(
    funnel: Funnel, server: str, secret: str
) -> None:
    with plain_session(funnel.engine) as session:
        other = Tenant(slug="southwind", name="Southwind", created_at=utcnow())
        session.add(other)
    with tenant_session(funnel.engine, other.id or 0) as session:
        new_secret(session, funnel.world.settings, now=START)  # southwind has its own secret
    response = _post(server, BODY, sign(secret, BODY), slug="southwind")
    assert response.status_code == 401
    with plain_session(funnel.engine) as session:
        assert session.exec(select(Tenant).where(Tenant.slug == "southwind")).one()
    with tenant_session(funnel.engine, other.id or 0) as session:
        assert session.exec(select(func.count()).select_from(Lead)).one() == 0
    assert _post(server, BODY, sign(secret, BODY), slug="nobody").status_code == 401


def test_a_tenant_without_a_secret_refuses_everything(funnel: Funnel, server: str) -> None:
    assert _post(server, BODY, sign("guess", BODY)).status_code == 401


def test_cli_prints_a_new_secret_once(funnel: Funnel, cli) -> None:
    out = cli("crm", "secret", "--tenant", "northwind")
    printed = out.stdout.split()[0]
    assert printed.startswith("whsec_")
    with funnel.session() as session:
        from partnercast.funnel.crm_secret import verify

        assert verify(session, funnel.world.settings, b"{}", sign(printed, b"{}"))


def test_a_missing_signature_says_how_to_sign(funnel: Funnel, server: str, secret: str) -> None:
    for slug in ("northwind", "nobody"):  # the same answer whether the tenant exists or not
        response = _post(server, BODY, None, slug=slug)
        assert response.status_code == 401
        error = response.json()["error"]
        assert error.startswith("unsigned:") and SIGNATURE_HEADER in error
        assert "partnercast crm secret" in error
    assert _post(server, BODY, "sha256=" + "0" * 64).json()["error"] == "signature not valid"
    assert _crm_rows(funnel) == (0, 0)


def test_every_record_rejected_is_422_and_writes_nothing(
    funnel: Funnel, server: str, secret: str
) -> None:
    body = json.dumps(
        [
            {"partner": "P001", "email": "a@client.example", "stage": "hot"},
            {"partner": "P404", "email": "b@client.example", "stage": "sql"},
        ]
    ).encode()
    response = _post(server, body, sign(secret, body))
    assert response.status_code == 422
    reasons = [r["reason"] for r in response.json()["rejected"]]
    assert "'hot'" in reasons[0] and "P404" in reasons[1]
    assert _crm_rows(funnel) == (0, 0)
