"""Two (and more) concurrent POSTs with the same Idempotency-Key create one object, on
SQLite and on PostgreSQL, through the engine's own server."""

from __future__ import annotations

import threading

import requests
from conftest import make_tenant
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from support.api_world import build_side, served

from partnercast.core.tenancy import tenant_session
from partnercast.tenants.models import Contact
from partnercast.web.api.models import IdempotencyKey

REQUESTS = 6


def test_concurrent_posts_with_one_key_create_one_contact(any_engine: Engine) -> None:
    side = build_side(any_engine, make_tenant(any_engine, "vendor-a"), "A")
    body = {
        "partner_id": side.partners["A1"],
        "external_id": "SAME",
        "email": "same@example.com",
        "consent": True,
    }
    headers = {"Authorization": f"Bearer {side.tokens['admin']}", "Idempotency-Key": "one-key"}
    answers: list[requests.Response] = []
    start = threading.Barrier(REQUESTS)

    with served(any_engine) as base:

        def post() -> None:
            start.wait()
            answers.append(
                requests.post(f"{base}/contacts", json=body, headers=headers, timeout=120)
            )

        threads = [threading.Thread(target=post) for _ in range(REQUESTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert len(answers) == REQUESTS
    assert {answer.status_code for answer in answers} == {201}, [a.text for a in answers]
    assert len({answer.text for answer in answers}) == 1
    replayed = [a for a in answers if a.headers.get("idempotent-replayed") == "true"]
    assert len(replayed) == REQUESTS - 1
    with tenant_session(any_engine, side.tenant_id) as session:
        made = session.exec(
            select(func.count(col(Contact.id))).where(Contact.external_id == "SAME")
        ).one()
        keys = session.exec(select(func.count(col(IdempotencyKey.id)))).one()
    assert made == 1 and keys == 1
