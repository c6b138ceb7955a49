"""The API's conventions on SQLite and on PostgreSQL alike: an upsert with an
Idempotency-Key, a PATCH under If-Match (the row locked while it is checked), pages, a
partner's and another tenant's ids, a revoked token."""

from __future__ import annotations

from conftest import make_tenant
from sqlalchemy.engine import Engine
from support.api_world import Client, build_side, served

from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.api_tokens import revoke_token


def test_the_conventions_hold_on_both_databases(any_engine: Engine) -> None:
    a = build_side(any_engine, make_tenant(any_engine, "vendor-a"), "A")
    b = build_side(any_engine, make_tenant(any_engine, "vendor-b"), "B")
    with served(any_engine) as base:
        client = Client(base)
        admin = a.tokens["admin"]
        body = {
            "partner_id": a.partners["A1"],
            "external_id": "E1",
            "email": "e1@example.com",
            "consent": True,
        }
        key = {"Idempotency-Key": "engines-1"}
        first = client.post("/contacts", token=admin, json=body, headers=key)
        again = client.post("/contacts", token=admin, json=body, headers=key)
        assert first.status_code == 201 and again.json() == first.json()
        assert (
            client.post(
                "/contacts", token=admin, json={**body, "company": "X"}, headers=key
            ).status_code
            == 422
        )
        url = f"/contacts/{first.json()['id']}"
        etag = client.get(url, token=admin).headers["etag"]
        changed = client.patch(
            url, token=admin, json={"company": "Acme"}, headers={"If-Match": etag}
        )
        assert changed.status_code == 200 and changed.json()["company"] == "Acme"
        assert (
            client.patch(
                url, token=admin, json={"company": "B"}, headers={"If-Match": etag}
            ).status_code
            == 412
        )
        pages, next_url = 0, "/contacts?limit=1"
        while next_url:
            answer = client.get(next_url.removeprefix(base), token=admin).json()
            next_url, pages = answer["next"], pages + 1
        assert pages == 3
        assert client.get(f"/contacts/{b.contacts['B1C1']}", token=admin).status_code == 404
        assert (
            client.get(f"/partners/{a.partners['A2']}", token=a.tokens["partner"]).status_code
            == 404
        )
        with tenant_session(any_engine, a.tenant_id) as session:
            revoke_token(session, admin, now=utcnow())
        assert client.get("/tenant", token=admin).status_code == 401
        client.http.close()
