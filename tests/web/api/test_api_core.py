"""The API's conventions through the engine's own server: tokens, scopes, isolation,
pagination, ETag/If-Match, Idempotency-Key, problem documents, rate limits."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy.engine import Engine
from sqlmodel import select
from support.api_world import Client, Side

from partnercast.core.tenancy import system_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.access_models import ApiToken
from partnercast.tenants.api_tokens import revoke_token
from partnercast.web.api.models import IdempotencyKey

PROBLEM = "application/problem+json"


def problem(answer: requests.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    document: dict[str, Any] = answer.json()
    assert document["status"] == status and document["title"] and document["detail"]
    assert "\n" not in document["detail"]
    return document


def test_a_missing_altered_revoked_or_expired_token_is_401(
    client: Client, sides: tuple[Side, Side], engine: Engine
) -> None:
    a, _ = sides
    token = a.tokens["admin"]
    assert client.get("/partners", token=token).status_code == 200
    problem(client.get("/partners"), 401)
    problem(client.get("/partners", headers={"Authorization": f"Basic {token}"}), 401)
    altered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    problem(client.get("/partners", token=altered), 401)
    problem(client.get("/partners", token="pct_000000000000_nothing"), 401)
    with tenant_session(engine, a.tenant_id) as session:
        revoke_token(session, token, now=utcnow())
    answer = client.get("/partners", token=token)
    assert "revoked" in problem(answer, 401)["detail"]
    assert answer.headers["www-authenticate"].startswith("Bearer")
    with system_session(engine, reason="test: expire a token") as session:
        row = session.exec(
            select(ApiToken).where(ApiToken.public_id == a.tokens["marketer"][4:16])
        ).one()
        row.expires_at = utcnow()
        session.add(row)
    problem(client.get("/partners", token=a.tokens["marketer"]), 401)


def test_a_token_marks_when_it_was_last_used(
    client: Client, sides: tuple[Side, Side], engine: Engine
) -> None:
    a, _ = sides
    client.get("/tenant", token=a.tokens["concierge"])
    with system_session(engine, reason="test") as session:
        row = session.exec(
            select(ApiToken).where(ApiToken.public_id == a.tokens["concierge"][4:16])
        ).one()
    assert row.last_used_at is not None


def test_another_tenants_or_partners_ids_are_not_found(
    client: Client, sides: tuple[Side, Side]
) -> None:
    a, b = sides
    for role in ("admin", "concierge", "marketer", "partner"):
        token = a.tokens[role]
        for partner_id in b.partners.values():
            problem(client.get(f"/partners/{partner_id}", token=token), 404)
            answer = client.patch(
                f"/partners/{partner_id}",
                token=token,
                json={"region": "x"},
                headers={"If-Match": "*"},
            )
            assert answer.status_code in (403, 404)
            answer = client.post(
                "/contacts",
                token=token,
                json={
                    "partner_id": partner_id,
                    "external_id": "Z",
                    "email": "z@example.com",
                    "consent": True,
                },
            )
            assert answer.status_code in (403, 404), answer.text
        for contact_id in b.contacts.values():
            problem(client.get(f"/contacts/{contact_id}", token=token), 404)
            answer = client.patch(
                f"/contacts/{contact_id}",
                token=token,
                json={"company": "x"},
                headers={"If-Match": "*"},
            )
            assert answer.status_code in (403, 404)
        listed = client.get("/partners", token=token).json()["data"]
        assert {p["id"] for p in listed} <= set(a.partners.values())
        listed = client.get("/contacts", token=token).json()["data"]
        assert {c["id"] for c in listed} <= set(a.contacts.values())
    # A partner token sees its own partner only, within its own tenant too.
    token = a.tokens["partner"]
    own, other = a.partners["A1"], a.partners["A2"]
    assert [p["id"] for p in client.get("/partners", token=token).json()["data"]] == [own]
    problem(client.get(f"/partners/{other}", token=token), 404)
    problem(client.get(f"/contacts/{a.contacts['A2C1']}", token=token), 404)
    assert client.get(f"/contacts/{a.contacts['A1C1']}", token=token).status_code == 200
    contacts = client.get("/contacts", token=token, params={"partner_id": other}).json()
    assert contacts["data"] == []


def test_a_role_that_may_not_write_is_403(client: Client, sides: tuple[Side, Side]) -> None:
    a, _ = sides
    answer = client.post(
        "/contacts",
        token=a.tokens["marketer"],
        json={
            "partner_id": a.partners["A1"],
            "external_id": "M",
            "email": "m@example.com",
            "consent": True,
        },
    )
    assert "vendor-marketer" in problem(answer, 403)["detail"]
    answer = client.post(
        "/contacts/erasures", token=a.tokens["partner"], json={"emails": ["a@b.example"]}
    )
    problem(answer, 403)


def test_pages_follow_a_signed_cursor(
    client: Client, sides: tuple[Side, Side], engine: Engine
) -> None:
    a, _ = sides
    token = a.tokens["admin"]
    for number in range(5):
        answer = client.post(
            "/contacts",
            token=token,
            json={
                "partner_id": a.partners["A2"],
                "external_id": f"N{number}",
                "email": f"n{number}@example.com",
                "consent": True,
            },
        )
        assert answer.status_code == 201, answer.text
    seen: list[int] = []
    url: str | None = "/contacts?limit=2&partner_id=" + str(a.partners["A2"])
    pages = 0
    while url:
        answer = client.get(url.removeprefix(client.base), token=token)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["data"]) <= 2
        seen += [item["id"] for item in body["data"]]
        url = body["next"]
        pages += 1
    assert pages == 3 and len(seen) == 6 and seen == sorted(seen)
    first = client.get("/contacts?limit=1", token=token).json()["next"]
    cursor = first.split("cursor=")[1]
    forged = cursor[:-3] + ("xyz" if not cursor.endswith("xyz") else "abc")
    problem(client.get(f"/contacts?cursor={forged}", token=token), 400)
    problem(client.get(f"/partners?cursor={cursor}", token=token), 400)  # another list's
    problem(client.get(f"/contacts?cursor={cursor}", token=a.tokens["concierge"]), 400)
    problem(client.get("/contacts?limit=201", token=token), 422)


def test_patch_needs_the_current_etag(client: Client, sides: tuple[Side, Side]) -> None:
    a, _ = sides
    token = a.tokens["concierge"]
    url = f"/partners/{a.partners['A1']}"
    read = client.get(url, token=token)
    etag = read.headers["etag"]
    answer = client.patch(url, token=token, json={"region": "EMEA"})
    assert problem(answer, 428)["errors"][0]["field"] == "header.If-Match"
    changed = client.patch(url, token=token, json={"region": "EMEA"}, headers={"If-Match": etag})
    assert changed.status_code == 200, changed.text
    assert changed.json()["region"] == "EMEA" and changed.headers["etag"] != etag
    stale = client.patch(url, token=token, json={"region": "APAC"}, headers={"If-Match": etag})
    problem(stale, 412)
    assert client.get(url, token=token).json()["region"] == "EMEA"
    bad = client.patch(
        url,
        token=token,
        json={"primary_color": "not a colour"},
        headers={"If-Match": changed.headers["etag"]},
    )
    assert "primary_color" in problem(bad, 422)["detail"]
    # A contact, the same way; a partner token may change its own partner's contacts.
    contact_url = f"/contacts/{a.contacts['A1C1']}"
    partner_token = a.tokens["partner"]
    etag = client.get(contact_url, token=partner_token).headers["etag"]
    answer = client.patch(
        contact_url, token=partner_token, json={"company": "Acme"}, headers={"If-Match": etag}
    )
    assert answer.status_code == 200 and answer.json()["company"] == "Acme"


def test_the_same_idempotency_key_does_the_work_once(
    client: Client, sides: tuple[Side, Side], engine: Engine
) -> None:
    a, _ = sides
    token = a.tokens["admin"]
    body = {
        "partner_id": a.partners["A1"],
        "external_id": "K1",
        "email": "k1@example.com",
        "consent": True,
    }
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = client.post("/contacts", token=token, json=body, headers=key)
    again = client.post("/contacts", token=token, json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["idempotent-replayed"] == "true"
    assert again.headers["etag"] == first.headers["etag"]
    other = client.post("/contacts", token=token, json={**body, "first_name": "Kay"}, headers=key)
    assert problem(other, 422)["errors"][0]["field"] == "header.Idempotency-Key"
    # The key is the token's own: another token's same key is another request.
    mine = client.post(
        "/contacts", token=a.tokens["concierge"], json={**body, "company": "C"}, headers=key
    )
    assert mine.status_code == 200 and mine.json()["company"] == "C"
    # After 24 hours a key is new again.
    with tenant_session(engine, a.tenant_id) as session:
        for row in session.exec(select(IdempotencyKey)).all():
            row.created_at = row.created_at - timedelta(hours=25)
            session.add(row)
    later = client.post("/contacts", token=token, json={**body, "first_name": "Kay"}, headers=key)
    assert later.status_code == 200 and later.json()["first_name"] == "Kay"
    assert "idempotent-replayed" not in later.headers
    replayed = client.post(
        "/contacts", token=token, json={**body, "first_name": "Kay"}, headers=key
    )
    assert replayed.headers["idempotent-replayed"] == "true"
    # A refused request leaves no key: corrected, it goes through under the same key.
    key2 = {"Idempotency-Key": "second"}
    bad = client.post("/contacts", token=token, json={**body, "email": "nope@x"}, headers=key2)
    problem(bad, 422)
    good = client.post(
        "/contacts",
        token=token,
        json={**body, "external_id": "K2", "email": "k2@example.com"},
        headers=key2,
    )
    assert good.status_code == 201, good.text


def test_problem_documents_for_unknown_addresses_and_methods(
    client: Client, sides: tuple[Side, Side]
) -> None:
    a, _ = sides
    token = a.tokens["admin"]
    problem(client.get("/nothing-here", token=token), 404)
    problem(client.request("DELETE", "/partners", token=token), 405)
    answer = client.post("/contacts", token=token, json={"partner_id": "x"})
    document = problem(answer, 422)
    fields = {error["field"] for error in document["errors"]}
    assert "body.partner_id" in fields and "body.email" in fields
    answer = client.post(
        "/contacts", token=token, data=b"{not json", headers={"Content-Type": "application/json"}
    )
    problem(answer, 422)


def test_the_openapi_document_describes_the_api_only(client: Client) -> None:
    document = client.get("/openapi.json").json()
    paths = set(document["paths"])
    assert "/partners" in paths and "/contacts/{contact_id}" in paths
    assert not any(path.startswith(("/u/", "/t/", "/crm", "/healthz")) for path in paths)
    assert client.get("/docs").status_code == 200


def test_a_token_over_its_rate_limit_is_429_with_retry_after(
    engine: Engine, sides: tuple[Side, Side]
) -> None:
    """Each token's limit is the settings api_rate_burst / api_rate_per_second
    (PARTNERCAST_API_RATE_*): here 2 at once, refilled so slowly that no request of the
    test gets a refill however loaded the machine is."""
    import threading

    from partnercast.core.settings import load_settings
    from partnercast.web.app import make_http_server

    assert load_settings().api_rate_burst == 120
    assert load_settings().api_rate_per_second == 20.0
    a, _ = sides
    settings = load_settings(api_rate_burst=2, api_rate_per_second=0.001)
    http = make_http_server(engine, settings, "127.0.0.1", 0)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        api = Client(f"http://127.0.0.1:{http.server_port}/api/v1")
        token = a.tokens["marketer"]
        assert [api.get("/tenant", token=token).status_code for _ in range(2)] == [200, 200]
        answer = api.get("/tenant", token=token)
        assert "2 at once" in problem(answer, 429)["detail"]
        assert int(answer.headers["retry-after"]) >= 1
        # Another token of the tenant is not held back.
        assert api.get("/tenant", token=a.tokens["admin"]).status_code == 200
        api.http.close()
    finally:
        http.shutdown()
        http.server_close()


def test_an_agency_admin_changes_the_tenants_settings(
    client: Client, sides: tuple[Side, Side]
) -> None:
    a, b = sides
    read = client.get("/tenant", token=a.tokens["admin"])
    assert read.json()["unsubscribe_scope"] == "vendor"
    body = {"unsubscribe_scope": "partner"}
    problem(client.patch("/tenant", token=a.tokens["admin"], json=body), 428)
    problem(
        client.patch("/tenant", token=a.tokens["concierge"], json=body, headers={"If-Match": "*"}),
        403,
    )
    changed = client.patch(
        "/tenant", token=a.tokens["admin"], json=body, headers={"If-Match": read.headers["etag"]}
    )
    assert changed.status_code == 200 and changed.json()["unsubscribe_scope"] == "partner"
    assert client.get("/tenant", token=b.tokens["admin"]).json()["unsubscribe_scope"] == "vendor"
    bad = client.patch(
        "/tenant",
        token=a.tokens["admin"],
        json={"unsubscribe_scope": "all"},
        headers={"If-Match": "*"},
    )
    assert problem(bad, 422)["errors"][0]["field"] == "body.unsubscribe_scope"


def test_no_token_is_ever_logged(
    client: Client, sides: tuple[Side, Side], caplog: pytest.LogCaptureFixture
) -> None:
    a, _ = sides
    caplog.set_level("DEBUG")
    token = a.tokens["admin"]
    altered = token[:-1] + ("x" if token[-1] != "x" else "y")
    for used in (token, altered):
        client.get("/partners", token=used)
        client.get("/nothing", token=used)
        client.post("/contacts", token=used, json={"partner_id": "x"})
    secret = token[17:]
    assert any(r.name == "uvicorn.access" for r in caplog.records)  # the server logged
    assert secret[:20] not in caplog.text and altered[17:37] not in caplog.text
