"""Send windows and waves: when, in each partner's own time zone, a touch may go out.

A campaign (or one touch) may declare a :class:`~partnercast.campaigns.spec.SendWindow`
(local weekdays and hours) and ``waves`` (partner regions that go out some days later).
Two moments use it:

* planning (:func:`planned_time`, called by ``cycles.plan_dispatches``): the touch's
  nominal instant (cycle start + day - 1 + the partner's wave offset, in days) is moved to
  the first instant at or after it that lies inside the window in the PARTNER's local
  time, at a point of the window that depends only on the partner (:func:`spread_of`), so
  that a thousand partners in one time zone do not all fire at 09:00:00;
* sending (:func:`hold_outside_window`, called by ``dispatching._run_claimed`` once the
  approval allows the send): a dispatch claimed outside its window (a worker that was
  down, a retry backoff that pushed it out) is put back, unleased, to the next window
  opening instead of going out at 3 a.m. local time.

Local times go through :mod:`zoneinfo`, so daylight saving time is handled: 09:00
Europe/Berlin is 08:00 UTC in winter and 07:00 UTC in summer. A local time that does not
exist (the hour skipped in spring) is read with the offset before the change (02:30 on
that night is 03:30 summer time); one that exists twice (autumn) is its first occurrence.
A partner time zone that zoneinfo does not know falls back to UTC with a warning.

The pure functions (:func:`first_send_time`, :func:`next_send_time`, :func:`spread_of`)
take no database and no clock; everything else here is the glue that reads the rows.
"""

from __future__ import annotations

import hashlib
import logging
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlmodel import Session, select

from partnercast.campaigns.models import CampaignVersion, Cycle, Touch
from partnercast.campaigns.spec import CampaignSpec, SendWindow, clock_minutes
from partnercast.campaigns.store import version_spec
from partnercast.core import outbox
from partnercast.core.models import Dispatch
from partnercast.core.timeutil import as_utc
from partnercast.tenants.models import Partner

log = logging.getLogger(__name__)

FALLBACK_ZONE = "UTC"
SPREAD_SHARE = 0.75
"""Openings are spread over the first three quarters of a window; the last quarter is
left for large sends to finish and for retries."""
_SEARCH_DAYS = 15  # every weekday twice, and room for a DST change in between
OUTSIDE_WINDOW = "outside its send window"
RESCHEDULED = "rescheduled"
"""The state a run reports for a dispatch put back to its next window opening."""


# --- pure arithmetic --------------------------------------------------------------------


def spread_of(key: str) -> float:
    """A fraction in [0, 1) that depends only on ``key`` (a partner's id), never on time."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _local_instant(day: date, clock: str, zone: tzinfo) -> datetime:
    minutes = clock_minutes(clock)
    if minutes == 24 * 60:
        return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=zone).astimezone(UTC)
    local = time(minutes // 60, minutes % 60)
    return datetime.combine(day, local, tzinfo=zone).astimezone(UTC)


def window_on(day: date, window: SendWindow, zone: tzinfo) -> tuple[datetime, datetime] | None:
    """The window of one local date as UTC instants [open, close), or None if it is shut.

    Shut: a weekday the window does not list, or (DST) a window that falls entirely into
    the hour skipped in spring.
    """
    if day.weekday() not in window.weekdays:
        return None
    opens = _local_instant(day, window.start, zone)
    closes = _local_instant(day, window.end, zone)
    return (opens, closes) if closes > opens else None


def first_send_time(
    after: datetime, window: SendWindow, zone: tzinfo, spread: float = 0.0
) -> datetime:
    """The first instant at or after ``after`` inside ``window`` in ``zone`` (UTC).

    Inside a window, a dispatch goes out at ``spread`` of the way through the window's
    first three quarters, or at ``after`` itself if that is later (the window is already
    open): ``spread=0`` gives the plain first instant inside the window.
    """
    moment = as_utc(after)
    first_day = moment.astimezone(zone).date() - timedelta(days=1)
    for number in range(_SEARCH_DAYS):
        opening = window_on(first_day + timedelta(days=number), window, zone)
        if opening is None:
            continue
        opens, closes = opening
        if closes <= moment:
            continue
        offset = int((closes - opens).total_seconds() * SPREAD_SHARE * spread)
        return max(moment, opens + timedelta(seconds=offset))
    # Unreachable for a valid window (at least one weekday, end after start): a guard.
    raise ValueError(f"the send window {window.describe()} never opens")


def next_send_time(
    now: datetime, window: SendWindow, zone: tzinfo, spread: float = 0.0
) -> datetime | None:
    """None when ``now`` is inside the window (send now); else when to try again."""
    moment = as_utc(now)
    if first_send_time(moment, window, zone) == moment:
        return None
    return first_send_time(moment, window, zone, spread)


def zone_of(name: str, *, who: str = "") -> tuple[tzinfo, str]:
    """The zoneinfo zone called ``name``, else UTC with a warning; and the name used."""
    try:
        return zoneinfo.ZoneInfo(name.strip()), name.strip()
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        log.warning(
            "unknown time zone %r%s: send windows use %s instead",
            name,
            f" ({who})" if who else "",
            FALLBACK_ZONE,
        )
        return UTC, FALLBACK_ZONE


# --- planning and sending -----------------------------------------------------------------


def partner_zone(partner: Partner) -> tuple[tzinfo, str]:
    """The partner's time zone (UTC, with a warning, when it is not a known zone)."""
    return zone_of(partner.time_zone or FALLBACK_ZONE, who=f"partner {partner.external_id}")


