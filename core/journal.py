"""The delivery journal: each email is noted in the ledger before it goes on the wire.

The ledger rows of a batch are committed ``pending`` before anything is sent. Then each
SMTP connection works through a *window* of up to N messages at a time (N is
``Settings.delivery_window``): ONE committed UPDATE marks the previous window's messages
with their outcomes (``sent``, or back to ``pending`` when the server did not take them)
and the next window's ``sending``; the connection then sends them, and the next UPDATE
settles them and opens the window after. So at any instant a connection has at most N
``sending`` rows, and after a crash the ledger says exactly which contacts got the message
(``sent``), which did not (``pending``) and which are uncertain (``sending``: noted in
flight when the worker died, some of them may have reached the server). core.outbox.
open_deliveries then resends the uncertain ones with the same Message-ID, flagged
``uncertain``, or, for an at-most-once tenant, leaves them ``uncertain`` and tells the
concierge. A window of 1 is the old rule (one uncertain message per connection, one
durable commit per message); a window of N divides the journal's statements (and on
PostgreSQL its WAL flushes) by N and bounds a crash's repeats to N per connection
(docs/performance.md says why the default is what it is).

Noted ahead (``ahead`` = 1, the default): a connection need not wait for its note. It
hands the note of its NEXT window (which also settles the window before the one it is
sending) to a writer thread of its own (:meth:`LedgerJournal.begin`) and sends the
current window meanwhile; it waits for that note's answer only before it sends the next
window. The round trip and the commit's WAL flush (5 ms on this project's machine) then
overlap the sending instead of stopping it, and a crash's bound becomes two windows per
connection: the one being sent and the one noted after it. ``ahead`` = 0 is a note then
a window, one at a time (a window per connection).

The UPDATE is also a fence: it matches rows only while this worker's lease on the
dispatch is live, so a worker whose lease was taken over stops after at most the windows
per connection it had noted, two with ``ahead`` (``note`` returns False).

It runs on a raw driver connection per live sender thread (a new thread takes over an
ended one's), outside the ORM, for speed; on SQLite the sender threads of every worker on
the machine take turns on a lock (:class:`WriteTurns`) rather than on the database's own
write lock. It is tenant-scoped by its WHERE clause (tenant_id and dispatch_id).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

try:
    import fcntl
except ImportError:  # not on Windows: the threads of one worker still take turns
    fcntl = None  # type: ignore[assignment]  # the module, or None where it does not exist

from sqlalchemy import (
    BindParameter,
    DateTime,
    Integer,
    any_,
    bindparam,
    case,
    exists,
    literal,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine

from partnercast.core.models import Delivery, Dispatch
from partnercast.core.outbox import Lease
from partnercast.core.settings import DEFAULT_DELIVERY_AHEAD, DEFAULT_DELIVERY_WINDOW
from partnercast.core.sql import table_of

SENDING = "sending"
_NONE = -1  # an id no row has


class Outcome(Protocol):
    """What the journal needs of a channel's per-recipient outcome (core never imports
    the plugin package; partnercast.plugins.RecipientOutcome has these)."""

    @property
    def delivery_id(self) -> int: ...

    @property
    def status(self) -> str: ...


DEFAULT_WINDOW = DEFAULT_DELIVERY_WINDOW  # messages a connection notes in flight at once
DEFAULT_AHEAD = DEFAULT_DELIVERY_AHEAD
"""Windows a connection notes ahead of the one it sends (0 or 1, ``Settings.delivery_ahead``):
with 1 a crash may repeat two windows per connection (docs/performance.md, "Sending on
PostgreSQL", says why 1)."""


def _statement(slots: int) -> Any:
    """The journal's one UPDATE, with three sets of delivery ids: sent (settled ``sent``,
    dated), not sent (back to ``pending``) and handed over (``sending``).

    ``slots`` > 0: each set is ``slots`` parameters, the unused ones holding an id no row
    has, so one compiled statement serves every window of up to ``slots`` messages
    (SQLite). ``slots`` == 0: each set is one array parameter (PostgreSQL's ``= ANY``): a
    short statement whatever the window, which psycopg converts once and prepares (a long
    one it converts again at every execution).
    """
    delivery, dispatch = table_of(Delivery), table_of(Dispatch)
    sets: list[Any] = []
    every: list[BindParameter[int]] = []
    for name in ("j_sent", "j_back", "j_next"):
        if slots:
            members: list[BindParameter[int]] = [bindparam(f"{name}_{n}") for n in range(slots)]
            every.extend(members)
            sets.append(lambda column, members=members: column.in_(members))
        else:
            array = bindparam(name, type_=ARRAY(Integer))
            sets.append(lambda column, array=array: column == any_(array))
    sent, back, _ = sets
    anyone = (
        delivery.c.id.in_(every)
        if slots
        else delivery.c.id == any_(bindparam("j_all", type_=ARRAY(Integer)))
    )
    now = bindparam("j_now", type_=DateTime())
    dispatch_id: BindParameter[int] = bindparam("j_dispatch_id")
    lease_live = (
        exists()
        .where(dispatch.c.id == dispatch_id)
        .where(dispatch.c.lease_owner == bindparam("j_owner"))
        .where(dispatch.c.lease_until > now)
    )
    ids = delivery.c.id
    return (
        update(delivery)
        # The rows are found by their ids (the primary key) and only then checked for
        # the tenant and dispatch: IS NOT DISTINCT FROM (the same as = on these NOT NULL
        # columns) is a filter no index answers. With =, PostgreSQL's planner, on a table
        # whose statistics are not yet gathered (a new database's first big send), read
        # every row of the tenant's and the dispatch's indexes at each note: a note cost
        # more as the send went on (docs/performance.md, "Sending on PostgreSQL").
        .where(delivery.c.tenant_id.is_not_distinct_from(bindparam("j_tenant_id")))
        .where(delivery.c.dispatch_id.is_not_distinct_from(dispatch_id))
        .where(anyone)
        .where(lease_live)
        .values(
            state=case(
                (sent(ids), literal("sent")),
                (back(ids), literal("pending")),
                else_=literal(SENDING),
            ),
            sent_at=case((sent(ids), now), else_=delivery.c.sent_at),
        )
    )


def _renewal() -> Any:
    dispatch = table_of(Dispatch)
    now = bindparam("r_now", type_=DateTime())
    return (
        update(dispatch)
        .where(dispatch.c.id == bindparam("r_dispatch_id"))
        .where(dispatch.c.lease_owner == bindparam("r_owner"))
        .where(dispatch.c.lease_until > now)
        .values(lease_until=bindparam("r_until", type_=DateTime()))
    )


_RENEW = _renewal()


class _DriverStatement:
    """A Core statement compiled once for a dialect and run on a raw DBAPI cursor.

    The journal writes once per message (thousands a second): going through SQLAlchemy's
    Connection costs about three times the driver's own execute. The statement is still
    built with SQLAlchemy (so it is the same SQL on SQLite and PostgreSQL) and its
    parameters go through the column types' own bind processors.
    """

    def __init__(self, statement: Any, dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.positions: list[str] | None = compiled.positiontup
        self.literals = {
            name: bind.value for name, bind in compiled.binds.items() if bind.value is not None
        }
        self.processors = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.bind_processor(dialect)) is not None
        }

    def run(self, cursor: Any, values: dict[str, Any]) -> int:
        merged = {**self.literals, **values}
        for name, processor in self.processors.items():
            if name in merged:
                merged[name] = processor(merged[name])
        if self.positions is not None:
            cursor.execute(self.sql, tuple(merged[name] for name in self.positions))
        else:
            cursor.execute(self.sql, merged)
        return int(cursor.rowcount)


