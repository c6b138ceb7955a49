"""Table models of outgoing webhooks: where a tenant wants events sent, and each delivery.

A :class:`WebhookEndpoint` is one receiver of one tenant: its URL, the event types it
wants and its signing secret (sealed with the engine's encryption keys; shown once when
made). A :class:`WebhookDelivery` is one event for one endpoint: written in the very
transaction that records what happened (so a crash loses nothing), with the
``webhook-id`` it keeps for life (a retry or a replay is the same message, never a new id),
and the state of its delivery. :mod:`partnercast.core.webhook_outbox` sends them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from partnercast.core.tenancy import TenantOwned

PENDING = "pending"
DELIVERED = "delivered"


class WebhookEndpoint(TenantOwned, SQLModel, table=True):
    """A tenant's receiver of outgoing webhooks."""

    __tablename__ = "webhook_endpoint"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    description: str = Field(default="", max_length=200)
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    sealed_secret: str = Field(sa_column=Column(Text, nullable=False))
    enabled: bool = Field(default=True)
    disabled_reason: str = Field(default="", max_length=500)
    # Since when every attempt failed (None: the last one succeeded), and how many in a row.
    failing_since: datetime | None = None
    consecutive_failures: int = Field(default=0)
    created_at: datetime
    updated_at: datetime


class WebhookDelivery(TenantOwned, SQLModel, table=True):
    """One event for one endpoint, from the moment it happened until it is delivered."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("msg_id", name="uq_webhook_delivery_msg_id"),
        # One source event reaches one endpoint once, however often it is detected.
        UniqueConstraint("endpoint_id", "event_key", name="uq_webhook_delivery_event"),
        Index("ix_webhook_delivery_due", "state", "next_attempt_at"),
        Index("ix_webhook_delivery_subject", "endpoint_id", "subject", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    endpoint_id: int = Field(foreign_key="webhook_endpoint.id", index=True)
    msg_id: str = Field(max_length=40)  # the webhook-id header, for life
    event_type: str = Field(max_length=60)
    event_key: str = Field(max_length=200)
    subject: str = Field(max_length=100)  # deliveries about one subject go in order
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    state: str = Field(default=PENDING, max_length=20)
    attempts: int = Field(default=0)
    next_attempt_at: datetime
    last_attempt_at: datetime | None = None
    last_status: int | None = None
    last_error: str = Field(default="", max_length=500)
    delivered_at: datetime | None = None
    lease_owner: str = Field(default="", max_length=80)
    lease_until: datetime | None = None
    created_at: datetime
