"""The REST API's own table: the Idempotency-Key of every POST, with what it answered.

A row is keyed by (tenant, token, key) under a unique constraint and is inserted as the
first statement of the request's transaction, before any work: of two requests with the
same key, the second waits on the first's row (PostgreSQL's unique index, SQLite's write
lock), then finds it and answers what the first answered. The work, the row and the
stored answer commit together, so a request that failed leaves no key behind and may be
sent again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from partnercast.core.tenancy import TenantOwned


class IdempotencyKey(TenantOwned, SQLModel, table=True):
    """One Idempotency-Key a token sent with a POST, and the answer it got."""

    __tablename__ = "api_idempotency_key"
    __table_args__ = (
        UniqueConstraint("tenant_id", "token_id", "key", name="uq_api_idempotency_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    token_id: int = Field(foreign_key="apitoken.id")
    key: str = Field(max_length=255)
    fingerprint: str = Field(max_length=64)  # SHA-256 of the method, path and body
    status: int = 0
    body: str = Field(default="", sa_column=Column(Text, nullable=False))
    headers: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime
