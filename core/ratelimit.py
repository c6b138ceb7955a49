"""Rate limits as token buckets kept in the database, so that they hold across workers.

A bucket has a ``rate`` (tokens per second) and a ``burst`` (its size). "30 a minute" is
``rate=0.5, burst=30``; "300 a day" is ``rate=300/86400, burst=300``. :func:`acquire`
refills the bucket for the time gone by and takes up to the tokens asked for, under a lock
on the bucket's row: its first statement is a no-op UPDATE of that row, which takes the
row lock on PostgreSQL (the other workers queue on it) and SQLite's write lock (taken as
the transaction's first statement, so it waits on the busy timeout instead of failing).
The read, the arithmetic and the write that follow are then the only ones on that bucket
until commit, so any number of workers on any number of hosts never take more than
``burst + rate * elapsed``. Each call is a transaction of its own, a few milliseconds long.

Buckets of a partner's channel account belong to its tenant (:class:`RateBucket`, a
tenant-owned table, taken in a tenant session); provider-wide caps (one API quota for the
whole installation) are system-level (:class:`ProviderBucket`, taken in a system session).

Each bucket also records what was taken in the current and the previous minute and hour,
so that ``partnercast status`` can show an effective rate without scanning the ledger.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import UniqueConstraint, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from partnercast.core.sql import rowcount
from partnercast.core.tenancy import TenantOwned, system_session, tenant_session
from partnercast.core.timeutil import as_utc


class BucketFields(SQLModel):
    """The columns every bucket has (times are seconds since the epoch, as floats)."""

    key: str = Field(max_length=200)
    channel: str = Field(default="", max_length=64)
    rate: float
    burst: float
    tokens: float
    updated: float
    minute_start: float = 0.0
    minute_taken: int = 0
    prev_minute_taken: int = 0
    hour_start: float = 0.0
    hour_taken: int = 0
    prev_hour_taken: int = 0
    taken_total: int = 0


class RateBucket(TenantOwned, BucketFields, table=True):
    """A bucket of one tenant: a partner's channel account, one limit (per minute, ...)."""

    __tablename__ = "rate_bucket"
    __table_args__ = (UniqueConstraint("tenant_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int | None = Field(default=None, index=True)


class ProviderBucket(BucketFields, table=True):
    """A system-level bucket: a provider-wide cap shared by every tenant."""

    __tablename__ = "provider_bucket"
    __table_args__ = (UniqueConstraint("key"),)

    id: int | None = Field(default=None, primary_key=True)


@dataclass(frozen=True)
class Grant:
    """What :func:`acquire` gave: ``granted`` tokens now (0..asked), and when to come back.

    ``wait_seconds`` is 0 when everything asked for was granted; otherwise the time until
    the bucket holds the rest (at most a full bucket): sending then does not spin on one
    token at a time.
    """

    granted: int
    wait_seconds: float


PERIODS: dict[str, float] = {
    "per_second": 1.0,
    "per_minute": 60.0,
    "per_hour": 3600.0,
    "per_day": 86400.0,
}


@dataclass(frozen=True)
class Limit:
    """``count`` per ``period`` (a key of :data:`PERIODS`): a bucket of that size and rate."""

    count: int
    period: str

    @property
    def rate(self) -> float:
        return self.count / PERIODS[self.period]

    @property
    def burst(self) -> float:
        return float(self.count)

    def __str__(self) -> str:
        return f"{self.count}/{self.period.removeprefix('per_')}"


def limits_from(values: object) -> list[Limit]:
    """The limits in a mapping such as ``{"per_minute": 30, "per_day": 500}``.

    Also reads an account's ``rate_per_minute``-style names. Unknown keys and empty or
    non-positive values are ignored (no limit), so a partner clearing a field lifts it.
    """
    if not isinstance(values, dict):
        return []
    found: list[Limit] = []
    for period in PERIODS:
        count = values.get(period, values.get("rate_" + period))
        if isinstance(count, int | float) and not isinstance(count, bool) and count > 0:
            found.append(Limit(int(count), period))
    return found


def epoch(moment: datetime | float) -> float:
    """Seconds since the epoch of a datetime (naive means UTC) or a float as is."""
    if isinstance(moment, int | float):
        return float(moment)
    return as_utc(moment).timestamp()


def acquire(
    engine: Engine,
    key: str,
    tokens: int,
    now: datetime | float,
    rate: float,
    burst: float,
    *,
    tenant_id: int | None,
    channel: str = "",
    partner_id: int | None = None,
) -> Grant:
    """Refill bucket ``key`` to ``now`` and take up to ``tokens`` from it, atomically.

    ``tenant_id`` names the tenant owning the bucket (a partner's account); None takes
    from a provider-wide bucket in a system session. A new bucket starts full. ``rate``
    and ``burst`` are the limit in force now: a changed limit applies from this call on.
    Takes an engine, not a session: the bucket's lock is held only for this short
    transaction (and SQLite's write lock must be its first statement).
    """
    if rate <= 0 or burst < 1:
        raise ValueError(f"a bucket needs rate > 0 and burst >= 1 (got {rate}, {burst})")
    moment = epoch(now)
    with _bucket_session(engine, tenant_id) as session:
        bucket = _locked(session, key, moment, rate, burst, tenant_id, channel, partner_id)
        level = _refill(bucket, moment, rate, burst)
        granted = max(0, min(int(tokens), math.floor(level + 1e-9)))
        level -= granted
        bucket.tokens = level
        _record(bucket, moment, granted)
        session.add(bucket)
    if granted >= tokens:
        return Grant(granted, 0.0)
    wanted = min(float(tokens - granted), burst)
    return Grant(granted, max(0.0, (wanted - level) / rate))


def give_back(
    engine: Engine, key: str, tokens: int, now: datetime | float, *, tenant_id: int | None
) -> None:
    """Return ``tokens`` taken but not used (another limit refused them), up to the burst."""
    if tokens <= 0:
        return
    moment = epoch(now)
    model = _model(tenant_id)
    with _bucket_session(engine, tenant_id) as session:
        _lock(session, model, key)
        bucket = session.exec(select(model).where(model.key == key)).first()
        if bucket is None:
            return
        _refill(bucket, moment, bucket.rate, bucket.burst)
        bucket.tokens = min(bucket.burst, bucket.tokens + tokens)
        _record(bucket, moment, -tokens)
        session.add(bucket)


def taken_recently(bucket: BucketFields, now: datetime | float) -> tuple[float, float]:
    """(tokens taken in the last minute, in the last hour), estimated from the windows.

    The previous window counts in proportion to how much of it the last 60 s (3600 s)
    still overlap: a sliding window from two fixed ones.
    """
    moment = epoch(now)
    return (
        _sliding(moment, bucket.minute_start, bucket.minute_taken, bucket.prev_minute_taken, 60),
        _sliding(moment, bucket.hour_start, bucket.hour_taken, bucket.prev_hour_taken, 3600),
    )


def _sliding(moment: float, start: float, current: int, previous: int, size: float) -> float:
    window = math.floor(moment / size) * size
    if start == window:
        return current + previous * (1 - (moment - window) / size)
    if start == window - size:  # nothing taken in this window yet
        return current * (1 - (moment - window) / size)
    return 0.0


def _model(tenant_id: int | None) -> type[RateBucket] | type[ProviderBucket]:
    return ProviderBucket if tenant_id is None else RateBucket


@contextmanager
def _bucket_session(engine: Engine, tenant_id: int | None) -> Iterator[Session]:
    if tenant_id is None:
        reason = "a provider-wide rate limit is shared by every tenant"
        with system_session(engine, reason=reason) as session:
            yield session
    else:
        with tenant_session(engine, tenant_id) as session:
            yield session


def _lock(session: Session, model: type[BucketFields], key: str) -> int:
    """Lock the bucket's row (PostgreSQL) and the database for writing (SQLite)."""
    result = session.execute(
        update(model)
        .where(col(model.key) == key)
        .values(key=model.key)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def _locked(
    session: Session,
    key: str,
    moment: float,
    rate: float,
    burst: float,
    tenant_id: int | None,
    channel: str,
    partner_id: int | None,
) -> BucketFields:
    model = _model(tenant_id)
    if not _lock(session, model, key):
        row: BucketFields
        if tenant_id is None:
            row = ProviderBucket(
                key=key, channel=channel, rate=rate, burst=burst, tokens=burst, updated=moment
            )
        else:
            row = RateBucket(
                key=key,
                channel=channel,
                rate=rate,
                burst=burst,
                tokens=burst,
                updated=moment,
                partner_id=partner_id,
            )
            row.tenant_id = tenant_id
        try:
            with session.begin_nested():  # two workers creating it at once: one wins
                session.add(row)
        except IntegrityError:
            pass
        _lock(session, model, key)
    bucket = session.exec(select(model).where(model.key == key)).one()
    return bucket


def _refill(bucket: BucketFields, moment: float, rate: float, burst: float) -> float:
    elapsed = max(0.0, moment - bucket.updated)  # a host whose clock is behind adds nothing
    bucket.rate, bucket.burst = rate, burst
    bucket.tokens = min(burst, bucket.tokens + elapsed * rate)
    bucket.updated = max(bucket.updated, moment)
    return bucket.tokens


def _record(bucket: BucketFields, moment: float, taken: int) -> None:
    minute = math.floor(moment / 60) * 60.0
    if bucket.minute_start != minute:
        adjacent = bucket.minute_start == minute - 60
        bucket.prev_minute_taken = bucket.minute_taken if adjacent else 0
        bucket.minute_start, bucket.minute_taken = minute, 0
    hour = math.floor(moment / 3600) * 3600.0
    if bucket.hour_start != hour:
        adjacent = bucket.hour_start == hour - 3600
        bucket.prev_hour_taken = bucket.hour_taken if adjacent else 0
        bucket.hour_start, bucket.hour_taken = hour, 0
    bucket.minute_taken = max(0, bucket.minute_taken + taken)
    bucket.hour_taken = max(0, bucket.hour_taken + taken)
    bucket.taken_total = max(0, bucket.taken_total + taken)
