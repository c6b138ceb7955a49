"""The loop of a crash test: keep killing workers while the sink fills up, then tally.

The tally is made from the sink's record only (:func:`tally`): who received which
Message-ID how many times, which touches each recipient got. The engine's tables are
read for two things only: which dispatches a killed worker held (to time their takeover),
and the ``uncertain`` flag of the deliveries whose Message-ID arrived twice.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from support.crash_fleet import Fleet, Incarnation, Orphan
from support.crash_world import TOUCHES, touch_of
from support.recording_sink import Arrival, RecordingSink


@dataclass
class CrashRun:
    kills: int
    arrivals: list[Arrival]
    orphans: list[Orphan]
    started_at: float
    delivered_at: float  # when the sink had every expected Message-ID
    last_kill: float
    log: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.delivered_at - self.started_at


def run_with_kills(
    fleet: Fleet,
    sink: RecordingSink,
    expected: int,
    *,
    rng: random.Random,
    min_kills: int,
    max_kills: int,
    time_limit: float,
    gap: tuple[float, float] = (1.0, 3.0),
    gap_after_ready: bool = False,
    min_ready: int = 1,
    alongside: Callable[[], None] | None = None,
) -> CrashRun:
    """Start the fleet; every ``gap`` seconds SIGKILL a random ready worker and restart it.

    With ``gap_after_ready`` (one worker) the gap is counted from the moment the victim
    was up, so that it gets to work between kills; otherwise from the previous kill.
    A kill waits until ``min_ready`` workers are up: on a loaded machine a restart can
    take longer than the gap, and killing whatever just came up would leave the fleet
    mostly starting, with no worker left to take abandoned work over.
    Returns once the sink holds ``expected`` distinct Message-IDs; fails after
    ``time_limit`` seconds. ``alongside`` is called at every turn of the loop.
    """
    fleet.start()
    started = time.time()
    next_kill = started + rng.uniform(*gap)
    planned: dict[int, float] = {}  # id(incarnation) -> its kill time (gap_after_ready)
    arrivals: list[Arrival] = []
    last_read = 0.0
    said = 0
    while True:
        now = time.time()
        if now - last_read > 0.25:
            arrivals, last_read = sink.arrivals(), now
            distinct = len({arrival.message_id for arrival in arrivals})
            if distinct >= expected:
                break
            if int(now - started) // 10 > said:
                said = int(now - started) // 10
                print(f"{now - started:5.0f}s {distinct} delivered, {len(fleet.kills)} kills")
        assert now - started < time_limit, (
            f"not delivered in {time_limit:.0f}s: {len({a.message_id for a in arrivals})}"
            f" of {expected} Message-IDs after {len(fleet.kills)} kills"
        )
        assert sink.alive(), "the sink died"
        if len(fleet.kills) < max_kills:
            victim = _victim(fleet, rng, now, next_kill, planned, gap, gap_after_ready, min_ready)
            if victim is not None:
                fleet.kill(victim)
                next_kill = time.time() + rng.uniform(*gap)
        fleet.watch_orphans()
        if alongside:
            alongside()
        time.sleep(0.05)
    delivered = time.time()
    # The last orphans are claimed by now (their messages arrived), or soon: watch a bit.
    deadline = delivered + 15
    while any(o.taken_at is None for o in fleet.orphans) and time.time() < deadline:
        fleet.watch_orphans()
        time.sleep(0.1)
    return CrashRun(
        kills=len(fleet.kills),
        arrivals=arrivals,
        orphans=list(fleet.orphans),
        started_at=started,
        delivered_at=delivered,
        last_kill=max(fleet.kills, default=0.0),
    )


def _victim(
    fleet: Fleet,
    rng: random.Random,
    now: float,
    next_kill: float,
    planned: dict[int, float],
    gap: tuple[float, float],
    gap_after_ready: bool,
    min_ready: int,
) -> Incarnation | None:
    ready = fleet.ready()
    if not ready or len(ready) < min_ready:
        return None
    if not gap_after_ready:
        return rng.choice(ready) if now >= next_kill else None
    due = []
    for incarnation in ready:
        assert incarnation.ready_at is not None
        at = planned.setdefault(id(incarnation), incarnation.ready_at + rng.uniform(*gap))
        if now >= at:
            due.append(incarnation)
    return rng.choice(due) if due else None


@dataclass
class Tally:
    """What the sink received, per recipient and per Message-ID."""

    per_message_id: Counter[str]
    recipients_of: dict[str, set[str]]  # Message-ID -> recipients it was sent to
    touches_of: dict[str, set[str]]  # recipient -> touches received
    message_ids_of: dict[str, set[str]]  # recipient -> distinct Message-IDs

    @property
    def repeated(self) -> dict[str, int]:
        return {mid: n for mid, n in self.per_message_id.items() if n > 1}

    def missing(self, emails: list[str]) -> list[tuple[str, str]]:
        """(recipient, touch) pairs that never arrived."""
        return [
            (email, touch)
            for email in emails
            for touch in TOUCHES
            if touch not in self.touches_of.get(email, set())
        ]


def tally(arrivals: list[Arrival]) -> Tally:
    per_message_id: Counter[str] = Counter()
    recipients_of: dict[str, set[str]] = defaultdict(set)
    touches_of: dict[str, set[str]] = defaultdict(set)
    message_ids_of: dict[str, set[str]] = defaultdict(set)
    for arrival in arrivals:
        per_message_id[arrival.message_id] += 1
        recipients_of[arrival.message_id].add(arrival.recipient)
        touches_of[arrival.recipient].add(touch_of(arrival.subject))
        message_ids_of[arrival.recipient].add(arrival.message_id)
    return Tally(per_message_id, dict(recipients_of), dict(touches_of), dict(message_ids_of))
