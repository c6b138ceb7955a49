"""Send windows and waves: the local-time arithmetic, and the spec's checks with file:line.

The arithmetic is pure (no database, no clock): each case is an instant, a window, a zone
and the instant it must give, worked out by hand from the 2026 calendar (summer time ends
on 25 October in Europe, 1 November in the United States; starts 29 March / 8 March).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.windowed_world import WINDOW_AND_WAVES, windowed_campaign

from partnercast.campaigns.loader import read_campaign
from partnercast.campaigns.send_windows import (
    SPREAD_SHARE,
    first_send_time,
    next_send_time,
    planned_time,
    spread_of,
    window_on,
    zone_of,
)
from partnercast.campaigns.spec import SendWindow, window_slack_days
from partnercast.core.errors import Problems
from partnercast.core.timeutil import utcnow
from partnercast.tenants.models import Partner

from .conftest import SUFFIXES, CampaignFolder

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
WEEKDAYS_9_TO_11 = SendWindow(days=["mon", "tue", "wed", "thu", "fri"], start="09:00", end="11:00")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- the arithmetic -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "zone", "expected"),
    [
        # Berlin in summer (CEST, UTC+2) and winter (CET, UTC+1).
        ("2026-07-01 00:00", BERLIN, "2026-07-01 07:00"),
        ("2026-12-01 00:00", BERLIN, "2026-12-01 08:00"),
        # Inside the window: now.
        ("2026-12-01 09:30", BERLIN, "2026-12-01 09:30"),
        # After Friday's window: the weekend is skipped, Monday after the clocks went back.
        ("2026-10-23 12:00", BERLIN, "2026-10-26 08:00"),
        # Friday before the spring change: Monday is summer time already.
        ("2026-03-27 12:00", BERLIN, "2026-03-30 07:00"),
        # New York: EDT (UTC-4) until 1 November, EST (UTC-5) after.
        ("2026-10-30 16:00", NEW_YORK, "2026-11-02 14:00"),
        ("2026-03-06 20:00", NEW_YORK, "2026-03-09 13:00"),
        # Saturday in Tokyo: no DST there, Monday 09:00 JST is Monday 00:00 UTC.
        ("2026-10-24 09:00", TOKYO, "2026-10-26 00:00"),
        # Late on Sunday UTC is already Monday morning in Tokyo: inside the window.
        ("2026-10-26 00:30", TOKYO, "2026-10-26 00:30"),
        # The window's end is excluded.
        ("2026-12-01 10:00", BERLIN, "2026-12-02 08:00"),
    ],
)
def test_first_instant_inside_the_window(after: str, zone: ZoneInfo, expected: str) -> None:
    assert first_send_time(utc(after), WEEKDAYS_9_TO_11, zone) == utc(expected)


def test_a_window_in_the_hour_skipped_in_spring_and_the_hour_repeated_in_autumn() -> None:
    night = SendWindow(start="02:00", end="03:00")
    # 29 March: 02:00-03:00 does not exist in Berlin: that night's window is shut.
    assert window_on(datetime(2026, 3, 29).date(), night, BERLIN) is None
    assert first_send_time(utc("2026-03-28 23:00"), night, BERLIN) == utc("2026-03-30 00:00")
    # 25 October: 02:00-03:00 happens twice; the window is its first pass (CEST) and
    # lasts until 03:00 CET, two real hours.
    opens, closes = window_on(datetime(2026, 10, 25).date(), night, BERLIN) or (None, None)
    assert (opens, closes) == (utc("2026-10-25 00:00"), utc("2026-10-25 02:00"))


def test_a_window_may_run_to_the_end_of_the_day_but_not_across_midnight() -> None:
    evening = SendWindow(days=["sat"], start="22:00", end="24:00")
    assert first_send_time(utc("2026-10-23 12:00"), evening, TOKYO) == utc("2026-10-24 13:00")
    assert next_send_time(utc("2026-10-24 14:59"), evening, TOKYO) is None
    assert next_send_time(utc("2026-10-24 15:00"), evening, TOKYO) == utc("2026-10-31 13:00")


def test_next_send_time_is_none_inside_the_window_and_the_spread_opening_outside() -> None:
    inside = utc("2026-12-02 08:10")  # Wednesday 09:10 CET
    assert next_send_time(inside, WEEKDAYS_9_TO_11, BERLIN, 0.9) is None
    night = utc("2026-12-02 02:00")
    spread = 0.5
    later = next_send_time(night, WEEKDAYS_9_TO_11, BERLIN, spread)
    offset = timedelta(seconds=int(2 * 3600 * SPREAD_SHARE * spread))
    assert later == utc("2026-12-02 08:00") + offset


def test_the_spread_is_deterministic_and_stays_in_the_windows_first_three_quarters() -> None:
    assert spread_of("42") == spread_of("42")
    openings = {
        first_send_time(utc("2026-12-02 00:00"), WEEKDAYS_9_TO_11, BERLIN, spread_of(str(n)))
        for n in range(200)
    }
    assert len(openings) > 150  # partners do not all fire at 09:00:00
    assert min(openings) >= utc("2026-12-02 08:00")
    assert max(openings) < utc("2026-12-02 09:30")
    # Already inside the window later than a partner's point: at once, not tomorrow.
    late_in_window = utc("2026-12-02 09:45")
    assert first_send_time(late_in_window, WEEKDAYS_9_TO_11, BERLIN, 0.1) == late_in_window


def test_an_unknown_zone_is_utc_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    zone, name = zone_of("Europe/Atlantis", who="partner P001")
    assert (zone, name) == (UTC, "UTC")
    assert "unknown time zone 'Europe/Atlantis' (partner P001)" in caplog.text


def test_slack_is_the_longest_closed_run_plus_one() -> None:
    assert window_slack_days(WEEKDAYS_9_TO_11) == 3
    assert window_slack_days(SendWindow(start="09:00", end="10:00")) == 1
    assert window_slack_days(SendWindow(days=["sun", "mon"], start="09:00", end="10:00")) == 6


# --- the spec -----------------------------------------------------------------------------


def test_the_windowed_campaign_loads_and_names_each_partners_wave(tmp_path: Path) -> None:
    spec = read_campaign(windowed_campaign(tmp_path / "c"), SUFFIXES).spec
    assert spec.send_window == WEEKDAYS_9_TO_11  # end: 11:00 unquoted is a time, not 660
    assert [wave.offset_days for wave in spec.waves] == [0, 1, 2]
    assert spec.wave_for("emea") == (0, spec.waves[0])
    assert spec.wave_for("LATAM") == (2, spec.waves[2])  # the catch-all
    assert spec.window_for(spec.touch("intro")) == WEEKDAYS_9_TO_11


def test_a_campaign_without_the_new_keys_keeps_the_hash_it_had_before_them(
    folder: CampaignFolder, tmp_path: Path
) -> None:
    before = folder.read()
    assert before.spec.send_window is None and before.spec.waves == []
    # The hash as it was computed before send windows existed (no such keys in the dump).
    dumped = before.spec.model_dump(mode="json")
    del dumped["send_window"], dumped["waves"], dumped["tracking"]  # later keys, at defaults
    for touch in dumped["touches"]:
        del touch["send_window"]
    payload = {"spec": dumped, "templates": dict(sorted(before.templates.items()))}
    canonical = json.dumps(
        payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    assert before.content_hash == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    windowed = read_campaign(windowed_campaign(tmp_path / "c"), SUFFIXES)
    assert windowed.content_hash != before.content_hash


def test_a_touch_overrides_the_campaigns_window(tmp_path: Path) -> None:
    folder = windowed_campaign(tmp_path / "c")
    spec_file = folder / "campaign.yaml"
    text = spec_file.read_text(encoding="utf-8")
    text = text.replace(
        "    day: 35\n",
        '    day: 35\n    send_window: {days: [sat], start: "10:00", end: "12:00"}\n',
    )
    spec_file.write_text(text, encoding="utf-8")
    spec = read_campaign(folder, SUFFIXES).spec
    last_call = spec.window_for(spec.touch("last-call"))
    assert last_call is not None and last_call.describe() == "sat 10:00-12:00"
    assert spec.window_for(spec.touch("intro")) == WEEKDAYS_9_TO_11


def _problems(tmp_path: Path, block: str, edit: tuple[str, str] | None = None) -> list[str]:
    folder = CampaignFolder(windowed_campaign(tmp_path / "c", block))
    if edit is not None:
        folder.edit("campaign.yaml", *edit)
    with pytest.raises(Problems) as raised:
        read_campaign(folder.path, SUFFIXES)
    return raised.value.problems


def _line(tmp_path: Path, needle: str, nth: int = 1) -> int:
    """The line of the ``nth`` non-comment line holding ``needle`` (the sample has a
    commented-out send window)."""
    text = (tmp_path / "c" / "campaign.yaml").read_text(encoding="utf-8")
    hits = [
        number
        for number, line in enumerate(text.splitlines(), 1)
        if needle in line and not line.lstrip().startswith("#")
    ]
    return hits[nth - 1]


def test_wrong_days_times_and_keys_are_each_reported_on_their_line(tmp_path: Path) -> None:
    block = 'send_window:\n  days: [mon, tuesday]\n  start: "25:00"\n  end: "10:00"\n  strat: x\n\n'
    problems = _problems(tmp_path, block)
    assert problems == [
        f"campaign.yaml:{_line(tmp_path, '  days: [')}: send_window.days[1] must be one of "
        "'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun', got 'tuesday'",
        f"campaign.yaml:{_line(tmp_path, 'start:')}: send_window.start: '25:00' is not a "
        "time of day (00:00 to 24:00)",
        f"campaign.yaml:{_line(tmp_path, 'strat:')}: unknown key 'strat' in send_window "
        "(did you mean 'start'?)",
    ]


def test_an_end_before_the_start_and_a_repeated_day(tmp_path: Path) -> None:
    block = 'send_window:\n  days: [mon, fri, mon]\n  start: "11:00"\n  end: "09:00"\n\n'
    assert _problems(tmp_path, block) == [
        f"campaign.yaml:{_line(tmp_path, '  days: [')}: send_window.days: days lists mon more "
        "than once",
        f"campaign.yaml:{_line(tmp_path, 'end:')}: send_window.end: end 09:00 is not after "
        'start 11:00 (a window cannot cross midnight; use end: "24:00" and a second touch, '
        "or start earlier)",
    ]


def test_a_time_that_yaml_reads_as_a_number_asks_for_quotes(tmp_path: Path) -> None:
    block = "send_window:\n  start: 900\n  end: 11:00\n\n"
    assert _problems(tmp_path, block) == [
        f"campaign.yaml:{_line(tmp_path, 'start:')}: send_window.start: must be a time of "
        'day in quotes, such as "09:00", got 900',
    ]


def test_duplicate_regions_two_catch_alls_and_an_empty_wave(tmp_path: Path) -> None:
    block = (
        "waves:\n"
        "  - regions: [EMEA, NA]\n"
        "    offset_days: 0\n"
        "  - regions: [na]\n"
        "    others: true\n"
        "    offset_days: 1\n"
        "  - others: true\n"
        "    offset_days: 2\n\n"
    )
    assert _problems(tmp_path, block) == [
        f"campaign.yaml:{_line(tmp_path, '[na]')}: region 'na' is already in waves[0] "
        "(a partner's region belongs to one wave)",
        f"campaign.yaml:{_line(tmp_path, 'others: true', 2)}: waves[1] is already the "
        "catch-all (others: true); only one wave can be",
    ]
    empty = "waves:\n  - regions: []\n    offset_days: 1\n  - regions: [EMEA]\n\n"
    assert _problems(tmp_path / "2", empty) == [
        f"campaign.yaml:{_line(tmp_path / '2', '- regions: []')}: waves[0]: a wave names "
        "regions, or is the catch-all (others: true), or both",
        f"campaign.yaml:{_line(tmp_path / '2', '- regions: [EMEA]')}: waves[1] needs 'offset_days'",
    ]


def test_a_wave_that_pushes_a_touch_past_the_cycle_end(tmp_path: Path) -> None:
    block = "waves:\n  - regions: [APAC]\n    offset_days: 11\n\n"
    assert _problems(tmp_path, block) == [
        f"campaign.yaml:{_line(tmp_path, 'offset_days: 11')}: wave APAC moves touch "
        "'last-call' (day 35) 11 days later, to day 46, after the cycle's 45 days",
    ]


def test_a_window_that_may_push_a_touch_past_the_cycle_end(tmp_path: Path) -> None:
    problems = _problems(tmp_path, WINDOW_AND_WAVES, ("day: 35", "day: 41"))
    assert problems == [
        f"campaign.yaml:{_line(tmp_path, 'day: 41')}: touch 'last-call' on day 43 (in its "
        "last wave) may wait up to 3 days for its send window (mon-fri 09:00-11:00), past "
        "the cycle's 45 days; give it day 40 or earlier",
    ]
    every_day = WINDOW_AND_WAVES.replace("fri]", "fri, sat, sun]")
    folder = CampaignFolder(windowed_campaign(tmp_path / "ok", every_day))
    folder.edit("campaign.yaml", "day: 35", "day: 41")
    assert folder.read().spec.touch("last-call").day == 41  # one day of slack: 41+2+1 <= 45


def test_the_samples_commented_send_window_block_is_valid(folder: CampaignFolder) -> None:
    before = folder.read()
    text = folder.text("campaign.yaml")
    start = text.index("# send_window:")
    end = text.index("\ntouches:")
    block = text[start:end].replace("# ", "", -1)
    (folder.path / "campaign.yaml").write_text(text[:start] + block + text[end:], "utf-8")
    spec = folder.read().spec
    assert spec.send_window == WEEKDAYS_9_TO_11
    assert [(w.regions, w.others, w.offset_days) for w in spec.waves] == [
        (["EMEA"], False, 0),
        (["NA"], False, 1),
        (["APAC"], True, 2),
    ]
    assert before.spec.send_window is None  # as shipped: commented out


def test_waves_without_a_window_only_move_the_day(tmp_path: Path) -> None:
    waves = "waves:\n  - regions: [APAC]\n    offset_days: 2\n\n"
    spec = read_campaign(windowed_campaign(tmp_path / "c", waves), SUFFIXES).spec
    start = utc("2026-12-01 09:00")
    tokyo = Partner(
        id=1,
        external_id="P1",
        name="T",
        region="apac",
        time_zone="Asia/Tokyo",
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    berlin = Partner(
        id=2,
        external_id="P2",
        name="B",
        region="EMEA",
        time_zone="Europe/Berlin",
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    assert planned_time(spec, "follow-up", tokyo, start, 14) == utc("2026-12-16 09:00")
    assert planned_time(spec, "follow-up", berlin, start, 14) == utc("2026-12-14 09:00")
    # Without waves or a window, planning is what it always was.
    plain = read_campaign(windowed_campaign(tmp_path / "p", ""), SUFFIXES).spec
    assert planned_time(plain, "intro", tokyo, start, 1) == start
