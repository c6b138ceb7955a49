"""The CRM webhook's payload within bounds (issue 12): deal values finite and at most a
trillion, dates in 1970-2199, lead ids that fit the database, and JSON nested too deeply
for the parser; each refused with its reason, nothing written, never a 500."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator

import pytest
import requests
from sqlmodel import func, select
from support.funnel_world import Funnel
from support.world import START

from partnercast.core.models import Event
from partnercast.core.timeutil import utcnow
from partnercast.funnel.crm_secret import new_secret, signed_headers
from partnercast.funnel.leads import Lead
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


def _post(base: str, secret: str, body: bytes) -> requests.Response:
    headers = signed_headers(secret, body, message_id=f"msg_{uuid.uuid4().hex}", sent_at=utcnow())
    return requests.post(
        f"{base}/crm/northwind/leads",
        data=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=10,
    )


def _crm_rows(funnel: Funnel) -> tuple[int, int]:
    with funnel.session() as session:
        leads = session.exec(select(func.count()).select_from(Lead)).one()
        events = session.exec(
            select(func.count()).select_from(Event).where(Event.source == "crm")
        ).one()
    return leads, events


RECORD = {"partner": "P001", "email": "ann@client.example", "stage": "won"}
OUT_OF_BOUNDS = [
    ({"deal_value": 1e308}, "must be at most 1,000,000,000,000"),
    ({"deal_value": "1e400"}, "must be a finite number"),  # JSON's 1e400 is infinity
    ({"deal_value": "NaN"}, "must be a finite number"),
    ({"deal_value": -5}, "must be zero or more"),
    ({"occurred_at": "9999-12-31T23:59:59Z"}, "must be between 1970-01-01 and 2199-12-31"),
    ({"occurred_at": "0001-01-01T00:00:00+05:00"}, "must be between 1970-01-01 and 2199-12-31"),
    ({"lead_id": 99999999999999999999}, "must be at most 2147483647"),
]


@pytest.mark.parametrize(("fields", "reason"), OUT_OF_BOUNDS, ids=[r for _f, r in OUT_OF_BOUNDS])
def test_a_number_or_date_out_of_bounds_is_refused_with_its_reason(
    funnel: Funnel, server: str, secret: str, fields: dict[str, object], reason: str
) -> None:
    body = json.dumps({"leads": [{**RECORD, **fields}]}).encode()
    response = _post(server, secret, body)
    assert response.status_code == 422, response.text
    assert reason in response.json()["rejected"][0]["reason"]
    assert _crm_rows(funnel) == (0, 0)


def test_json_nested_too_deeply_is_400(funnel: Funnel, server: str, secret: str) -> None:
    body = b"[" * 200_000 + b"]" * 200_000  # within the body limit, past the parser's depth
    response = _post(server, secret, body)
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.json()["error"]
    assert _crm_rows(funnel) == (0, 0)
