"""Outgoing webhooks: the tenant's receivers, and a durable outbox that delivers to them.

Following the Standard Webhooks specification (standardwebhooks.com): every request
carries ``webhook-id`` (the delivery's id for life: a retry or a replay sends the same
id, so a receiver deduplicates on it), ``webhook-timestamp`` and ``webhook-signature``
(``v1,`` HMAC-SHA256 over ``id.timestamp.body`` with the endpoint's ``whsec_`` secret,
made by the ``standardwebhooks`` library). The body is
``{"type": ..., "timestamp": ..., "data": {...}}``.

What happens is written as a delivery in the transaction that records it
(:func:`enqueue`, called by the keeper the composition root registers), so a crash
between the two cannot lose an event. :func:`deliver_due` sends what is due: deliveries
are claimed under a lease (several workers share them), sent in order per subject (a
lead's "created" before its stage changes: a later delivery waits while an earlier one
about the same subject is undelivered), retried with growing delays (:data:`RETRY_DELAYS`)
for as long as the endpoint is enabled, never given up. An endpoint that has failed every
attempt for :data:`DISABLE_AFTER` (and at least :data:`DISABLE_MIN_FAILURES` times) is
disabled and the composition root's ``on_disabled`` callback opens a concierge task; its
deliveries wait, and go out in order once it is enabled again. Deliveries can be listed
and replayed (:func:`replay`: the same message, due again).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col
from standardwebhooks import Webhook

from partnercast.core.errors import NotFound, UserError
from partnercast.core.secrets import SecretBox, secret_box
from partnercast.core.sql import rowcount, table_of
from partnercast.core.tenancy import session_tenant, system_session
from partnercast.core.webhook_models import DELIVERED, PENDING, WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "enrollment.approved",
    "enrollment.declined",
    "enrollment.changes_requested",
    "dispatch.sent",
    "dispatch.failed",
    "lead.created",
    "lead.stage_changed",
    "task.opened",
    "contact.suppressed",
)
ALL = "*"

# After the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then every 10 h (the
# schedule of the Standard Webhooks reference implementation).
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
)
DISABLE_AFTER = timedelta(days=5)
DISABLE_MIN_FAILURES = 5
LEASE = timedelta(seconds=60)
TIMEOUT_SECONDS = 10.0


# ---------------------------------------------------------------- endpoints


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: ``whsec_`` and 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def check_event_types(names: Iterable[str]) -> list[str]:
    """The event types, checked: each a known one, or ``*`` for all."""
    chosen = [name.strip() for name in names if name.strip()]
    unknown = [name for name in chosen if name != ALL and name not in EVENT_TYPES]
    if unknown:
        known = ", ".join(EVENT_TYPES)
        raise UserError(f"unknown event type {unknown[0]!r}: one of {known}, or *")
    if not chosen:
        raise UserError("name at least one event type (or * for all)")
    return sorted(set(chosen))


def check_url(url: str, *, private_receivers: bool = False) -> str:
    """An absolute http(s) URL without credentials, and (unless ``private_receivers``) not
    an address of a private network; a UserError saying what is wrong."""
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise UserError(f"{url.strip()!r} is not an http(s) URL", where="url")
    if parts.username or parts.password:
        raise UserError("put no credentials in the URL; receivers check the signature", where="url")
    if len(url.strip()) > 2000:
        raise UserError("the URL is longer than 2,000 characters", where="url")
    if not private_receivers and (refused := _refused_literal(parts.hostname)):
        raise UserError(refused, where="url")
    return url.strip()


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone is not the address
    except ValueError:
        return None  # a name


def _private(address: object) -> str:
    return (
        f"{address} is not a public address: webhooks go to public receivers unless the "
        "setting private_webhook_receivers is on (a receiver on the same host or network)"
    )


def _refused_literal(host: str) -> str | None:
    """Why ``host``, an IP address that is not public, is refused; None for a public
    address or a name."""
    address = _address(host)
    return _private(address) if address is not None and not address.is_global else None


def refused_target(url: str, private_receivers: bool) -> str | None:
    """Why a POST to ``url`` is not made, or None: its host is, or resolves to, an address
    that is not public (loopback, private, link-local, reserved), unless
    ``private_receivers``. Checked at each delivery, since a name may point elsewhere by then
    (the HTTP client resolves it again to connect, so a name that changes between the two
    is not caught). A name that does not resolve is left to the POST to report."""
    if private_receivers:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    if _address(host) is not None:
        return _refused_literal(host)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError):
        return None
    for *_, sockaddr in found:
        address = _address(str(sockaddr[0]))
        if address is not None and not address.is_global:
            return f"{host} resolves to {address}: " + _private(address)
    return None


def create_endpoint(
    session: Session,
    settings: Any,
    *,
    url: str,
    event_types: Iterable[str],
    now: datetime,
    description: str = "",
) -> tuple[WebhookEndpoint, str]:
    """A new receiver of the session's tenant; returns it and its secret (show it once)."""
    session_tenant(session)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        url=check_url(url, private_receivers=settings.private_webhook_receivers),
        description=description.strip()[:200],
        event_types=check_event_types(event_types),
        sealed_secret=secret_box(settings).seal({"secret": secret}),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def rotate_secrets(session: Session, box: SecretBox) -> int:
    """Re-seal every endpoint's signing secret with the first key (``accounts
    rotate-keys``); ``session`` is a system session: rotation crosses every tenant."""
    endpoints = session.execute(select(WebhookEndpoint)).scalars().all()
    for endpoint in endpoints:
        endpoint.sealed_secret = box.rotate(endpoint.sealed_secret)
        session.add(endpoint)
    return len(endpoints)


