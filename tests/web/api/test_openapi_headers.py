"""The served OpenAPI document describes the convention headers, and the answers send what
it describes: ETag on the GET and PATCH of every resource that can be changed,
Idempotent-Replayed on the POSTs that take an Idempotency-Key, Retry-After on 429, the
Idempotency-Key and If-Match request headers."""

from __future__ import annotations

from typing import Any

from support.api_world import Client, Side


def _headers(operation: dict[str, Any], status: str) -> set[str]:
    return set(operation["responses"][status].get("headers", {}))


def _parameters(operation: dict[str, Any]) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}


def test_the_document_describes_the_convention_headers(
    client: Client, sides: tuple[Side, Side]
) -> None:
    a, _ = sides
    paths = client.get("/openapi.json").json()["paths"]
    changeable = [path for path, operations in paths.items() if "patch" in operations]
    assert {"/tenant", "/partners/{partner_id}", "/contacts/{contact_id}"} <= set(changeable)
    assert {"/enrollments/{enrollment_id}", "/webhooks/{endpoint_id}"} <= set(changeable)
    for path in changeable:
        assert "ETag" in _headers(paths[path]["get"], "200"), path
        assert "ETag" in _headers(paths[path]["patch"], "200"), path
        assert "If-Match" in _parameters(paths[path]["patch"]), path
        assert {"412", "428"} <= set(paths[path]["patch"]["responses"]), path
    assert "ETag" not in _headers(paths["/partners"]["get"], "200")  # a list has none
    posts = 0
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert "Retry-After" in _headers(operation, "429"), (method, path)
            if method != "post" or path == "/campaigns/validations":  # validating keeps nothing
                continue
            posts += 1
            assert "Idempotency-Key" in _parameters(operation), path
            for status in operation["responses"]:
                if status.startswith("2"):
                    assert "Idempotent-Replayed" in _headers(operation, status), (path, status)
    assert posts >= 15

    # What the document says is what the answers carry.
    admin = a.tokens["admin"]
    for url in ("/tenant", f"/partners/{a.partners['A1']}", f"/contacts/{a.contacts['A1C1']}"):
        assert client.get(url, token=admin).headers["etag"], url
    body = {"external_id": "HDR", "name": "H", "legal_name": "H Ltd", "postal_address": "1 Rd"}
    key = {"Idempotency-Key": "headers-test"}
    first = client.post("/partners", token=admin, json=body, headers=key)
    again = client.post("/partners", token=admin, json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["etag"] == first.headers["etag"]
