"""The dispatch outbox and the per-contact delivery ledger.

Dispatches are planned ahead with an idempotency key; deliveries are written (state
``pending``) and committed BEFORE their message is handed to a channel, and marked after.
So a tick that runs twice, or after a crash, finds every contact already in the ledger
and sends nothing twice; a delivery left ``pending`` by a crash is retried with the same
Message-ID, so that a receiver can drop the duplicate.

Claims, leases and fencing (several workers, several hosts):

* :func:`claim_due` leases due dispatches of every tenant to one worker in ONE statement,
  ``UPDATE dispatch SET lease_owner = :me, lease_until = :now + lease ... WHERE id IN
  (SELECT id ... claimable ... LIMIT n) AND <claimable again> RETURNING id, tenant_id``.
  On PostgreSQL the inner SELECT is ``FOR UPDATE SKIP LOCKED``, so concurrent claimers
  skip each other's rows instead of queueing; the outer WHERE is re-evaluated on the
  latest row version, so a row is never leased twice. On SQLite writers are serialised
  by the database lock (the statement is the first of its transaction, so it waits on the
  busy timeout rather than failing): a second worker is safe but gains nothing.
* Claimable: pending and due with no live lease, or running with an expired (or no)
  lease, which is a worker that died mid-dispatch. ``tick(now)`` uses a fixed owner and
  also takes its own live leases (``reclaim_own``), so ticking again after a crash
  resumes at once.
* :func:`fence` is called in the same transaction as every later write to a claimed
  dispatch (start, ledger rows, outcomes, finish, retry): ``UPDATE dispatch SET
  lease_until = <renewed> WHERE id = :id AND lease_owner = :me AND lease_until > :now``
  must match one row, else :class:`LeaseLost` is raised and the transaction rolls back.
  The row lock it takes serialises it against a takeover, so either the write commits
  before another worker claims the dispatch, or it changes nothing. Each fenced write
  also renews the lease: a long dispatch keeps it as long as it makes progress.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    update,
)
from sqlalchemy import select as select_columns
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from partnercast.core.errors import PartnercastError
from partnercast.core.models import HELD_FOR_APPROVAL, Delivery, Dispatch, Event
from partnercast.core.sql import rowcount, table_of, unnested
from partnercast.core.tenancy import session_tenant, system_session
from partnercast.core.timeutil import as_utc

PENDING = "pending"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
SKIPPED = "skipped"

SENT = "sent"
SENDING = "sending"  # on the wire, outcome not yet noted (core/journal.py)
SUPPRESSED = "suppressed"
BOUNCED = "bounced"
UNCERTAIN = "uncertain"  # at most once: was on the wire in a crash, never resent


def idempotency_key(tenant_id: int, enrollment_id: int, touch_id: int, cycle_id: int) -> str:
    return f"t{tenant_id}:e{enrollment_id}:touch{touch_id}:c{cycle_id}"


def due_dispatches(session: Session, now: datetime, *, limit: int = 100) -> list[Dispatch]:
    """Pending dispatches whose time has come, oldest first."""
    statement = (
        select(Dispatch)
        .where(col(Dispatch.state) == PENDING, col(Dispatch.scheduled_at) <= now)
        .order_by(col(Dispatch.scheduled_at), col(Dispatch.id))
        .limit(limit)
    )
    return list(session.exec(statement).all())


DEFAULT_LEASE_SECONDS = 300


class LeaseLost(PartnercastError):
    """This worker's lease on a dispatch expired and was (or may be) taken over."""


@dataclass(frozen=True)
class Lease:
    """A worker's right to write one or more claimed dispatches, until it expires.

    ``clock`` gives the instant fences compare against: real time for the worker, the
    simulated instant for ``tick(now)`` on a fake clock.
    """

    owner: str
    clock: Callable[[], datetime]
    seconds: float = DEFAULT_LEASE_SECONDS

    def now(self) -> datetime:
        return as_utc(self.clock())

    @property
    def duration(self) -> timedelta:
        return timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class Claim:
    dispatch_id: int
    tenant_id: int


def _claimable(now: datetime, owner: str | None) -> ColumnElement[bool]:
    free = [col(Dispatch.lease_until).is_(None), col(Dispatch.lease_until) < now]
    if owner is not None:
        free.append(col(Dispatch.lease_owner) == owner)
    expired = or_(*free)
    return or_(
        and_(col(Dispatch.state) == PENDING, col(Dispatch.scheduled_at) <= now, expired),
        and_(col(Dispatch.state) == RUNNING, expired),
    )