def get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    """The session tenant's endpoint, or NotFound (another tenant's looks the same)."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.tenant_id != session_tenant(session):
        raise NotFound(f"no webhook endpoint {endpoint_id}")
    return endpoint


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    query = select(WebhookEndpoint).order_by(col(WebhookEndpoint.id))
    return list(session.execute(query).scalars().all())


def set_enabled(session: Session, endpoint_id: int, enabled: bool, *, now: datetime) -> None:
    """Enable (its waiting deliveries fall due at once, in order) or disable an endpoint."""
    endpoint = get_endpoint(session, endpoint_id)
    endpoint.enabled = enabled
    endpoint.updated_at = now
    if enabled:
        endpoint.disabled_reason = ""
        endpoint.failing_since = None
        endpoint.consecutive_failures = 0
        session.execute(
            update(WebhookDelivery)
            .where(
                col(WebhookDelivery.endpoint_id) == endpoint_id,
                col(WebhookDelivery.state) == PENDING,
            )
            .values(next_attempt_at=now)
        )
    else:
        endpoint.disabled_reason = "disabled by hand"
    session.add(endpoint)
    session.flush()


def delete_endpoint(session: Session, endpoint_id: int) -> None:
    """Remove an endpoint and its deliveries."""
    endpoint = get_endpoint(session, endpoint_id)
    for delivery in list_deliveries(session, endpoint_id=endpoint_id, limit=None):
        session.delete(delivery)
    session.flush()
    session.delete(endpoint)
    session.flush()


# ---------------------------------------------------------------- deliveries


def list_deliveries(
    session: Session,
    *,
    endpoint_id: int | None = None,
    state: str | None = None,
    limit: int | None = 50,
) -> list[WebhookDelivery]:
    """The session tenant's deliveries, newest first."""
    query = select(WebhookDelivery).order_by(col(WebhookDelivery.id).desc())
    if endpoint_id is not None:
        query = query.where(col(WebhookDelivery.endpoint_id) == endpoint_id)
    if state is not None:
        query = query.where(col(WebhookDelivery.state) == state)
    if limit is not None:
        query = query.limit(limit)
    return list(session.execute(query).scalars().all())


