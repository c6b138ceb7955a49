"""The delivery journal: each email is noted in the ledger as it goes on the wire.

The ledger rows of a batch are committed ``pending`` before anything is sent. Then, for
each SMTP connection, the channel calls :meth:`LedgerJournal.record` before handing a
message over: ONE committed UPDATE marks the previous message of that connection with its
outcome (``sent``, or back to ``pending`` when the server did not take it) and the next one
``sending``. So at any instant a connection has at most one ``sending`` row, and after a
crash the ledger says exactly which contacts got the message (``sent``), which did not
(``pending``) and which are uncertain (``sending``: on the wire when the worker died).
core.outbox.open_deliveries then resends the uncertain ones with the same Message-ID, or,
for an at-most-once tenant, leaves them ``uncertain`` and tells the concierge.

The UPDATE is also a fence: it matches rows only while this worker's lease on the
dispatch is live, so a worker whose lease was taken over stops after at most the one
message per connection it had on the wire (``record`` returns False).

It runs on a connection of its own per sender thread, outside the ORM, for speed (it runs
once per message); it is tenant-scoped by its WHERE clause (tenant_id and dispatch_id).
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from sqlalchemy import DateTime, bindparam, case, exists, literal, update
from sqlalchemy.engine import Connection, Engine

from partnercast.core.models import Delivery, Dispatch
from partnercast.core.outbox import Lease

SENDING = "sending"
_NONE = -1  # an id no row has


class Outcome(Protocol):
    """What the journal needs of a channel's per-recipient outcome (core never imports
    the plugin package; partnercast.plugins.RecipientOutcome has these)."""

    @property
    def delivery_id(self) -> int: ...

    @property
    def status(self) -> str: ...


def _statement() -> Any:
    delivery = Delivery.__table__  # type: ignore[attr-defined]
    dispatch = Dispatch.__table__  # type: ignore[attr-defined]
    done_id, next_id = bindparam("j_done_id"), bindparam("j_next_id")
    now = bindparam("j_now", type_=DateTime())
    dispatch_id = bindparam("j_dispatch_id")
    lease_live = (
        exists()
        .where(dispatch.c.id == dispatch_id)
        .where(dispatch.c.lease_owner == bindparam("j_owner"))
        .where(dispatch.c.lease_until > now)
    )
    return (
        update(delivery)
        .where(delivery.c.tenant_id == bindparam("j_tenant_id"))
        .where(delivery.c.dispatch_id == dispatch_id)
        .where(delivery.c.id.in_([done_id, next_id]))
        .where(lease_live)
        .values(
            state=case((delivery.c.id == done_id, bindparam("j_done_state")), else_=literal(SENDING)),
            sent_at=case((delivery.c.id == bindparam("j_sent_id"), now), else_=delivery.c.sent_at),
        )
    )


_RECORD = _statement()


class LedgerJournal:
    """The :class:`~partnercast.plugins.DeliveryJournal` of one dispatch run."""

    def __init__(self, engine: Engine, tenant_id: int, dispatch_id: int, lease: Lease) -> None:
        self._engine = engine
        self._tenant_id = tenant_id
        self._dispatch_id = dispatch_id
        self._lease = lease
        self._local = threading.local()
        self._connections: list[Connection] = []
        self._lock = threading.Lock()
        self.lost = False

    def _connection(self) -> Connection:
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._engine.connect()
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def record(self, done: Outcome | None, handing_over: int | None) -> bool:
        """Note ``done``'s outcome and that ``handing_over`` goes on the wire now."""
        done_id = done.delivery_id if done is not None else _NONE
        next_id = handing_over if handing_over is not None else _NONE
        expected = (done is not None) + (handing_over is not None)
        if not expected:
            return True
        sent = done is not None and done.status == "sent"
        params = {
            "j_tenant_id": self._tenant_id,
            "j_dispatch_id": self._dispatch_id,
            "j_owner": self._lease.owner,
            "j_now": self._lease.now(),
            "j_done_id": done_id,
            "j_next_id": next_id,
            "j_done_state": "sent" if sent else "pending",
            "j_sent_id": done_id if sent else _NONE,
        }
        connection = self._connection()
        with connection.begin():
            matched = connection.execute(_RECORD, params).rowcount
        if matched != expected:
            self.lost = True
            return False
        return True

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            connection.close()
