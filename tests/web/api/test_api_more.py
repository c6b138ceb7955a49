"""Cycles, the queue, tasks, leads, spend, metrics and scores through the API on the test
world; then every route with an {id}, asked with another tenant's token (and a partner's
token for another partner's ids): 404, as for an id that does not exist."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from conftest import make_tenant
from sqlmodel import select
from support.api_world import Client, make_token
from support.world import World

from partnercast.campaigns.models import Campaign, Enrollment
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.access import Role
from partnercast.tenants.models import Contact, Partner


@pytest.fixture
def ids(world: World) -> dict[str, Any]:
    with tenant_session(world.engine, world.tenant_id) as session:
        partners = sorted(session.exec(select(Partner)).all(), key=lambda p: p.external_id)
        campaign = session.exec(select(Campaign)).one()
        enrollment = session.exec(
            select(Enrollment).where(Enrollment.partner_id == partners[1].id)
        ).one()
        contact = session.exec(select(Contact).where(Contact.partner_id == partners[1].id)).first()
    assert contact is not None
    stranger = make_tenant(world.engine, "stranger")
    return {
        "admin": make_token(world.engine, world.tenant_id, Role.AGENCY_ADMIN),
        "marketer": make_token(world.engine, world.tenant_id, Role.VENDOR_MARKETER),
        "partner": make_token(
            world.engine, world.tenant_id, Role.PARTNER, partner_id=partners[0].id
        ),
        "stranger": make_token(world.engine, stranger, Role.AGENCY_ADMIN),
        "first": partners[0],
        "second": partners[1],
        "campaign": campaign,
        "enrollment": enrollment.id,
        "contact": contact.id,
    }


def test_cycles_tasks_leads_spend_metrics_and_scores(client: Client, ids: dict[str, Any]) -> None:
    admin, marketer, partner = ids["admin"], ids["marketer"], ids["partner"]
    first, second, campaign = ids["first"], ids["second"], ids["campaign"]
    started = client.post("/cycles", token=marketer, json={"campaign_id": campaign.id})
    assert started.status_code == 201, started.text
    assert started.json()["number"] == 1
    cycles = client.get("/cycles", token=admin, params={"campaign_id": campaign.id}).json()
    assert [c["number"] for c in cycles["data"]] == [1]
    queue = client.get("/dispatches", token=admin, params={"cycle_id": started.json()["id"]})
    assert queue.status_code == 200 and queue.json()["data"]
    own_queue = client.get("/dispatches", token=partner).json()["data"]
    assert {d["partner_id"] for d in own_queue} <= {first.id}
    # Tasks: staff only.
    due = (utcnow() + timedelta(days=3)).isoformat()
    task = client.post(
        "/tasks",
        token=admin,
        json={"partner_id": second.id, "kind": "call", "due_at": due, "title": "Call"},
    )
    assert task.status_code == 201, task.text
    task_id = task.json()["id"]
    assert (
        client.post(
            f"/tasks/{task_id}/notes", token=admin, json={"text": "left a message"}
        ).status_code
        == 200
    )
    closed = client.post(f"/tasks/{task_id}/close", token=admin, json={"status": "done"})
    assert closed.status_code == 200 and closed.json()["status"] == "done"
    assert client.post(f"/tasks/{task_id}/close", token=admin, json={}).status_code == 409
    assert client.get("/tasks", token=partner).status_code == 403
    bad = client.post(
        "/tasks", token=admin, json={"partner_id": second.id, "kind": "Bad Kind!", "due_at": due}
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.kind"
    # Leads, as the CRM sends them; then their stages.
    records = {
        "leads": [
            {
                "partner": second.external_id,
                "email": "lead@example.com",
                "name": "Lee",
                "stage": "lead",
            },
            {"partner": "NOPE", "email": "x@example.com", "stage": "lead"},
        ]
    }
    report = client.post("/leads", token=marketer, json=records)
    assert report.status_code == 200, report.text
    assert report.json()["created"] == 1 and report.json()["rejected"][0]["index"] == 1
    moved = client.post(
        "/leads",
        token=marketer,
        json={
            "leads": [{"partner": second.external_id, "email": "lead@example.com", "stage": "sql"}]
        },
    )
    assert moved.json()["updated"] == 1
    leads = client.get("/leads", token=admin, params={"stage": "sql"}).json()["data"]
    assert [lead["email"] for lead in leads] == ["lead@example.com"]
    detail = client.get(f"/leads/{leads[0]['id']}", token=admin).json()
    assert [stage["stage"] for stage in detail["stages"]][-1] == "sql"
    assert client.get("/leads", token=partner).json()["data"] == []
    assert client.get(f"/leads/{leads[0]['id']}", token=partner).status_code == 404
    rejected = client.post(
        "/leads", token=marketer, json={"leads": [{"partner": "NOPE", "stage": "x"}]}
    )
    assert rejected.status_code == 422
    # Spend, metrics and the score.
    spend = client.post(
        "/spend",
        token=marketer,
        json={
            "partner_id": second.id,
            "campaign_id": campaign.id,
            "amount": 500,
            "currency": "eur",
        },
    )
    assert spend.status_code == 201 and spend.json()["currency"] == "EUR"
    rows = client.get("/metrics", token=admin, params={"by": "partner"}).json()
    assert any(row["counts"].get("sql") == 1 for row in rows)
    total = client.get("/metrics", token=admin, params={"by": "total"}).json()
    assert total[0]["spend"] == 500
    own = client.get("/metrics", token=partner).json()
    assert all(row["counts"].get("sql", 0) == 0 for row in own)
    assert (
        client.get("/metrics", token=partner, params={"partner_id": second.id}).status_code == 404
    )
    cards = client.get("/scores", token=admin).json()
    assert len(cards) == 6 and all(card["components"] for card in cards)
    mine = client.get("/scores", token=partner).json()
    assert [card["partner_id"] for card in mine] == [first.id]


def test_every_route_with_an_id_is_404_for_another_tenant_or_partner(
    client: Client, ids: dict[str, Any], world: World
) -> None:
    admin = ids["admin"]
    due = (utcnow() + timedelta(days=3)).isoformat()
    task = client.post(
        "/tasks", token=admin, json={"partner_id": ids["second"].id, "kind": "call", "due_at": due}
    )
    client.post(
        "/leads",
        token=admin,
        json={
            "leads": [
                {"partner": ids["second"].external_id, "email": "l@example.com", "stage": "lead"}
            ]
        },
    )
    lead_id = client.get("/leads", token=admin).json()["data"][0]["id"]
    real = {
        "partner_id": ids["second"].id,
        "contact_id": ids["contact"],
        "campaign_id": ids["campaign"].id,
        "enrollment_id": ids["enrollment"],
        "task_id": task.json()["id"],
        "lead_id": lead_id,
    }
    document = client.get("/openapi.json").json()
    asked = 0
    for path, operations in document["paths"].items():
        names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
        if not names or not set(names) <= set(real):
            continue  # (the webhook routes are tested with their own world)
        url = path
        for name in names:
            url = url.replace("{" + name + "}", str(real[name]))
        for method in operations:
            kwargs: dict[str, Any] = {"headers": {"If-Match": "*"}}
            if method in ("post", "patch"):
                kwargs["json"] = {}
            params = {"touch": "intro"} if path.endswith("/preview") else None
            # The real owner's admin token reaches it (or is refused for the body only) ...
            own = client.request(method.upper(), url, token=admin, params=params, **kwargs)
            assert own.status_code != 404, (method, url, own.text)
            # ... another tenant's token and another partner's token find nothing.
            # ... another tenant's token and another partner's token learn nothing: the
            # answer is the one for an id that does not exist, and never a success.
            # (The partner is enrolled in the world's one campaign: it may read that.)
            others = (
                [ids["stranger"]] if "campaign_id" in names else [ids["stranger"], ids["partner"]]
            )
            missing = path
            for name in names:
                missing = missing.replace("{" + name + "}", "2000000000")
            for token in others:
                answer = client.request(method.upper(), url, token=token, params=params, **kwargs)
                absent = client.request(
                    method.upper(), missing, token=token, params=params, **kwargs
                )
                assert answer.status_code >= 400, (method, url, answer.text)
                assert answer.status_code == absent.status_code, (method, url, answer.text)
                if method == "get" and "/tasks" not in url:
                    assert answer.status_code == 404, (method, url, answer.text)
            asked += 1
    assert asked >= 10


def test_segments_load_and_a_partner_report(client: Client, ids: dict[str, Any]) -> None:
    from support.world import SEGMENTS

    admin, partner = ids["admin"], ids["partner"]
    listed = client.get("/segments", token=admin).json()
    assert listed and all("partners" in segment for segment in listed)
    text = SEGMENTS.read_bytes()
    again = client.post("/segments", token=ids["marketer"], files={"file": ("s.yaml", text)})
    assert again.status_code == 200, again.text
    assert [s["key"] for s in again.json()] == [s["key"] for s in listed]
    bad = client.post("/segments", token=admin, files={"file": ("s.yaml", b"segments: [")})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "file"
    assert client.get("/segments", token=partner).status_code == 403
    report = client.get(f"/partners/{ids['first'].id}/report", token=partner)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert ids["first"].name in report.text and ids["second"].name not in report.text
    assert client.get(f"/partners/{ids['second'].id}/report", token=partner).status_code == 404


def test_ids_in_bodies_of_another_tenant_are_not_found(client: Client, ids: dict[str, Any]) -> None:
    stranger = ids["stranger"]
    partner_id, campaign_id = ids["second"].id, ids["campaign"].id
    due = (utcnow() + timedelta(days=1)).isoformat()
    asked = {
        "/spend": {"partner_id": partner_id, "campaign_id": campaign_id, "amount": 5},
        "/tasks": {"partner_id": partner_id, "kind": "call", "due_at": due},
        "/cycles": {"campaign_id": campaign_id},
        "/contacts/suppressions": {"emails": ["a@example.com"], "partner_id": partner_id},
        "/contacts": {
            "partner_id": partner_id,
            "external_id": "S",
            "email": "s@example.com",
            "consent": True,
        },
    }
    for path, body in asked.items():
        answer = client.post(path, token=stranger, json=body)
        assert answer.status_code == 404, (path, answer.text)
    upload = client.post(
        "/contacts/imports",
        token=stranger,
        files={"file": ("c.csv", b"external_id,email,consent\nX,x@example.com,yes\n")},
        data={"partner_id": str(partner_id)},
    )
    assert upload.status_code == 404
    # Filters naming another tenant's ids find nothing.
    for path, name in (
        ("/contacts", "partner_id"),
        ("/enrollments", "campaign_id"),
        ("/dispatches", "partner_id"),
    ):
        answer = client.get(
            path, token=stranger, params={name: partner_id if name == "partner_id" else campaign_id}
        )
        assert answer.status_code == 200 and answer.json()["data"] == []
    metrics = client.get("/metrics", token=stranger, params={"partner_id": partner_id})
    assert metrics.status_code == 404
