"""``/api/v1/webhooks``: the tenant's outgoing webhook receivers and their deliveries
(agency admin tokens: what ``partnercast webhooks`` does).

* ``GET /webhooks``, ``GET /webhooks/{id}``;
* ``POST /webhooks``: a receiver (url, event types, description); the answer holds its
  signing secret, that once (a replay of the same Idempotency-Key answers without it:
  the secret is kept sealed only, never in the key's stored answer);
* ``PATCH /webhooks/{id}`` (If-Match): enable, disable, change its types or description;
  enabling sends its waiting deliveries, in order;
* ``DELETE /webhooks/{id}``;
* ``GET /webhooks/{id}/deliveries`` (``state``: pending or delivered), newest first;
* ``POST /webhooks/{id}/deliveries/{delivery_id}/replay``: the same message again (same
  webhook-id), due now.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from partnercast.core.errors import NotFound, UserError
from partnercast.core.tenancy import tenant_session
from partnercast.core.webhook_models import WebhookDelivery, WebhookEndpoint
from partnercast.core.webhook_outbox import (
    EVENT_TYPES,
    check_event_types,
    create_endpoint,
    delete_endpoint,
    get_endpoint,
    replay,
    set_enabled,
)
from partnercast.tenants.access import ADMIN
from partnercast.web.api.auth import Authenticated, Caller
from partnercast.web.api.common import ERRORS, Id, Page
from partnercast.web.api.conventions import (
    Cursor,
    IdempotencyKeyHeader,
    IfMatch,
    Limit,
    after_id,
    check_if_match,
    etag_of,
    fingerprint,
    json_response,
    once,
    page,
    with_etag,
)
from partnercast.web.problems import Problem

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=ERRORS)

EventType = Literal[
    "*",
    "enrollment.approved",
    "enrollment.declined",
    "enrollment.changes_requested",
    "dispatch.sent",
    "dispatch.failed",
    "lead.created",
    "lead.stage_changed",
    "task.opened",
    "contact.suppressed",
]


class EndpointOut(BaseModel):
    id: int
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str
    failing_since: datetime | None
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime


class CreatedEndpoint(EndpointOut):
    secret: str | None = Field(
        description="The signing secret (whsec_...), in the answer that made it only."
    )


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    event_types: list[EventType] = Field(min_length=1, max_length=len(EVENT_TYPES) + 1)
    description: str = Field(default="", max_length=200)


class EndpointChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    event_types: list[EventType] | None = Field(
        default=None, min_length=1, max_length=len(EVENT_TYPES) + 1
    )
    description: str | None = Field(default=None, max_length=200)


class DeliveryOut(BaseModel):
    id: int
    endpoint_id: int
    msg_id: str = Field(description="The webhook-id header: the same for retries and replays.")
    event_type: str
    subject: str
    payload: dict[str, Any]
    state: str
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str
    delivered_at: datetime | None
    created_at: datetime


def _out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut.model_validate(endpoint, from_attributes=True)


def _delivery(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut.model_validate(delivery, from_attributes=True)


def _admin(caller: Caller) -> None:
    if not caller.principal.may(ADMIN, caller.tenant_id):
        raise Problem(403, "webhooks are configured with an agency admin token")


def _endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    try:
        return get_endpoint(session, endpoint_id)
    except NotFound:
        raise Problem(404, f"no webhook endpoint {endpoint_id}") from None


def _refused(error: UserError) -> Problem:
    where = f"body.{error.where}" if error.where else "body"
    return Problem(422, f"{where}: {error.message}", errors=[(where, error.message)])


@router.get("", response_model=Page[EndpointOut], summary="List webhook endpoints")
def list_webhooks(
    caller: Authenticated, request: Request, limit: Limit = 50, cursor: Cursor = None
) -> Response:
    _admin(caller)
    start = after_id(caller, request, cursor)
    with tenant_session(caller.engine, caller.tenant_id) as session:
        rows = session.exec(
            select(WebhookEndpoint)
            .where(col(WebhookEndpoint.id) > start)
            .order_by(col(WebhookEndpoint.id))
            .limit(limit + 1)
        ).all()
    items = [_out(row) for row in rows]
    return json_response(200, page(caller, request, items, [i.id for i in items], limit))


@router.post("", response_model=CreatedEndpoint, status_code=201, summary="Add a webhook endpoint")
def add_webhook(
    caller: Authenticated,
    request: Request,
    body: EndpointIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    _admin(caller)
    made: dict[str, str] = {}

    def work(session: Session) -> Response:
        try:
            endpoint, secret = create_endpoint(
                session,
                caller.settings,
                url=body.url,
                event_types=list(body.event_types),
                now=caller.now,
                description=body.description,
            )
        except UserError as error:
            raise _refused(error) from None
        made["secret"] = secret
        # What the Idempotency-Key keeps: the answer without the secret.
        shown = CreatedEndpoint(**_out(endpoint).model_dump(), secret=None)
        return json_response(201, shown)

    answer = once(caller, idempotency_key, fingerprint(request, body), work)
    if "secret" not in made:
        return answer  # a replay: the secret was shown to the request that made it
    content = json.loads(bytes(answer.body)) | {"secret": made["secret"]}
    return json_response(201, content)


@router.get("/{endpoint_id}", response_model=EndpointOut, summary="One webhook endpoint")
def get_webhook(caller: Authenticated, endpoint_id: Id) -> Response:
    _admin(caller)
    with tenant_session(caller.engine, caller.tenant_id) as session:
        return with_etag(200, _out(_endpoint(session, endpoint_id)))


@router.patch(
    "/{endpoint_id}",
    response_model=EndpointOut,
    summary="Enable, disable or change an endpoint (If-Match required)",
    responses={412: ERRORS[422], 428: ERRORS[422]},
)
def patch_webhook(
    caller: Authenticated, endpoint_id: Id, body: EndpointChange, if_match: IfMatch = None
) -> Response:
    _admin(caller)
    with tenant_session(caller.engine, caller.tenant_id) as session:
        endpoint = _endpoint(session, endpoint_id)
        check_if_match(if_match, etag_of(_out(endpoint)))
        try:
            if body.event_types is not None:
                endpoint.event_types = check_event_types(body.event_types)
            if body.description is not None:
                endpoint.description = body.description.strip()
            endpoint.updated_at = caller.now
            session.add(endpoint)
            session.flush()
            if body.enabled is not None and body.enabled != endpoint.enabled:
                set_enabled(session, endpoint_id, body.enabled, now=caller.now)
        except UserError as error:
            raise _refused(error) from None
        session.refresh(endpoint)
        return with_etag(200, _out(endpoint))


@router.delete("/{endpoint_id}", status_code=204, summary="Remove an endpoint")
def delete_webhook(caller: Authenticated, endpoint_id: Id) -> Response:
    _admin(caller)
    with tenant_session(caller.engine, caller.tenant_id) as session:
        _endpoint(session, endpoint_id)
        delete_endpoint(session, endpoint_id)
    return Response(status_code=204)


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=Page[DeliveryOut],
    summary="An endpoint's deliveries, oldest first",
)
def list_deliveries(
    caller: Authenticated,
    request: Request,
    endpoint_id: Id,
    limit: Limit = 50,
    cursor: Cursor = None,
    state: Literal["pending", "delivered"] | None = None,
) -> Response:
    _admin(caller)
    start = after_id(caller, request, cursor)
    with tenant_session(caller.engine, caller.tenant_id) as session:
        _endpoint(session, endpoint_id)
        query = select(WebhookDelivery).where(
            WebhookDelivery.endpoint_id == endpoint_id, col(WebhookDelivery.id) > start
        )
        if state is not None:
            query = query.where(WebhookDelivery.state == state)
        rows = session.exec(query.order_by(col(WebhookDelivery.id)).limit(limit + 1)).all()
    items = [_delivery(row) for row in rows]
    return json_response(200, page(caller, request, items, [i.id for i in items], limit))


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/replay",
    response_model=DeliveryOut,
    summary="Send a delivery again (the same webhook-id), due now",
)
def replay_delivery(
    caller: Authenticated,
    request: Request,
    endpoint_id: Id,
    delivery_id: Id,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    _admin(caller)

    def work(session: Session) -> Response:
        _endpoint(session, endpoint_id)
        found = session.get(WebhookDelivery, delivery_id)
        if found is None or found.endpoint_id != endpoint_id:
            raise Problem(404, f"no delivery {delivery_id} of webhook endpoint {endpoint_id}")
        return json_response(200, _delivery(replay(session, delivery_id, now=caller.now)))

    return once(caller, idempotency_key, fingerprint(request, ReplayIn()), work)