def wave_offset(spec: CampaignSpec, partner: Partner) -> int:
    """Days the partner's wave moves its touches (0 without waves or without its wave)."""
    found = spec.wave_for(partner.region)
    return found[1].offset_days if found else 0


def wave_region_warnings(session: Session, spec: CampaignSpec) -> list[str]:
    """Waves that name a region no partner of the tenant has, and partner regions that no
    wave names when there is no catch-all wave (those partners go on offset 0)."""
    if not spec.waves:
        return []
    regions = {
        (region or "").strip().casefold(): (region or "").strip()
        for region in session.exec(select(Partner.region).distinct()).all()
    }
    warnings = [
        f"waves[{index}] names region {name!r}, which no partner has "
        f"(partner regions: {', '.join(sorted(r for r in regions.values() if r)) or 'none'})"
        for index, wave in enumerate(spec.waves)
        for name in wave.regions
        if name.casefold() not in regions
    ]
    if not any(wave.others for wave in spec.waves):
        named = {name.casefold() for wave in spec.waves for name in wave.regions}
        left = sorted(shown or "(no region)" for key, shown in regions.items() if key not in named)
        if left:
            warnings.append(
                f"partners in {', '.join(left)} are in no wave and go out on the touches' "
                "own days (add others: true to a wave to place them)"
            )
    return warnings


def nominal_time(cycle_start: datetime, touch_day: int, offset_days: int) -> datetime:
    """The touch's day in the partner's wave, at the cycle's own time of day (UTC)."""
    return as_utc(cycle_start) + timedelta(days=touch_day - 1 + offset_days)


def planned_time(
    spec: CampaignSpec, touch_key: str, partner: Partner, cycle_start: datetime, touch_day: int
) -> datetime:
    """When a dispatch of ``touch_key`` to ``partner`` is scheduled in a cycle.

    Without waves or a window this is today's rule, ``cycle start + (day - 1) days``.
    """
    nominal = nominal_time(cycle_start, touch_day, wave_offset(spec, partner))
    window = _window(spec, touch_key)
    if window is None:
        return nominal
    zone, _ = partner_zone(partner)
    return first_send_time(nominal, window, zone, spread_of(str(partner.id)))


def _window(spec: CampaignSpec, touch_key: str) -> SendWindow | None:
    try:
        return spec.window_for(spec.touch(touch_key))
    except KeyError:
        return None


def hold_outside_window(session: Session, dispatch: Dispatch, now: datetime) -> str | None:
    """Put ``dispatch`` back to its next window opening if ``now`` is outside its window.

    Returns the reason when it was put back (the caller sends nothing), None when it may
    go out now. The lease is ended and the state is pending again, so any worker claims
    it at the new time; a new time past the cycle's end is kept, and the cycle's close
    skips it (``cycles._close``), so it is never sent after its cycle.
    """
    touch = session.get(Touch, dispatch.touch_id)
    partner = session.get(Partner, dispatch.partner_id)
    version = session.get(CampaignVersion, touch.version_id) if touch else None
    if touch is None or partner is None or version is None:
        return None  # the send path reports missing rows itself
    window = _window(version_spec(version), touch.key)
    if window is None:
        return None
    zone, zone_name = partner_zone(partner)
    later = next_send_time(now, window, zone, spread_of(str(partner.id)))
    if later is None:
        return None
    local = later.astimezone(zone)
    reason = (
        f"{OUTSIDE_WINDOW} ({window.describe()} {zone_name}); "
        f"moved to {local:%a %Y-%m-%d %H:%M} local ({later:%Y-%m-%d %H:%M} UTC)"
    )
    cycle = session.get(Cycle, dispatch.cycle_id)
    if cycle is not None and later >= as_utc(cycle.ends_at):
        reason += ", after the cycle's end: it will be skipped"
    outbox.end_lease(dispatch)
    dispatch.state = outbox.PENDING
    dispatch.scheduled_at = later
    dispatch.last_error = reason
    outbox.record_event(
        session,
        "dispatch.rescheduled",
        dispatch,
        now=as_utc(now),
        data={"reason": reason, "scheduled_at": later.isoformat()},
    )
    log.info("dispatch %s %s", dispatch.id, reason)
    return reason