class WriteTurns:
    """Turns at one SQLite file's write lock for journal notes, taken by the threads of
    this process (a thread lock) and by the other processes on this machine (an flock
    on a file beside the database): a blocked taker is woken when the lock is given
    back, where SQLite's busy handler would sleep and poll. Other writers still meet
    SQLite's own lock; this only spares the notes, written once a message, the sleeps.
    """

    def __init__(self, lock_path: str | None) -> None:
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        if lock_path is not None and fcntl is not None:
            self._fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self) -> WriteTurns:
        self._thread_lock.acquire()
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._thread_lock.release()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


_TURNS: dict[tuple[int, str], WriteTurns] = {}
_TURNS_LOCK = threading.Lock()


def write_turns(database: str | None) -> WriteTurns:
    """The process's :class:`WriteTurns` of a SQLite database file (one per file and
    process: an flock belongs to an open file, which a forked child would share)."""
    in_memory = not database or database == ":memory:" or database.startswith("file::memory:")
    path = None if in_memory else f"{database}.partnercast-lock"
    key = (os.getpid(), path or "")
    with _TURNS_LOCK:
        turns = _TURNS.get(key)
        if turns is None:
            turns = _TURNS[key] = WriteTurns(path)
        return turns


_COMPILED: dict[tuple[str, str, int], _DriverStatement] = {}
_COMPILED_LOCK = threading.Lock()


