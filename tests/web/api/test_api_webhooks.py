"""``/api/v1/webhooks`` through the engine's own server: an agency admin adds a receiver
(its secret shown once, never in an Idempotency-Key replay), changes it with If-Match,
lists and replays its deliveries; other roles and other tenants get nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine
from support.api_world import Client, Side
from support.webhook_receiver import Receiver

from partnercast.concierge.tasks import add_task
from partnercast.core.settings import load_settings
from partnercast.core.tenancy import tenant_session
from partnercast.core.webhook_outbox import deliver_due
from partnercast.tenants.models import Partner


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()


def _add(client: Client, token: str, url: str, key: str | None = None) -> object:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(
        "/webhooks",
        token=token,
        json={"url": url, "event_types": ["task.opened"], "description": "crm"},
        headers=headers,
    )


def test_an_admin_adds_changes_and_replays(
    client: Client, sides: tuple[Side, Side], engine: Engine, receiver: Receiver
) -> None:
    side_a, side_b = sides
    admin = side_a.tokens["admin"]
    key = str(uuid.uuid4())
    made = _add(client, admin, receiver.url, key)
    assert made.status_code == 201, made.text
    secret = made.json()["secret"]
    assert secret.startswith("whsec_")
    again = _add(client, admin, receiver.url, key)  # the same request again: no second one
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == made.json()["id"] and again.json()["secret"] is None
    endpoint_id = made.json()["id"]
    assert len(client.get("/webhooks", token=admin).json()["data"]) == 1
    assert secret not in client.get(f"/webhooks/{endpoint_id}", token=admin).text

    now = datetime.now(UTC)
    with tenant_session(engine, side_a.tenant_id) as session:
        partner = session.get(Partner, side_a.partners["A1"])
        assert partner is not None
        add_task(session, partner, kind="call", due_at=now, created_by="test", now=now)
    assert deliver_due(engine, load_settings(), now, owner="test").delivered == 1
    (body,) = receiver.verified(secret)
    listed = client.get(f"/webhooks/{endpoint_id}/deliveries", token=admin).json()["data"]
    assert [(d["msg_id"], d["state"]) for d in listed] == [(body["_id"], "delivered")]
    replayed = client.post(
        f"/webhooks/{endpoint_id}/deliveries/{listed[0]['id']}/replay", token=admin
    )
    assert replayed.status_code == 200 and replayed.json()["state"] == "pending"
    deliver_due(engine, load_settings(), datetime.now(UTC), owner="test")  # due from the replay
    assert [b["_id"] for b in receiver.verified(secret)] == [body["_id"]] * 2

    read = client.get(f"/webhooks/{endpoint_id}", token=admin)
    no_match = client.patch(f"/webhooks/{endpoint_id}", token=admin, json={"enabled": False})
    assert no_match.status_code == 428
    stale = client.patch(
        f"/webhooks/{endpoint_id}",
        token=admin,
        json={"enabled": False},
        headers={"If-Match": '"0000"'},
    )
    assert stale.status_code == 412
    changed = client.patch(
        f"/webhooks/{endpoint_id}",
        token=admin,
        json={"enabled": False, "event_types": ["*"]},
        headers={"If-Match": read.headers["ETag"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["enabled"] is False and changed.json()["event_types"] == ["*"]

    other = side_b.tokens["admin"]
    for method, path in (
        ("GET", f"/webhooks/{endpoint_id}"),
        ("GET", f"/webhooks/{endpoint_id}/deliveries"),
        ("POST", f"/webhooks/{endpoint_id}/deliveries/{listed[0]['id']}/replay"),
        ("DELETE", f"/webhooks/{endpoint_id}"),
    ):
        answer = client.request(method, path, token=other)
        assert answer.status_code == 404, (method, path, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    assert client.request("DELETE", f"/webhooks/{endpoint_id}", token=admin).status_code == 204


@pytest.mark.parametrize("role", ["concierge", "marketer", "partner"])
def test_only_an_agency_admin_configures_webhooks(
    client: Client, sides: tuple[Side, Side], role: str
) -> None:
    answer = _add(client, sides[0].tokens[role], "https://hooks.example/in")
    assert answer.status_code == 403
    assert client.get("/webhooks", token=sides[0].tokens[role]).status_code == 403


def test_a_bad_receiver_is_a_problem_naming_the_field(
    client: Client, sides: tuple[Side, Side]
) -> None:
    admin = sides[0].tokens["admin"]
    answer = _add(client, admin, "ftp://files.example/in")
    assert answer.status_code == 422 and "body.url" in answer.json()["detail"]
    unknown = client.post(
        "/webhooks", token=admin, json={"url": "https://h.example", "event_types": ["lead.won"]}
    )
    assert unknown.status_code == 422


def test_the_api_offers_exactly_the_event_types_the_engine_reports() -> None:
    """The schema's enum is spelled out for the OpenAPI document; it must not drift from
    the engine's list."""
    from typing import get_args

    from partnercast.core.webhook_outbox import ALL, EVENT_TYPES
    from partnercast.web.api.webhooks import EventType

    assert set(get_args(EventType)) == {ALL, *EVENT_TYPES}
