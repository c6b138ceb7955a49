"""schemathesis against the OpenAPI document the engine serves: requests generated from
it (valid and not) to every operation, through the engine's own server, with an agency
admin's token of a tenant that has partners and contacts. No answer may be a 5xx, and
every answer must match the document (status, content type, body schema)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from support.api_world import Side

EXAMPLES = 20
SCOPED_EXAMPLES = 6


@pytest.fixture(autouse=True)
def generous_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Generated requests come faster than a client's limit allows."""
    monkeypatch.setenv("PARTNERCAST_API_RATE_BURST", "10000")
    monkeypatch.setenv("PARTNERCAST_API_RATE_PER_SECOND", "1000")


def test_the_api_matches_its_document(server: str, sides: tuple[Side, Side]) -> None:
    a, _ = sides
    schema = schemathesis.openapi.from_url(f"{server}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    admin = {"Authorization": f"Bearer {a.tokens['admin']}"}
    partner = {"Authorization": f"Bearer {a.tokens['partner']}"}
    # Every operation as an agency admin; the reads again as a partner (a scoped token
    # takes other paths: its own partner only, 403s and 404s).
    runs = [(operation, admin, EXAMPLES) for operation in operations] + [
        (operation, partner, SCOPED_EXAMPLES)
        for operation in operations
        if operation.method.upper() == "GET"
    ]
    for operation, headers, examples in runs:
        _generate(operation, headers, examples)


def _generate(operation: Any, headers: dict[str, str], examples: int) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def generated(case: schemathesis.Case) -> None:
        case.call_and_validate(
            headers=headers,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
            timeout=60,
        )

    generated()
