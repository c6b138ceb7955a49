"""How the tracker's writer gathers a batch (web/tracker_writer.gather_batch): a small batch
lingers once for the hits on their way, and never longer, even when another writer takes
the hit that arrived while it lingered."""

from __future__ import annotations

import queue
import sys
import threading
import time
from typing import Any

from partnercast.web.tracker_writer import LINGER_BELOW, LINGER_SECONDS, MAX_BATCH, gather_batch


def test_a_lingering_writer_is_not_held_when_another_writer_takes_the_hit_that_woke_it() -> None:
    """The race that hung CI (stop 23): a writer lingering for more hits is woken by a new
    one, another writer takes that hit first, and the lingering writer gets the GIL back
    after its deadline. With ``SimpleQueue.get(timeout=...)`` it then waited for the next
    hit, for ever when none came, holding its batch unanswered. Here this thread plays the
    other writer, and keeps the GIL past the deadline while it takes the hit."""
    source: queue.SimpleQueue[Any] = queue.SimpleQueue()
    gathered: list[tuple[list[Any], bool]] = []
    lingering = threading.Thread(target=lambda: gathered.append(gather_batch(source, "first")))
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1.0)  # this thread keeps the GIL while it runs
    try:
        lingering.start()
        time.sleep(LINGER_SECONDS / 2)  # it has its first hit and lingers for more
        source.put("second")
        assert source.get_nowait() == "second"  # taken by "another writer"
        past = time.monotonic() + 2 * LINGER_SECONDS
        while time.monotonic() < past:  # the lingering writer's deadline passes meanwhile
            pass
    finally:
        sys.setswitchinterval(switch)
    lingering.join(timeout=5)
    alive = lingering.is_alive()
    source.put(None)  # frees a writer held by the old code, whatever the outcome
    lingering.join()
    assert not alive, "the lingering writer waited for a hit that never came"
    assert gathered == [(["first"], False)]


def test_a_small_batch_takes_the_hits_that_arrive_while_it_lingers() -> None:
    source: queue.SimpleQueue[Any] = queue.SimpleQueue()
    source.put("second")

    def arrive_later() -> None:
        time.sleep(LINGER_SECONDS / 4)
        source.put("third")

    late = threading.Thread(target=arrive_later)
    late.start()
    batch, stopping = gather_batch(source, "first")
    late.join()
    # "third" arrived within the linger on a quiet machine; on a loaded one it may not.
    assert batch[:2] == ["first", "second"] and set(batch[2:]) <= {"third"}
    assert not stopping


def test_a_stop_ends_the_batch_and_leaves_what_follows() -> None:
    source: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for n in range(LINGER_BELOW + 5):
        source.put(n)
    source.put(None)
    source.put("after the stop")
    batch, stopping = gather_batch(source, "first")
    assert batch == ["first", *range(LINGER_BELOW + 5)] and stopping
    assert source.get_nowait() == "after the stop"  # left for the next writer


def test_a_batch_holds_at_most_max_batch_hits() -> None:
    source: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for n in range(MAX_BATCH + 10):
        source.put(n)
    batch, stopping = gather_batch(source, -1)
    assert len(batch) == MAX_BATCH and batch[:2] == [-1, 0] and not stopping
    assert source.qsize() == 11