def claim_due(
    engine: Engine,
    now: datetime,
    worker_id: str,
    *,
    limit: int = 50,
    lease_seconds: float = DEFAULT_LEASE_SECONDS,
    tenant_ids: Collection[int] | None = None,
    exclude: Collection[int] = (),
    reclaim_own: bool = False,
    after_tenant: int = 0,
) -> list[Claim]:
    """Lease up to ``limit`` due dispatches to ``worker_id``, taking turns between tenants.

    Crosses tenants on purpose (a worker serves them all); each claim carries its
    tenant, and the dispatch is then run in that tenant's scoped session.

    Fair between tenants: each tenant's due dispatches are ranked oldest first, and the
    claim takes every tenant's first, then every tenant's second, and so on, so one
    tenant's backlog (a thousand dispatches, or a thousand failing ones) never keeps
    another tenant's work waiting behind it. Within a rank, tenants come in turn from
    the one after ``after_tenant`` (the caller passes the last tenant it ran: successive
    claims go round the tenants). The claims come back in that order: the tenants'
    first dispatches, then their second ones.

    ``reclaim_own`` also takes rows whose live lease ``worker_id`` already holds (a fixed
    id ticking again after a crash); ``exclude`` leaves out ids the caller has seen.
    """
    moment = as_utc(now)
    condition = _claimable(moment, worker_id if reclaim_own else None)
    turn = (
        func.row_number()
        .over(
            partition_by=col(Dispatch.tenant_id),
            order_by=(col(Dispatch.scheduled_at), col(Dispatch.id)),
        )
        .label("turn")
    )
    due = select_columns(col(Dispatch.id).label("id"), turn).where(condition)
    if tenant_ids is not None:
        due = due.where(col(Dispatch.tenant_id).in_(list(tenant_ids)))
    if exclude:
        due = due.where(col(Dispatch.id).not_in(list(exclude)))
    ranked = due.subquery("ranked")
    after = case((col(Dispatch.tenant_id) > after_tenant, 0), else_=1)
    # A CTE, evaluated once. As ``id IN (subquery)`` PostgreSQL may plan a nested-loop semi
    # join that rescans the subquery per outer row; each rescan skips the rows just claimed
    # and yields the next one, so LIMIT 1 claimed every due row (the crash test saw it).
    # The ranks are a subquery of their own: PostgreSQL locks no row of a query level
    # with a window function, so only ``dispatch`` is locked (FOR UPDATE OF dispatch).
    claimable = (
        select(Dispatch.id)
        .join(ranked, ranked.c.id == col(Dispatch.id))
        .order_by(ranked.c.turn, after, col(Dispatch.tenant_id), col(Dispatch.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=Dispatch)  # PostgreSQL; SQLite has none
        .cte("claimable")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    statement = (
        update(Dispatch)
        .where(col(Dispatch.id).in_(select(claimable.c.id)), condition)
        .values(
            lease_owner=worker_id,
            lease_until=moment + timedelta(seconds=lease_seconds),
            claimed_at=moment,
        )
        .returning(col(Dispatch.id), col(Dispatch.tenant_id), col(Dispatch.scheduled_at))
        .execution_options(synchronize_session=False)
    )
    with system_session(engine, reason="a worker claims due dispatches of every tenant") as s:
        rows = s.execute(statement).all()
    return in_turns(
        [(Claim(int(row[0]), int(row[1])), as_utc(row[2])) for row in rows], after_tenant
    )


def in_turns(claims: Sequence[tuple[Claim, datetime]], after_tenant: int = 0) -> list[Claim]:
    """``claims`` (each with its due time) in the order they are to run: each tenant's
    oldest first, the tenants taking turns from the one after ``after_tenant``."""
    queues: dict[int, list[Claim]] = {}
    for claim, _due in sorted(claims, key=lambda item: (item[1], item[0].dispatch_id)):
        queues.setdefault(claim.tenant_id, []).append(claim)
    tenants = sorted(queues, key=lambda tenant: (tenant <= after_tenant, tenant))
    ordered: list[Claim] = []
    for rank in range(max((len(queue) for queue in queues.values()), default=0)):
        ordered.extend(queues[t][rank] for t in tenants if rank < len(queues[t]))
    return ordered


def fence(session: Session, dispatch_id: int, lease: Lease) -> Dispatch:
    """Check, in the caller's transaction, that ``lease`` still holds ``dispatch_id``; the
    dispatch's row, as the check left it.

    Renews the lease as it checks. Raises :class:`LeaseLost` when it does not hold: the
    caller's transaction must then roll back (raising does that in our sessions). The
    UPDATE returns the row into the session (RETURNING), so the caller's
    ``session.get(Dispatch, dispatch_id)`` costs no second round trip: a dispatch runs
    four fenced transactions, and on PostgreSQL each statement costs the worker about
    as much as SQLite's whole query (docs/performance.md, "Small dispatches").
    """
    now = lease.now()
    held = session.scalars(
        update(Dispatch)
        .where(
            col(Dispatch.id) == dispatch_id,
            col(Dispatch.lease_owner) == lease.owner,
            col(Dispatch.lease_until) > now,
        )
        .values(lease_until=now + lease.duration)
        .returning(Dispatch)
        .execution_options(synchronize_session=False)
    ).all()
    if len(held) != 1:
        raise LeaseLost(f"worker {lease.owner} no longer holds dispatch {dispatch_id}")
    return held[0]


def end_lease(dispatch: Dispatch) -> None:
    """Clear the lease on a dispatch being finished or put back (after :func:`fence`)."""
    dispatch.lease_owner = None
    dispatch.lease_until = None


def release(engine: Engine, dispatch_ids: Collection[int], lease: Lease) -> int:
    """Give back leases this worker holds (shutting down): others may claim them at once."""
    if not dispatch_ids:
        return 0
    statement = (
        update(Dispatch)
        .where(col(Dispatch.id).in_(list(dispatch_ids)), col(Dispatch.lease_owner) == lease.owner)
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    with system_session(engine, reason="a worker gives back the dispatches it leased") as s:
        return rowcount(s.execute(statement))


def release_owned(engine: Engine, owner: str) -> int:
    """Give back every lease ``owner`` still holds (a worker's last act before it exits)."""
    statement = (
        update(Dispatch)
        .where(col(Dispatch.lease_owner) == owner)
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    with system_session(engine, reason="a stopping worker gives back all its leases") as s:
        return rowcount(s.execute(statement))


def release_dead(session: Session, owners: Collection[str]) -> int:
    """Free the leases of workers known dead, in the caller's (system) transaction.

    Called by core.heartbeat when a worker's process is gone from this host (SIGKILL, a
    crash): its dispatches become claimable at once instead of when their leases expire.
    The dead worker can write nothing more, and its fences would fail anyway.
    """
    if not owners:
        return 0
    statement = (
        update(Dispatch)
        .where(col(Dispatch.lease_owner).in_(list(owners)))
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return rowcount(session.execute(statement))


WAITING = "waiting"
"""The queue bucket of dispatches held for the partner's approval (not "due")."""
QUEUE_BUCKETS = ("due", "running", "retrying", "scheduled", "done", "failed", "skipped", WAITING)


def queue_counts(session: Session, now: datetime) -> dict[str, dict[str, int]]:
    """Dispatches per channel and bucket, as the queue stands at ``now``.

    running: leased to a live worker; due: pending and due, or running under an expired
    lease (abandoned, to be taken over); waiting: pending, held for the partner's approval
    (rechecked later, due at once when approved); retrying: pending again after a failed
    attempt; scheduled: pending, not due yet. Counted in the database, in the caller's
    scope (a tenant session for one tenant, a system session for all).
    """
    moment = as_utc(now)
    live = and_(col(Dispatch.lease_until).is_not(None), col(Dispatch.lease_until) > moment)
    active = col(Dispatch.state).in_([PENDING, RUNNING])
    bucket = case(
        (and_(active, live), "running"),
        (col(Dispatch.state) == RUNNING, "due"),
        (
            and_(col(Dispatch.state) == PENDING, col(Dispatch.held_for) == HELD_FOR_APPROVAL),
            WAITING,
        ),
        (and_(col(Dispatch.state) == PENDING, col(Dispatch.scheduled_at) <= moment), "due"),
        (and_(col(Dispatch.state) == PENDING, col(Dispatch.attempts) > 0), "retrying"),
        (col(Dispatch.state) == PENDING, "scheduled"),
        else_=Dispatch.state,
    ).label("bucket")
    rows = session.exec(
        select(Dispatch.channel, bucket, func.count()).group_by(Dispatch.channel, bucket)
    ).all()
    counts: dict[str, dict[str, int]] = {}
    for channel, name, count in rows:
        counts.setdefault(channel, dict.fromkeys(QUEUE_BUCKETS, 0))[name] = int(count)
    return counts


@dataclass(frozen=True)
class Addressee:
    contact_id: int
    email: str


@dataclass(frozen=True)
class Pending:
    """A ledger row to send now (``id`` is the delivery id)."""

    id: int
    contact_id: int
    email: str
    message_id: str


@dataclass
class Opened:
    """What :func:`open_deliveries` found and wrote for one batch."""

    pending: list[Pending]
    uncertain_resent: int = 0
    uncertain_kept: int = 0  # at most once: on the wire in a crash, not sent again


def message_id_for(tenant_id: int, dispatch_id: int, contact_id: int, domain: str) -> str:
    """A Message-ID that is the same every time this touch is (re)sent to this contact."""
    digest = hashlib.sha256(f"{tenant_id}:{dispatch_id}:{contact_id}".encode()).hexdigest()[:16]
    return f"<pc.{dispatch_id}.{contact_id}.{digest}@{domain}>"


def open_deliveries(
    session: Session,
    dispatch: Dispatch,
    addressees: Sequence[Addressee],
    suppressed: set[str],
    *,
    domain: str,
    now: datetime,
    journaled: bool = True,
    at_most_once: bool = False,
) -> Opened:
    """Write the ledger rows for one batch (created ``now``); return those still to be sent.

    Contacts already in the ledger for this dispatch are not added again: final rows
    (sent, bounced, failed, suppressed, uncertain) are left alone and ``pending`` ones
    (written, never handed over) are sent. A ``sending`` row was on the wire when a worker
    died (core/journal.py): it is resent flagged uncertain, with the same Message-ID, or,
    for an at-most-once tenant, kept ``uncertain`` and never resent. With a channel that
    does not journal each message, a leftover ``pending`` row may have gone too, and is
    treated the same way. Suppressed addresses get a final ``suppressed`` row.

    Set-based (one SELECT, one multi-row INSERT, a few UPDATEs per batch): this runs for
    every batch of contacts (2,000) on the path that sends thousands of emails a second.
    """
    tenant_id = session_tenant(session)
    ids = {addressee.contact_id for addressee in addressees}
    # A range, not ``IN (2,000 ids)``: the batch is a keyset page of contacts, so its rows
    # are the dispatch's rows between its first and last contact (the unique index on
    # (dispatch_id, contact_id) serves it), and the statement stays short (psycopg parses
    # a long one again at every execution: it was a tenth of a worker's time).
    existing = {
        row.contact_id: row
        for row in session.execute(
            select(Delivery.id, Delivery.contact_id, Delivery.state, Delivery.message_id).where(
                col(Delivery.dispatch_id) == dispatch.id,
                col(Delivery.contact_id).between(min(ids, default=0), max(ids, default=0)),
            )
        ).all()
        if row.contact_id in ids
    }
    new_rows: list[dict[str, Any]] = []
    opened = Opened(pending=[])
    resend: list[int] = []
    keep: list[int] = []
    now_suppressed: list[int] = []
    for addressee in addressees:
        blocked = addressee.email.lower() in suppressed
        row = existing.get(addressee.contact_id)
        if row is None:
            new_rows.append(
                {
                    "tenant_id": tenant_id,
                    "dispatch_id": dispatch.id,
                    "contact_id": addressee.contact_id,
                    "email": addressee.email,
                    "state": SUPPRESSED if blocked else PENDING,
                    "message_id": message_id_for(
                        tenant_id, dispatch.id or 0, addressee.contact_id, domain
                    ),
                    "created_at": now,
                }
            )
            continue
        if row.state not in (PENDING, SENDING):
            continue
        may_have_gone = row.state == SENDING or not journaled
        if blocked:
            now_suppressed.append(row.id)
        elif may_have_gone and at_most_once:
            keep.append(row.id)
        else:
            if may_have_gone:
                resend.append(row.id)
            opened.pending.append(Pending(row.id, row.contact_id, addressee.email, row.message_id))
    if new_rows:
        # Core on the session's connection (and transaction): the ORM's bulk insert path
        # costs several times as much per row. Every row carries the session's tenant.
        inserted = _insert_ledger_rows(session, new_rows, tenant_id, dispatch.id or 0, now)
        by_contact = {int(contact_id): int(delivery_id) for delivery_id, contact_id in inserted}
        for new in new_rows:
            if new["state"] == PENDING:
                contact_id = int(new["contact_id"])
                opened.pending.append(
                    Pending(
                        by_contact[contact_id],
                        contact_id,
                        str(new["email"]),
                        str(new["message_id"]),
                    )
                )
        dispatch.suppressed_count += sum(1 for new in new_rows if new["state"] == SUPPRESSED)
    for row_ids, values in (
        (now_suppressed, {"state": SUPPRESSED}),
        (resend, {"state": PENDING, "uncertain": True}),
        (keep, {"state": UNCERTAIN, "uncertain": True}),
    ):
        if row_ids:
            session.execute(
                update(Delivery)
                .where(col(Delivery.id).in_(row_ids))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
    dispatch.suppressed_count += len(now_suppressed)
    opened.uncertain_resent, opened.uncertain_kept = len(resend), len(keep)
    return opened


def _insert_ledger_rows(
    session: Session, rows: list[dict[str, Any]], tenant_id: int, dispatch_id: int, now: datetime
) -> list[tuple[int, int]]:
    """Insert a batch's new ledger rows; (delivery id, contact id) of each.

    On PostgreSQL one ``INSERT ... SELECT FROM unnest(arrays)``: four array parameters
    whatever the batch size, where a multi-row VALUES has seven parameters a row and a
    statement psycopg converts anew every time (the insert was 60% of a batch's opening).
    Elsewhere a multi-row INSERT (SQLite runs it in-process, nothing to parse twice).
    """
    table = table_of(Delivery)
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        statement = insert(table).returning(table.c.id, table.c.contact_id)
        return [(int(a), int(b)) for a, b in connection.execute(statement, rows).all()]
    result = connection.execute(
        _ledger_insert(),
        {
            "d_tenant_id": tenant_id,
            "d_dispatch_id": dispatch_id,
            "d_created_at": now,
            "d_contacts": [row["contact_id"] for row in rows],
            "d_emails": [row["email"] for row in rows],
            "d_states": [row["state"] for row in rows],
            "d_message_ids": [row["message_id"] for row in rows],
        },
    )
    return [(int(a), int(b)) for a, b in result.all()]


def _ledger_insert() -> Any:
    """PostgreSQL's ledger INSERT from four arrays (built once)."""
    global _LEDGER_INSERT
    if _LEDGER_INSERT is None:
        table = table_of(Delivery)
        rows = unnested(
            {
                "contact_id": ("d_contacts", Integer),
                "email": ("d_emails", String),
                "state": ("d_states", String),
                "message_id": ("d_message_ids", String),
            }
        )
        values = select_columns(
            bindparam("d_tenant_id", type_=Integer),
            bindparam("d_dispatch_id", type_=Integer),
            rows.c.contact_id,
            rows.c.email,
            rows.c.state,
            rows.c.message_id,
            bindparam("d_created_at", type_=table.c.created_at.type),
        )
        columns = ["tenant_id", "dispatch_id", "contact_id", "email", "state", "message_id"]
        _LEDGER_INSERT = (
            insert(table)
            .from_select([*columns, "created_at"], values)
            .returning(table.c.id, table.c.contact_id)
        )
    return _LEDGER_INSERT


_LEDGER_INSERT: Any = None


def record_event(
    session: Session,
    kind: str,
    dispatch: Dispatch,
    *,
    now: datetime,
    value: float | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    """Log ``kind`` for ``dispatch`` as happened at ``now``."""
    event = Event(
        kind=kind,
        occurred_at=now,
        partner_id=dispatch.partner_id,
        dispatch_id=dispatch.id,
        value=value,
        data=data or {},
    )
    session.add(event)
    return event


def recount(session: Session, dispatch: Dispatch) -> None:
    """Set the dispatch's counters from its ledger (right even after a crash mid-batch,
    or after a bounce reported later: campaigns/delivery_feedback.py)."""
    counts = dict(
        session.exec(
            select(Delivery.state, func.count())
            .where(col(Delivery.dispatch_id) == dispatch.id)
            .group_by(Delivery.state)
        ).all()
    )
    if counts:
        dispatch.sent_count = int(counts.get(SENT, 0))
        dispatch.suppressed_count = int(counts.get(SUPPRESSED, 0))
        dispatch.failed_count = int(counts.get(BOUNCED, 0) + counts.get(FAILED, 0))
