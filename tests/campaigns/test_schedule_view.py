"""The schedule's printout: a table where it fits, two whole lines per row where not."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from rich.console import Console

from partnercast.campaigns.schedule import ScheduleRow, schedule_table

BERLIN = ZoneInfo("Europe/Berlin")


def _row(touch: str, day: int, at: datetime) -> ScheduleRow:
    return ScheduleRow(
        partner="P001",
        region="EMEA",
        wave="EMEA +0d",
        time_zone="Europe/Berlin",
        touch=touch,
        day=day,
        at=at,
        local=at.astimezone(BERLIN),
        state="pending",
    )


ROWS = [  # either side of the clocks going back on 25 October 2026
    _row("intro", 1, datetime(2026, 10, 23, 7, 5, tzinfo=UTC)),
    _row("follow-up", 14, datetime(2026, 11, 4, 8, 5, tzinfo=UTC)),
]


def _printed(width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(schedule_table(ROWS, title="cloud-security: cycle 1 from 2026-10-22"))
    return console.export_text()


def test_at_80_columns_every_value_is_whole() -> None:
    out = _printed(80)
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 80
    assert out.splitlines() == [
        "cloud-security: cycle 1 from 2026-10-22",
        "P001 (EMEA, wave EMEA +0d) intro, day 1: pending",
        "  Fri 2026-10-23 09:05 CEST Europe/Berlin = 2026-10-23 07:05 UTC",
        "P001 (EMEA, wave EMEA +0d) follow-up, day 14: pending",
        "  Wed 2026-11-04 09:05 CET Europe/Berlin = 2026-11-04 08:05 UTC",
    ]


def test_a_wide_console_gets_the_table() -> None:
    out = _printed(160)
    assert "│ follow-up " in out and "Wed 2026-11-04 09:05 CET" in out and "…" not in out
