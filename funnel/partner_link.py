"""Signed, expiring links to a partner's own results page (``/partner/<token>``).

A link names its tenant and partner and is signed like the engine's other links
(:mod:`partnercast.core.signing`: itsdangerous, the settings' secret key) with a salt of
its own *per tenant*: ``<tenant id>.<signed [tenant id, partner id, external id, expiry]>``.
The tenant id in front only picks the key to check the rest with; the signed payload
must name the same tenant. So a token cannot be moved to another tenant (another salt:
the signature fails), nor to another partner (the payload is signed), and it stops
working at its own expiry (``--days``), checked on top of itsdangerous' own age limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from partnercast.core.errors import NotFound, UserError
from partnercast.core.settings import Settings
from partnercast.core.signing import InvalidToken, sign, unsign
from partnercast.core.tenancy import session_tenant
from partnercast.core.timeutil import as_utc
from partnercast.tenants.models import Partner
from partnercast.tenants.partners import get_partner

PURPOSE = "partner_results"
PATH = "/partner/"
DEFAULT_DAYS = 30
MAX_DAYS = 366
NOT_VALID = "this link is not valid"


@dataclass(frozen=True)
class PartnerLink:
    """Whose results a verified token opens."""

    tenant_id: int
    partner_id: int
    external_id: str
    expires_at: int  # Unix seconds


def _purpose(tenant_id: int) -> str:
    return f"{PURPOSE}.t{tenant_id}"


def make_token(
    settings: Settings,
    tenant_id: int,
    partner: Partner,
    *,
    days: int = DEFAULT_DAYS,
    now: datetime,
) -> str:
    """A token for ``partner``'s results page, valid for ``days`` days from ``now``."""
    if not 1 <= days <= MAX_DAYS:
        raise UserError(f"must be from 1 to {MAX_DAYS} days, not {days}", where="--days")
    if partner.id is None or partner.tenant_id != tenant_id:
        raise NotFound("no such partner in this tenant")
    moment = as_utc(now)
    expires = int(moment.timestamp()) + days * 86400
    payload = [tenant_id, partner.id, partner.external_id, expires]
    signed = sign(settings, _purpose(tenant_id), payload, now=moment)
    return f"{tenant_id}.{signed}"


def results_url(
    session: Session,
    settings: Settings,
    external_id: str,
    *,
    days: int = DEFAULT_DAYS,
    now: datetime,
) -> str:
    """The full link (``public_base_url`` + ``/partner/<token>``) for one partner of the
    session's tenant, valid ``days`` from ``now``; NotFound names ``external_id`` when the
    tenant has no such partner."""
    partner = get_partner(session, external_id, where="partners link")
    token = make_token(settings, session_tenant(session), partner, days=days, now=now)
    return f"{settings.public_base_url.rstrip('/')}{PATH}{token}"


def read_token(settings: Settings, token: str, *, now: datetime) -> PartnerLink:
    """Whose results ``token`` opens at ``now``, or InvalidToken (forged, damaged, moved,
    expired)."""
    head, _, signed = token.partition(".")
    if not head.isdigit() or len(head) > 12 or not signed:
        raise InvalidToken(NOT_VALID)
    tenant_id = int(head)
    moment = as_utc(now)
    max_age = MAX_DAYS * 86400
    payload = unsign(settings, _purpose(tenant_id), signed, max_age_seconds=max_age, now=moment)
    if (
        not isinstance(payload, list)
        or len(payload) != 4
        or payload[0] != tenant_id
        or not isinstance(payload[1], int)
        or not isinstance(payload[2], str)
        or not isinstance(payload[3], int)
    ):
        raise InvalidToken(NOT_VALID)
    if payload[3] <= moment.timestamp():
        raise InvalidToken("this link has expired")
    return PartnerLink(tenant_id, payload[1], payload[2], payload[3])
