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

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from partnercast.core.tenancy import TenantOwned


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
