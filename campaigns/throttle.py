"""How many messages of a dispatch may go now under its rate limits, and when the rest may.

The send path calls :func:`allowance` before publishing ``n`` messages (or one post):
it takes ``n`` tokens from every bucket that applies and returns how many were granted by
all of them; tokens one bucket granted but another refused are given back. Buckets:

* the partner's channel account: the limits the partner set on the account
  (``rate_per_minute``, ``rate_per_hour``, ``rate_per_day``, ``rate_per_second`` fields
  of the channel's Account model), else the channel's declared ``rate_limits``
  (``{"per_minute": 30}``); tenant-owned, one bucket per partner, channel and period;
* the provider: ``settings.rate_limits[channel]`` (``PARTNERCAST_RATE_LIMITS``, JSON),
  a system-level bucket per channel and period, shared by every tenant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import Engine

from partnercast.core.ratelimit import Limit, acquire, give_back, limits_from
from partnercast.core.timeutil import as_utc
from partnercast.plugins.channel import Channel


@dataclass(frozen=True)
class Allowance:
    """``may_send`` of the ``n`` asked for may go now; the rest not before ``retry_at``."""

    may_send: int
    retry_at: datetime | None = None
    limited_by: str = ""

    @property
    def all(self) -> bool:
        return self.retry_at is None


@dataclass(frozen=True)
class _Bucket:
    key: str
    limit: Limit
    tenant_id: int | None
    partner_id: int | None


def account_limits(
    channel: Channel | type[Channel], account: BaseModel | Mapping[str, Any] | None
) -> list[Limit]:
    """The partner's own limits on the account, else the channel's declared defaults."""
    values: Any = account.model_dump() if isinstance(account, BaseModel) else account
    own = limits_from(dict(values)) if values else []
    return own or limits_from(dict(getattr(channel, "rate_limits", {}) or {}))


def provider_limits(settings: Any, channel_name: str) -> list[Limit]:
    """The provider-wide caps configured for a channel (settings.rate_limits)."""
    caps = getattr(settings, "rate_limits", None) or {}
    return limits_from(dict(caps.get(channel_name) or {}))


def buckets_for(
    settings: Any,
    *,
    tenant_id: int,
    partner_id: int,
    channel: Channel | type[Channel],
    account: BaseModel | Mapping[str, Any] | None,
) -> list[_Bucket]:
    name = channel.name
    own = [
        _Bucket(f"{name}:partner:{partner_id}:{limit.period}", limit, tenant_id, partner_id)
        for limit in account_limits(channel, account)
    ]
    provider = [
        _Bucket(f"{name}:provider:{limit.period}", limit, None, None)
        for limit in provider_limits(settings, name)
    ]
    return own + provider


def allowance(
    engine: Engine,
    settings: Any,
    *,
    tenant_id: int,
    partner_id: int,
    channel: Channel | type[Channel],
    account: BaseModel | Mapping[str, Any] | None,
    n: int,
    now: datetime,
) -> Allowance:
    """Take up to ``n`` tokens from every bucket of this partner's account and channel.

    Returns how many may go now (send those) and, when fewer than ``n``, the instant to
    come back for the rest (reschedule the dispatch then). No bucket applies: all ``n``.
    """
    granted, wait, limited_by = n, 0.0, ""
    taken: list[tuple[_Bucket, int]] = []
    for bucket in buckets_for(
        settings, tenant_id=tenant_id, partner_id=partner_id, channel=channel, account=account
    ):
        if granted == 0:
            break
        grant = acquire(
            engine,
            bucket.key,
            granted,
            now,
            bucket.limit.rate,
            bucket.limit.burst,
            tenant_id=bucket.tenant_id,
            channel=channel.name,
            partner_id=bucket.partner_id,
        )
        if grant.granted < granted:
            for earlier, amount in taken:  # an earlier bucket gave more than this one
                give_back(
                    engine, earlier.key, amount - grant.granted, now, tenant_id=earlier.tenant_id
                )
            taken = [(earlier, grant.granted) for earlier, _ in taken]
            granted = grant.granted
            if grant.wait_seconds >= wait:
                wait, limited_by = grant.wait_seconds, f"{bucket.key} ({bucket.limit})"
        taken.append((bucket, grant.granted))
    if granted >= n:
        return Allowance(n)
    return Allowance(granted, as_utc(now) + timedelta(seconds=max(wait, 0.001)), limited_by)
