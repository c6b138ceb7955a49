"""The REST API tests' world: two tenants with partners and contacts, tokens of every
role, and a small client for the API's base URL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import requests
from sqlalchemy.engine import Engine

from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.access import Role
from partnercast.tenants.api_tokens import create_token
from partnercast.tenants.models import Contact, Partner


@dataclass
class Side:
    """One tenant of the world: its partners' and contacts' ids and its tokens."""

    tenant_id: int
    partners: dict[str, int] = field(default_factory=dict)
    contacts: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


def add_partner(engine: Engine, tenant_id: int, key: str, now: datetime) -> int:
    with tenant_session(engine, tenant_id) as session:
        partner = Partner(
            external_id=key,
            name=f"Partner {key}",
            legal_name=f"{key} GmbH",
            postal_address="1 Main St",
            created_at=now,
            updated_at=now,
        )
        session.add(partner)
        session.flush()
        assert partner.id is not None
        return partner.id


def add_contact(engine: Engine, tenant_id: int, partner_id: int, key: str, now: datetime) -> int:
    with tenant_session(engine, tenant_id) as session:
        contact = Contact(
            partner_id=partner_id,
            external_id=key,
            email=f"{key.lower()}@example.com",
            consent=True,
            created_at=now,
            updated_at=now,
        )
        session.add(contact)
        session.flush()
        assert contact.id is not None
        return contact.id


def make_token(
    engine: Engine, tenant_id: int, role: Role, *, partner_id: int | None = None, name: str = "t"
) -> str:
    with tenant_session(engine, tenant_id) as session:
        _, token = create_token(session, name=name, role=role, now=utcnow(), partner_id=partner_id)
    return token


def build_side(engine: Engine, tenant_id: int, prefix: str) -> Side:
    now = utcnow()
    side = Side(tenant_id)
    for number in (1, 2):
        key = f"{prefix}{number}"
        side.partners[key] = add_partner(engine, tenant_id, key, now)
        contact_key = f"{key}C1"
        side.contacts[contact_key] = add_contact(
            engine, tenant_id, side.partners[key], contact_key, now
        )
    side.tokens["admin"] = make_token(engine, tenant_id, Role.AGENCY_ADMIN)
    side.tokens["concierge"] = make_token(engine, tenant_id, Role.CONCIERGE)
    side.tokens["marketer"] = make_token(engine, tenant_id, Role.VENDOR_MARKETER)
    side.tokens["partner"] = make_token(
        engine, tenant_id, Role.PARTNER, partner_id=side.partners[f"{prefix}1"]
    )
    return side


class Client:
    """requests against the API's base URL: ``client.get("/partners", token=...)``."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def request(
        self, method: str, path: str, *, token: str | None = None, **kwargs: object
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.base + path, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: object) -> requests.Response:
        return self.request("PATCH", path, **kwargs)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def served(engine: Engine) -> Iterator[str]:
    """The engine's own HTTP server for ``engine`` on a free port: the API's base URL."""
    from partnercast.core.settings import load_settings
    from partnercast.web.app import make_http_server

    http = make_http_server(engine, load_settings(), "127.0.0.1", 0)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}/api/v1"
    finally:
        http.shutdown()
        http.server_close()
