"""`partnercast schedule` and `campaign show` with a send window and waves, through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from support.windowed_world import build_windowed_world, windowed_campaign

from partnercast.core import cli as core_cli
from partnercast.demo.smtp_sink import SmtpSink


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core_cli.console, "_width", 220)


def _rows(stdout: str, external_id: str) -> list[list[str]]:
    """The cells of the table rows of one partner."""
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in stdout.splitlines()]
    return [row for row in rows if row and row[0] == external_id]


def test_show_and_schedule_give_each_partner_its_local_time(
    cli, engine: Engine, tmp_path: Path, sink: SmtpSink, wide: None
) -> None:
    build_windowed_world(engine, tmp_path / "world", sink.port)
    show = cli("campaign", "show", "cloud-security", "--tenant", "northwind")
    assert (
        "send window mon-fri 09:00-11:00 in each partner's time zone · "
        "waves EMEA +0d, NA +1d, APAC+others +2d" in show.stdout
    )
    assert "send window (local)" in show.stdout

    none_yet = cli("schedule", "cloud-security", "--tenant", "northwind", expect=1)
    assert "has no cycle yet (preview one with --start ISO-DATETIME)" in none_yet.stderr

    preview = cli(
        "schedule", "cloud-security", "--tenant", "northwind", "--start", "2026-10-22T09:00"
    )
    assert "a cycle starting 2026-10-22 09:00 UTC (preview)" in preview.stdout
    berlin = _rows(preview.stdout, "P001")
    assert [row[3] for row in berlin] == ["intro", "follow-up", "last-call"], preview.stdout
    _, region, wave, _, day, local, zone, at, state = berlin[0]
    assert (region, wave, day, zone, state) == ("EMEA", "EMEA +0d", "1", "Europe/Berlin", "preview")
    # Thursday's 11:00 in Berlin is past the window: Friday morning, summer time (UTC+2).
    assert local.startswith("Fri 2026-10-23 09:") and local.endswith("CEST")
    assert at.startswith("2026-10-23 07:")
    assert berlin[1][5].startswith("Wed 2026-11-04 ") and berlin[1][5].endswith(" CET")
    tokyo = _rows(preview.stdout, "P006")[0]
    assert tokyo[2] == "APAC+others +2d" and tokyo[6] == "Asia/Tokyo"
    assert tokyo[5].startswith("Mon 2026-10-26 ") and tokyo[5].endswith(" JST")

    cli("cycle", "start", "cloud-security", "--tenant", "northwind", "--at", "2026-10-22T09:00")
    planned = cli("schedule", "cloud-security", "--tenant", "northwind")
    assert "cycle 1 from 2026-10-22" in planned.stdout
    first = _rows(planned.stdout, "P001")[0]
    assert first[:8] == berlin[0][:8] and first[8] == "pending"  # as previewed
    missing = cli("schedule", "cloud-security", "--tenant", "northwind", "--cycle", "7", expect=1)
    assert "has no cycle 7" in missing.stderr


def test_load_warns_about_wave_regions_no_partner_has_and_partners_in_no_wave(
    cli, engine: Engine, tmp_path: Path, sink: SmtpSink, wide: None
) -> None:
    build_windowed_world(engine, tmp_path / "world", sink.port)
    waves = "waves:\n  - regions: [EMEA, LATAM]\n    offset_days: 0\n\n"
    folder = windowed_campaign(tmp_path / "other", waves)
    loaded = cli("campaign", "load", str(folder), "--tenant", "northwind")
    assert loaded.stdout.splitlines() == [
        "warning: waves[0] names region 'LATAM', which no partner has (partner regions: "
        "APAC, EMEA, NA)",
        "warning: partners in APAC, NA are in no wave and go out on the touches' own days "
        "(add others: true to a wave to place them)",
        "cloud-security: stored version 2",
    ]