def _compiled(dialect: Any, slots: int) -> _DriverStatement:
    """The journal's UPDATE compiled for ``dialect``, once a process: with arrays on
    PostgreSQL, with ``slots`` parameters a set elsewhere."""
    if dialect.name == "postgresql":
        slots = 0
    key = (dialect.name, dialect.driver, slots)
    with _COMPILED_LOCK:
        found = _COMPILED.get(key)
        if found is None:
            found = _COMPILED[key] = _DriverStatement(_statement(slots), dialect)
        return found


class _Tally:
    """Statements the journals of this process ran (each its own commit): what the
    benchmark adds to the engine's own statements for its per-1,000-messages figure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.statements = 0

    def add(self) -> None:
        with self._lock:
            self.statements += 1


TALLY = _Tally()


class Ticket:
    """A note handed to a connection's writer thread: :meth:`result` waits for its answer
    (``note``'s: False when the lease is lost) and raises what the note raised."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._answer = False
        self._error: BaseException | None = None

    def _settle(self, answer: bool, error: BaseException | None) -> None:
        self._answer, self._error = answer, error
        self._done.set()

    def result(self) -> bool:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._answer


class _Writer:
    """A thread that runs one connection's notes, in the order they were handed over, on
    a database connection of its own: the sender goes on while the note's round trip and
    commit run. Serves one sender thread at a time (the next sender of the same slot takes
    it over once that one has ended)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], bool], Ticket] | None] = (
            queue.SimpleQueue()
        )
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def submit(self, job: Callable[[], bool]) -> Ticket:
        ticket = Ticket()
        self._jobs.put((job, ticket))
        return ticket

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, ticket = item
            try:
                answer = job()
            except BaseException as error:  # handed to the sender, which raises it
                ticket._settle(False, error)
            else:
                ticket._settle(answer, None)

    def stop(self) -> None:
        self._jobs.put(None)
        self.thread.join()


def _take_over(slots: list[list[Any]], me: threading.Thread) -> list[Any] | None:
    """The first of ``slots`` ([thread using it, ...]) whose thread has ended, now ``me``'s;
    None when every one is in use. The caller holds the journal's lock."""
    for slot in slots:
        if not slot[0].is_alive():
            slot[0] = me
            return slot
    return None


class LedgerJournal:
    """The :class:`~partnercast.plugins.DeliveryJournal` of one dispatch run.

    ``window``: how many messages a connection may note in flight at once (at least 1).
    ``ahead``: windows a connection may note ahead of the one it sends (0 or 1; see the
    module's docstring): a crash repeats at most ``window * (1 + ahead)`` messages per
    connection.
    """

    def __init__(
        self,
        engine: Engine,
        tenant_id: int,
        dispatch_id: int,
        lease: Lease,
        *,
        window: int = DEFAULT_WINDOW,
        ahead: int | None = None,
    ) -> None:
        if window < 1:
            raise ValueError("the delivery window is at least one message")
        ahead = DEFAULT_AHEAD if ahead is None else ahead
        if ahead not in (0, 1):
            raise ValueError("a connection notes at most one window ahead")
        self.window = window
        self.ahead = ahead
        self._engine = engine
        self._tenant_id = tenant_id
        self._dispatch_id = dispatch_id
        self._lease = lease
        self._record = _compiled(engine.dialect, window)
        self._arrays = engine.dialect.name == "postgresql"
        self._renewal = _DriverStatement(_RENEW, engine.dialect)
        self._local = threading.local()
        self._slots: list[list[Any]] = []  # [thread using it, connection, cursor]
        self._writers: list[list[Any]] = []  # [sender thread it serves, _Writer]
        self._lock = threading.Lock()
        # SQLite has one writer at a time, and a connection that finds the file locked
        # sleeps in its busy handler (1 ms, then more): the sender threads of every
        # worker on this machine take turns on a lock instead. PostgreSQL's row locks
        # need no such thing.
        self._write_lock: WriteTurns | None = (
            write_turns(engine.url.database) if engine.dialect.name == "sqlite" else None
        )
        self._renewed_at = lease.now()
        self.lost = False

    def _cursor(self) -> Any:
        """This thread's cursor on a pooled connection in autocommit mode (one statement,
        one commit); PostgreSQL's connection gets its transaction mode back on close.

        A channel starts new sender threads for each batch of a dispatch: a thread takes
        over the connection of one that has ended, so a long dispatch holds as many
        connections as it has threads at once, not one per thread it ever ran (which
        emptied the pool at 100,000 recipients).
        """
        cursor = getattr(self._local, "cursor", None)
        if cursor is not None:
            return cursor
        me = threading.current_thread()
        with self._lock:
            taken = _take_over(self._slots, me)
        cursor = taken[2] if taken is not None else None
        if cursor is None:
            connection = self._engine.raw_connection()
            driver = connection.driver_connection
            # SQLite's is autocommit already
            if driver is not None and self._engine.dialect.name != "sqlite":
                driver.autocommit = True
            cursor = connection.cursor()
            with self._lock:
                self._slots.append([me, connection, cursor])
        self._local.cursor = cursor
        return cursor

    def begin(
        self,
        done: Sequence[Outcome],
        handing_over: Sequence[int] = (),
        released: Sequence[int] = (),
    ) -> Ticket:
        """:meth:`note`, run by the calling sender's writer thread (one a sender, on a
        connection of its own; a new sender takes over an ended one's): the sender goes on
        and asks ``result()`` when it needs the answer. A sender's notes run in the order
        it began them. The caller keeps the lists unchanged until the answer."""
        me = threading.current_thread()
        writer: _Writer | None = getattr(self._local, "writer", None)
        if writer is None:
            with self._lock:
                taken = _take_over(self._writers, me)
                writer = taken[1] if taken is not None else None
                if writer is None:
                    writer = _Writer(f"journal-{self._dispatch_id}-{len(self._writers)}")
                    self._writers.append([me, writer])
            self._local.writer = writer
        return writer.submit(lambda: self.note(done, handing_over, released))

    def record(self, done: Outcome | None, handing_over: int | None) -> bool:
        """Note ``done``'s outcome and that ``handing_over`` goes on the wire now (a window
        of one message: :meth:`note`)."""
        return self.note(
            [done] if done is not None else [], [handing_over] if handing_over is not None else []
        )

    def note(
        self,
        done: Sequence[Outcome],
        handing_over: Sequence[int] = (),
        released: Sequence[int] = (),
    ) -> bool:
        """In one committed statement: settle the outcomes ``done`` (``sent``, or
        ``pending`` when the server did not take the message), put ``released`` back to
        ``pending`` (noted in flight, never handed to the server) and note the deliveries
        ``handing_over`` ``sending`` (the connection hands them over next). False when the
        lease is lost: nothing was written and nothing more may be sent.

        ``handing_over`` holds at most ``window`` ids. ``done`` and ``released`` are what
        is left of the windows before (up to two with ``ahead``): where the statement has
        a parameter a message (SQLite), more than a window of them is written in pieces
        of a window, each its own commit (only when a lane stops or fails).
        """
        sent = [o.delivery_id for o in done if o.status == "sent"]
        back = [o.delivery_id for o in done if o.status != "sent"]
        back.extend(released)
        going = list(handing_over)
        if not (sent or back or going):
            return True
        slots = self.window
        if len(going) > slots:
            raise ValueError(f"more than the journal's window of {slots} messages at once")
        pieces = [(sent, back, going)]
        if not self._arrays and max(len(sent), len(back)) > slots:
            pieces = [(sent[:slots], back[:slots], going)] + [
                (sent[at : at + slots], back[at : at + slots], [])
                for at in range(slots, max(len(sent), len(back)), slots)
            ]
        cursor = self._cursor()
        for piece in pieces:
            if self._write_lock is None:
                written = self._write(cursor, *piece)
            else:
                with self._write_lock:
                    written = self._write(cursor, *piece)
            if not written:
                return False
        return True

    def _write(self, cursor: Any, sent: list[int], back: list[int], going: list[int]) -> bool:
        expected = len(sent) + len(back) + len(going)
        now = self._lease.now()
        if not self._renew(cursor, now):
            self.lost = True
            return False
        values: dict[str, Any] = {
            "j_tenant_id": self._tenant_id,
            "j_dispatch_id": self._dispatch_id,
            "j_owner": self._lease.owner,
            "j_now": now,
        }
        for name, ids in (("j_sent", sent), ("j_back", back), ("j_next", going)):
            if self._arrays:
                values[name] = ids
                values["j_all"] = [*values.get("j_all", ()), *ids]
                continue
            for n in range(self.window):
                values[f"{name}_{n}"] = ids[n] if n < len(ids) else _NONE
        matched = self._record.run(cursor, values)
        TALLY.add()
        if matched != expected:
            self.lost = True
            return False
        return True

    def renewal_due(self) -> bool:
        """True when the lease is due for renewal (a third of it has passed since the
        last): a connection whose window is slow to go (a slow server) notes what it has
        sent so far, and the note renews the lease, as a note per message did."""
        with self._lock:
            renewed_at = self._renewed_at
        return (self._lease.now() - renewed_at).total_seconds() >= self._lease.seconds / 3

    def _renew(self, cursor: Any, now: Any) -> bool:
        """Extend the lease every third of its length while messages keep going out.

        A long batch (a slow partner server, one connection) must not lose its own lease
        while it makes progress. The note that follows checks the lease again, so the
        fence stays exact. False when the lease no longer holds.
        """
        with self._lock:
            due = (now - self._renewed_at).total_seconds() >= self._lease.seconds / 3
            if due:
                self._renewed_at = now
        if not due:
            return True
        TALLY.add()
        renewed = self._renewal.run(
            cursor,
            {
                "r_dispatch_id": self._dispatch_id,
                "r_owner": self._lease.owner,
                "r_now": now,
                "r_until": now + self._lease.duration,
            },
        )
        return bool(renewed)

    def close(self) -> None:
        with self._lock:
            writers = [slot[1] for slot in self._writers]
            self._writers = []
        for writer in writers:  # after the notes handed to them (each answered by now)
            writer.stop()
        with self._lock:
            connections = [slot[1] for slot in self._slots]
            self._slots = []
        for connection in connections:
            driver = connection.driver_connection
            if self._engine.dialect.name != "sqlite":
                driver.autocommit = False
            connection.close()