def replay(session: Session, delivery_id: int, *, now: datetime) -> WebhookDelivery:
    """Send a delivery again (the same message: the same webhook-id), due now."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.tenant_id != session_tenant(session):
        raise NotFound(f"no webhook delivery {delivery_id}")
    delivery.state = PENDING
    delivery.next_attempt_at = now
    delivery.lease_owner, delivery.lease_until = "", None
    session.add(delivery)
    session.flush()
    return delivery


@dataclass(frozen=True)
class Happening:
    """Something a webhook reports: its type, what it is about and the data sent."""

    event_type: str
    key: str  # unique per source event: the same happening detected twice is one
    subject: str  # e.g. "lead:42": deliveries about one subject keep their order
    data: dict[str, Any]
    occurred_at: datetime  # when it happened, as its source says (the body's timestamp)
    recorded_at: datetime | None = None  # when the engine learnt it (due from then)


def enqueue(connection: Connection, tenant_id: int, happenings: Sequence[Happening]) -> int:
    """Write a delivery for each happening and each enabled endpoint of the tenant that
    wants its type, on ``connection`` (the transaction that records the happening).
    Returns how many. A happening already enqueued for an endpoint is not written again."""
    if not happenings:
        return 0
    endpoints = connection.execute(
        select(table_of(WebhookEndpoint).c.id, table_of(WebhookEndpoint).c.event_types).where(
            table_of(WebhookEndpoint).c.tenant_id == tenant_id
        )
    ).all()
    rows = [
        _delivery_row(tenant_id, endpoint_id, happening)
        for endpoint_id, types in endpoints
        for happening in happenings
        if ALL in types or happening.event_type in types
    ]
    if not rows:
        return 0
    return _insert_new(connection, rows)


def _delivery_row(tenant_id: int, endpoint_id: int, happening: Happening) -> dict[str, Any]:
    body = {
        "type": happening.event_type,
        "timestamp": happening.occurred_at.isoformat(),
        "data": happening.data,
    }
    return {
        "tenant_id": tenant_id,
        "endpoint_id": endpoint_id,
        "msg_id": f"msg_{uuid.uuid4().hex}",
        "event_type": happening.event_type,
        "event_key": happening.key[:200],
        "subject": happening.subject[:100],
        "payload": body,
        "state": PENDING,
        "attempts": 0,
        "next_attempt_at": happening.recorded_at or happening.occurred_at,
        "last_error": "",
        "lease_owner": "",
        "created_at": happening.recorded_at or happening.occurred_at,
    }


def _insert_new(connection: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose (endpoint, event key) is not there yet (portable: SQLite and
    PostgreSQL both take ON CONFLICT DO NOTHING)."""
    table = table_of(WebhookDelivery)
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing(
        index_elements=["endpoint_id", "event_key"]
    )
    # Counted by RETURNING: a driver's rowcount of a many-row insert is not reliable.
    return len(connection.execute(statement.returning(table.c.id), rows).all())


# ---------------------------------------------------------------- sending

Send = Callable[[str, dict[str, str], bytes, float], tuple[int | None, str]]
"""(url, headers, body, timeout) -> (HTTP status or None, error text): one POST."""


def post_with_requests(
    url: str, headers: dict[str, str], body: bytes, timeout: float
) -> tuple[int | None, str]:
    """One POST, no redirects followed (a receiver answers where it was registered)."""
    import requests

    try:
        response = requests.post(
            url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )
    except requests.RequestException as error:
        return None, f"{type(error).__name__}: {error}"[:500]
    return response.status_code, "" if response.ok else response.text[:200]


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    disabled: list[int] = field(default_factory=list)  # endpoint ids disabled in this run


OnDisabled = Callable[[Session, WebhookEndpoint, datetime], None]
"""Called in the transaction that disables an endpoint (a system session: rows it adds
carry their tenant_id), e.g. to open a concierge task."""


def deliver_due(
    engine: Engine,
    settings: Any,
    now: datetime,
    *,
    owner: str,
    send: Send = post_with_requests,
    on_disabled: OnDisabled | None = None,
    limit: int = 500,
    disable_after: timedelta = DISABLE_AFTER,
) -> DeliveryReport:
    """Send every delivery due at ``now`` (up to ``limit``), in order per subject."""
    report = DeliveryReport()
    failing: set[int] = set()  # endpoints that failed in this run: not hammered again
    while limit > 0:
        batch = _claim(engine, now, owner, failing, min(limit, 100))
        if not batch:
            break
        limit -= len(batch)
        for delivery_id in batch:
            outcome = _deliver_one(engine, settings, delivery_id, now, owner, send)
            if outcome is None:
                continue
            endpoint_id, ok = outcome
            if ok:
                report.delivered += 1
                continue
            report.failed += 1
            failing.add(endpoint_id)
            if _maybe_disable(engine, endpoint_id, now, disable_after, on_disabled):
                report.disabled.append(endpoint_id)
    return report


