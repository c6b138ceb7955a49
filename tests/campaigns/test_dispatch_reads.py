"""A dispatch's run reads each of its rows once: on PostgreSQL every statement is a round
trip that costs the worker CPU, and a run of a few contacts is mostly such statements
(docs/performance.md, "Where the cores go, and small dispatches").

A session's identity map holds its rows weakly, so a row that nothing held was read
again at the next ``session.get`` of it: the partner three times a dispatch, the touch,
enrollment and version twice, and the dispatch itself after each of its four fences.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from support.world import START, build_world, respond, start

from partnercast.campaigns.ticking import tick
from partnercast.demo.smtp_sink import SmtpSink

PARTNERS = ["P001", "P002", "P003", "P004", "P005", "P006"]
ROW_READ = re.compile(r"^SELECT (\w+)\.tenant_id, \1\.id,")  # an ORM read of whole rows


def test_a_dispatch_reads_its_rows_once_and_not_again_after_its_fences(
    any_engine: Engine, tmp_path: Path, sink: SmtpSink
) -> None:
    world = build_world(any_engine, tmp_path / "world", sink.port)
    respond(world, dict.fromkeys(PARTNERS, "approve"))
    start(world)
    reads: Counter[str] = Counter()

    def count(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        found = ROW_READ.match(statement)
        if found:
            reads[found.group(1)] += 1

    event.listen(any_engine, "before_cursor_execute", count)
    try:
        report = tick(any_engine, world.settings, START + timedelta(hours=1))
    finally:
        event.remove(any_engine, "before_cursor_execute", count)
    dispatches = len(report.runs)
    assert dispatches == len(PARTNERS)
    assert len(sink.received.raw) > 0  # the dispatches sent
    # One read of each row a dispatch needs, and one or two more for the tick's planning
    # of the cycle (it reads what it plans from): three partner reads a dispatch before.
    for table in ("partner", "touch", "enrollment", "campaignversion"):
        assert reads[table] <= dispatches + 2, (table, reads)
    # The fence returns the dispatch's row: the four fenced transactions of a run read it
    # no more (four reads a dispatch before); what is left is the planning's.
    assert reads["dispatch"] < dispatches, reads
