"""Signed POSTs (the CRM webhook; mail feedback, via the host): the tenant they come from,
verified by the Standard Webhooks scheme (:mod:`partnercast.funnel.crm_secret`), and each
message's id accepted once per tenant.

:func:`signed_message` checks the headers, signature and timestamp; the caller claims the
id (``crm_secret.claim_message``) in the transaction that applies the message, so that a
replay is refused and a message that failed can be sent again. :func:`accept` and
:func:`release` do it in transactions of their own, for the plugin host (mail feedback,
whose recording opens its own transaction).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import col, delete, select

from partnercast.core.settings import Settings
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.funnel.crm_secret import (
    NotAccepted,
    SignedMessage,
    claim_message,
    unsigned_reason,
    verify,
    verify_secret,
)
from partnercast.funnel.models import WebhookMessage
from partnercast.tenants.models import Tenant

ALREADY_RECEIVED = "already received: this webhook-id was accepted before (a replay)"


class Refused(Exception):
    """A signed POST refused: ``status`` (401: not signed, not valid, not on time; 409: a
    replay) and the one-line ``reason`` the sender is told."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class SignedPost:
    """A verified message and the tenant it comes from."""

    tenant_id: int
    message: SignedMessage


def signed_message(
    engine: Engine,
    settings: Settings,
    slug: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: datetime,
) -> SignedPost:
    """The tenant ``slug`` names and the message, when ``body`` carries that tenant's
    Standard Webhooks signature made within the tolerance of ``now``; else Refused (an
    unknown tenant and a bad signature look the same)."""
    unsigned = unsigned_reason(headers)
    if unsigned is not None:
        raise Refused(unsigned)  # before the tenant is looked up: says nothing of which exist
    with plain_session(engine) as session:
        tenant = session.exec(select(Tenant).where(Tenant.slug == slug)).first()
    if tenant is None or tenant.id is None:
        raise Refused("signature not valid")
    with tenant_session(engine, tenant.id) as session:
        secret = verify_secret(session, settings)
    try:
        return SignedPost(tenant.id, verify(secret, body, headers, now=now))
    except NotAccepted as error:
        raise Refused(str(error)) from error


def accept(
    engine: Engine,
    settings: Settings,
    slug: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    source: str,
    now: datetime,
) -> SignedPost:
    """:func:`signed_message`, then its id claimed for good in a transaction of its own
    (Refused with 409 when it was accepted before)."""
    post = signed_message(engine, settings, slug, body, headers, now=now)
    with tenant_session(engine, post.tenant_id) as session:
        if not claim_message(session, post.message, source=source, now=now):
            raise Refused(ALREADY_RECEIVED, 409)
    return post


def release(engine: Engine, post: SignedPost) -> None:
    """Forget an accepted id: what the message asked was not done, and its sender may
    send it again (the same id, as Standard Webhooks senders retry)."""
    with tenant_session(engine, post.tenant_id) as session:
        session.execute(
            delete(WebhookMessage).where(
                col(WebhookMessage.tenant_id) == post.tenant_id,
                col(WebhookMessage.message_id) == post.message.message_id,
            )
        )