def _claim(engine: Engine, now: datetime, owner: str, skip: set[int], limit: int) -> list[int]:
    """Lease the next due deliveries (the first undelivered one of each subject only)."""
    earlier = aliased(WebhookDelivery)
    lease_free = or_(
        col(WebhookDelivery.lease_until).is_(None), col(WebhookDelivery.lease_until) < now
    )
    query = (
        select(col(WebhookDelivery.id))
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .where(
            col(WebhookDelivery.state) == PENDING,
            col(WebhookDelivery.next_attempt_at) <= now,
            col(WebhookEndpoint.enabled).is_(True),
            lease_free,
            ~exists().where(
                and_(
                    col(earlier.endpoint_id) == col(WebhookDelivery.endpoint_id),
                    col(earlier.subject) == col(WebhookDelivery.subject),
                    col(earlier.state) == PENDING,
                    col(earlier.id) < col(WebhookDelivery.id),
                )
            ),
        )
        .order_by(col(WebhookDelivery.id))
        .limit(limit)
    )
    if skip:
        query = query.where(col(WebhookDelivery.endpoint_id).notin_(skip))
    claimed: list[int] = []
    # Deliveries of every tenant are due together: one worker sends them all.
    with system_session(engine, reason="webhook outbox: claim due deliveries") as session:
        for delivery_id in session.execute(query).scalars().all():
            taken = session.execute(
                update(WebhookDelivery)
                .where(col(WebhookDelivery.id) == delivery_id, lease_free)
                .values(lease_owner=owner, lease_until=now + LEASE)
            )
            if rowcount(taken) == 1:
                claimed.append(delivery_id)
    return claimed


def _deliver_one(
    engine: Engine, settings: Any, delivery_id: int, now: datetime, owner: str, send: Send
) -> tuple[int, bool] | None:
    with system_session(engine, reason="webhook outbox: read a claimed delivery") as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.lease_owner != owner:
            return None
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is None:
            return None
        url, sealed, payload = endpoint.url, endpoint.sealed_secret, delivery.payload
        msg_id, attempts = delivery.msg_id, delivery.attempts
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = signed_headers(secret_box(settings).open(sealed)["secret"], msg_id, now, body)
    refused = refused_target(url, settings.private_webhook_receivers)
    status, error = (None, refused) if refused else send(url, headers, body, TIMEOUT_SECONDS)
    ok = status is not None and 200 <= status < 300
    _settle(engine, delivery_id, owner, now, ok, status, error, attempts + 1)
    return delivery.endpoint_id, ok


def signed_headers(secret: str, msg_id: str, now: datetime, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers for ``body`` sent at ``now``."""
    return {
        "content-type": "application/json",
        "user-agent": "partnercast-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }


def _settle(
    engine: Engine,
    delivery_id: int,
    owner: str,
    now: datetime,
    ok: bool,
    status: int | None,
    error: str,
    attempts: int,
) -> None:
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_attempt_at": now,
        "last_status": status,
        "last_error": ("" if ok else error or f"HTTP {status}")[:500],
        "lease_owner": "",
        "lease_until": None,
    }
    if ok:
        values.update(state=DELIVERED, delivered_at=now)
    else:
        values["next_attempt_at"] = now + RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    with system_session(engine, reason="webhook outbox: settle a delivery") as session:
        settled = session.execute(
            update(WebhookDelivery)
            .where(
                col(WebhookDelivery.id) == delivery_id,
                col(WebhookDelivery.lease_owner) == owner,
            )
            .values(**values)
        )
        if rowcount(settled) != 1:
            return  # the lease ran out and another worker has it: its outcome counts
        delivery = session.get(WebhookDelivery, delivery_id)
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id) if delivery else None
        if endpoint is None:
            return
        if ok:
            endpoint.failing_since, endpoint.consecutive_failures = None, 0
        else:
            endpoint.failing_since = endpoint.failing_since or now
            endpoint.consecutive_failures += 1
        session.add(endpoint)


def _maybe_disable(
    engine: Engine,
    endpoint_id: int,
    now: datetime,
    disable_after: timedelta,
    on_disabled: OnDisabled | None,
) -> bool:
    with system_session(engine, reason="webhook outbox: disable a failing endpoint") as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        if endpoint is None or not endpoint.enabled or endpoint.failing_since is None:
            return False
        if endpoint.consecutive_failures < DISABLE_MIN_FAILURES:
            return False
        if now - endpoint.failing_since < disable_after:
            return False
        endpoint.enabled = False
        endpoint.disabled_reason = (
            f"every delivery failed since {endpoint.failing_since.isoformat()} "
            f"({endpoint.consecutive_failures} attempts)"
        )[:500]
        endpoint.updated_at = now
        session.add(endpoint)
        session.flush()
        log.warning("webhook endpoint %s disabled: %s", endpoint_id, endpoint.disabled_reason)
        if on_disabled is not None:
            on_disabled(session, endpoint, now)
    return True
