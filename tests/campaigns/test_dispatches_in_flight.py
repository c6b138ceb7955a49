"""Two dispatches at a time on a database server: one sends, the next gets ready.

campaigns.ticking runs a tick's dispatches two at a time when batches are opened ahead
(``PREFETCH``, on by default on PostgreSQL): the next dispatch fences its lease, reads its
rows and commits its first batch of ledger rows while the one before it sends, and only
one of them talks to the channel at a time (campaigns.dispatching.SendTurns). Each test
runs on both databases with ``PREFETCH`` on, against a real SMTP server (aiosmtpd).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from support.world import START, World, build_world, respond, start

from partnercast.campaigns import dispatching
from partnercast.campaigns.ticking import tick
from partnercast.channels.email import channel as email_channel
from partnercast.channels.email.channel import EmailChannel
from partnercast.core import outbox
from partnercast.core.models import Delivery, Dispatch
from partnercast.core.tenancy import system_session
from partnercast.demo.smtp_sink import SmtpSink

FIRST_TICK = START + timedelta(hours=1)
PARTNERS = ["P001", "P002", "P003", "P004", "P005", "P006"]


@pytest.fixture
def world(any_engine: Engine, tmp_path: Path, sink: SmtpSink, monkeypatch) -> World:
    """Every partner approved and the cycle started: six email dispatches due at once."""
    monkeypatch.setattr(dispatching, "PREFETCH", True)
    built = build_world(any_engine, tmp_path / "world", sink.port)
    respond(built, dict.fromkeys(PARTNERS, "approve"))
    start(built)
    return built


def _opened(engine: Engine) -> dict[int, int]:
    """Ledger rows committed so far, by dispatch."""
    with system_session(engine, reason="the test reads the ledger") as session:
        rows = session.exec(
            select(Delivery.dispatch_id, func.count()).group_by(col(Delivery.dispatch_id))
        ).all()
    return {int(dispatch_id): int(count) for dispatch_id, count in rows}


class _Publishes:
    """EmailChannel.publish watched: how many run at once, and a hook run inside each."""

    def __init__(self, monkeypatch, inside: Callable[[str], None]) -> None:
        self.most_at_once = 0
        self.keys: list[str] = []
        self._now = 0
        self._lock = threading.Lock()
        real = EmailChannel.publish

        def publish(channel: EmailChannel, draft: Any, account: Any, **kwargs: Any) -> Any:
            with self._lock:
                self._now += 1
                self.most_at_once = max(self.most_at_once, self._now)
                self.keys.append(kwargs["idempotency_key"])
            try:
                inside(kwargs["idempotency_key"])
                return real(channel, draft, account, **kwargs)
            finally:
                with self._lock:
                    self._now -= 1

        monkeypatch.setattr(EmailChannel, "publish", publish)


def test_the_next_dispatch_gets_ready_while_one_sends_and_only_one_sends(
    world: World, sink: SmtpSink, monkeypatch
) -> None:
    seen_ready: list[dict[int, int]] = []

    def first_waits_for_the_next(key: str) -> None:
        """The first publish goes on only once another dispatch has opened its ledger
        rows: with one dispatch at a time that never happens (the wait times out)."""
        if seen_ready:
            return
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            opened = _opened(world.engine)
            if len(opened) >= 2:
                break
            time.sleep(0.02)
        seen_ready.append(opened)

    publishes = _Publishes(monkeypatch, first_waits_for_the_next)
    report = tick(world.engine, world.settings, FIRST_TICK)
    assert len(seen_ready[0]) >= 2, "no dispatch got ready while the first one sent"
    assert publishes.most_at_once == 1
    assert len(report.runs) == 6 and {run.state for run in report.runs} == {outbox.DONE}
    claimed = [run.dispatch_id for run in report.runs]
    assert claimed == sorted(claimed)  # reported in the order claimed (oldest first)
    with system_session(world.engine, reason="the test reads the ledger") as session:
        sent = session.exec(select(func.count()).where(col(Delivery.state) == "sent")).one()
        keys = set(
            session.exec(
                select(Dispatch.idempotency_key).where(col(Dispatch.id).in_(claimed))
            ).all()
        )
    assert sent == report.sent == len(sink.received.messages) > 0
    assert set(publishes.keys) == keys  # every dispatch sent, each under its own key


def test_a_dispatch_waiting_for_its_turn_keeps_its_lease(
    world: World, sink: SmtpSink, monkeypatch
) -> None:
    """The first send takes several leases' time (a slow server); the dispatch ready
    behind it is fenced (renewed) while it waits, so that another worker cannot claim it,
    and it is sent once the first is done."""
    began = time.monotonic()

    def clock() -> datetime:  # the simulated instant, moving with real time
        return FIRST_TICK + timedelta(seconds=time.monotonic() - began)

    lease = 1.0
    claimed_by_another: list[list[outbox.Claim]] = []
    opened_then: list[dict[int, int]] = []
    real_send = email_channel._send_one
    slow = {"messages": 0}

    def slow_server(*args: Any) -> Any:
        """The first messages take 0.5 s each; after four (two leases), another worker
        tries to claim whatever it can."""
        if not claimed_by_another:
            slow["messages"] += 1
            time.sleep(0.5)
            if slow["messages"] == 4:
                opened_then.append(_opened(world.engine))
                claimed_by_another.append(
                    outbox.claim_due(world.engine, clock(), "another-worker", lease_seconds=60)
                )
        return real_send(*args)

    monkeypatch.setattr(email_channel, "_send_one", slow_server)
    publishes = _Publishes(monkeypatch, lambda key: None)
    report = tick(
        world.engine,
        world.settings,
        FIRST_TICK,
        worker_id="w1",
        clock=clock,
        lease_seconds=lease,
        claim_batch=1,
    )
    assert claimed_by_another, "fewer than four messages were sent"
    assert len(opened_then[0]) >= 2  # one dispatch sent, another was ready, waiting
    taken = {claim.dispatch_id for claim in claimed_by_another[0]}
    ours = [run.dispatch_id for run in report.runs]
    assert not taken & set(opened_then[0]), (opened_then, taken)
    assert len(taken) + len(ours) == 6 and not taken & set(ours), (ours, taken)
    assert {run.state for run in report.runs} == {outbox.DONE}, report.why()
    assert publishes.most_at_once == 1
    assert report.sent == len(sink.received.messages) > 0


class _Crash(BaseException):
    """The process dying mid-send, as the crash tests of the channels simulate it."""


def test_a_crash_while_one_sends_stops_the_one_waiting_before_it_sends(
    world: World, sink: SmtpSink, monkeypatch
) -> None:
    """Run one at a time, a crash ended the tick and nothing more went out; with the next
    dispatch ready beside the one sending, that one must not send either."""

    def crash_in_the_first(key: str) -> None:
        deadline = time.monotonic() + 20
        while len(_opened(world.engine)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)  # the next dispatch is ready and waiting for its turn
        raise _Crash(key)

    publishes = _Publishes(monkeypatch, crash_in_the_first)
    with pytest.raises(_Crash):
        tick(world.engine, world.settings, FIRST_TICK)
    assert len(_opened(world.engine)) == 2  # the second had opened its first batch
    assert len(publishes.keys) == 1  # and never sent
    assert len(sink.received.messages) == 0


def test_a_tick_excludes_from_its_claims_only_the_dispatches_still_due(
    any_engine: Engine, tmp_path: Path, sink: SmtpSink, monkeypatch
) -> None:
    """The claim leaves out what this tick has going or left waiting, not what finished
    (no longer due): the list it sends stays short at a backlog of any size, and the
    dispatch held for its partner's approval is still not claimed twice."""
    monkeypatch.setattr(dispatching, "PREFETCH", True)
    built = build_world(any_engine, tmp_path / "world", sink.port)
    respond(built, dict.fromkeys(PARTNERS[:-1], "approve"))  # the last one stays silent
    start(built)
    excluded: list[set[int]] = []
    claimed: list[int] = []
    real = outbox.claim_due

    def claim_due(*args: Any, exclude: Any = (), **kwargs: Any) -> list[outbox.Claim]:
        excluded.append(set(exclude))
        claims = real(*args, exclude=exclude, **kwargs)
        claimed.extend(claim.dispatch_id for claim in claims)
        return claims

    monkeypatch.setattr(outbox, "claim_due", claim_due)
    report = tick(built.engine, built.settings, FIRST_TICK, claim_batch=1)
    states = {run.dispatch_id: run.state for run in report.runs}
    waiting = [dispatch for dispatch, state in states.items() if state == "waiting"]
    assert len(claimed) == len(set(claimed)) == 6  # each once, the one waiting included
    assert len(waiting) == 1 and sorted(states.values()).count(outbox.DONE) == 5
    assert all(len(ids - set(waiting)) <= 2 for ids in excluded)  # at most the two going
    later = excluded[claimed.index(waiting[0]) + 1 :]
    assert later and all(waiting[0] in ids for ids in later)
    assert len(sink.received.messages) == report.sent > 0
