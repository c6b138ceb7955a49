"""The crash tests' verdicts: delivery counted at the sink, takeover times, worker logs."""

from __future__ import annotations

import statistics

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from partnercast.core.models import Delivery
from partnercast.core.tenancy import system_session
from support.crash_fleet import Orphan
from support.crash_run import tally
from support.crash_world import TOUCHES, CrashWorld
from support.recording_sink import Arrival


def ledger_marks_uncertain() -> bool:
    """Whether the ledger has the ``uncertain`` flag (issue 5's at-least-once contract)."""
    return hasattr(Delivery, "uncertain")


def check_delivery(
    engine: Engine, crash: CrashWorld, arrivals: list[Arrival], max_uncertain: int
) -> dict[str, int]:
    """Every contact got every touch, once per Message-ID but for uncertain ones."""
    seen = tally(arrivals)
    missing = seen.missing(crash.emails)
    assert not missing, f"{len(missing)} (contact, touch) never arrived, e.g. {missing[:5]}"
    strangers = set(seen.touches_of) - set(crash.emails)
    assert not strangers, f"mail to addresses outside the audience: {sorted(strangers)[:5]}"
    # A touch resent under a NEW Message-ID would be a repeat no receiver can drop.
    extra = {e: ids for e, ids in seen.message_ids_of.items() if len(ids) != len(TOUCHES)}
    assert not extra, f"recipients with other than one Message-ID per touch: {extra!r:.500}"
    shared = {mid: r for mid, r in seen.recipients_of.items() if len(r) != 1}
    assert not shared, f"Message-IDs sent to several recipients: {shared!r:.500}"
    repeated = seen.repeated
    assert len(repeated) <= max_uncertain, (
        f"{len(repeated)} Message-IDs arrived more than once, more than the {max_uncertain}"
        f" messages that can be in flight at the kills: {sorted(repeated.items())[:10]}"
    )
    if ledger_marks_uncertain() and repeated:
        with system_session(engine, reason="the crash test reads the repeated deliveries") as s:
            rows = s.exec(
                select(Delivery).where(col(Delivery.message_id).in_(list(repeated)))
            ).all()
        unmarked = [row.message_id for row in rows if not row.uncertain]  # type: ignore[attr-defined]
        assert len(rows) == len(repeated)
        assert not unmarked, f"repeated but not marked uncertain: {unmarked[:10]}"
    figures = {
        "arrivals": len(arrivals),
        "distinct": len(seen.per_message_id),
        "repeated_ids": len(repeated),
        "extra_copies": sum(n - 1 for n in repeated.values()),
    }
    print(f"sink: {figures}")
    return figures


def check_takeover(orphans: list[Orphan], lease: float, poll: float) -> None:
    """Each dispatch a dead worker held was claimed again within its lease plus one poll."""
    untaken = [orphan.dispatch_id for orphan in orphans if orphan.taken_at is None]
    assert not untaken, f"abandoned dispatches never taken over: {untaken}"
    for orphan in orphans:
        assert orphan.lease_until - orphan.killed_at <= lease + 0.5, orphan
    late = [orphan for orphan in orphans if orphan.past_expiry > poll]
    delays = [orphan.delay for orphan in orphans]
    if delays:
        print(
            f"takeovers: {len(delays)}, from the kill: median {statistics.median(delays):.2f}s,"
            f" max {max(delays):.2f}s; past lease expiry: max"
            f" {max(o.past_expiry for o in orphans):.2f}s (bound {poll:.1f}s)"
        )
    assert not late, f"taken over later than lease + {poll}s: {late[:5]}"


FORBIDDEN = ("database is locked", "Traceback")


def check_logs(logs: dict[str, str]) -> None:
    """No worker printed a lock error or a traceback (a killed one's log just stops)."""
    for name, text in logs.items():
        for word in FORBIDDEN:
            assert word not in text, f"{name} says {word!r}:\n{text[-3000:]}"
