"""The schedule of a campaign, per partner and touch, in each partner's local time.

Either the dispatches a cycle has planned (``partnercast schedule CAMPAIGN``), or what a
cycle starting at a given instant would plan (``--start``), computed with the same
function as planning (:func:`partnercast.campaigns.send_windows.planned_time`) and
writing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from sqlmodel import Session, col, select

from partnercast.campaigns import approval
from partnercast.campaigns.models import Campaign, CampaignVersion, Cycle, Enrollment, Touch
from partnercast.campaigns.send_windows import partner_zone, planned_time
from partnercast.campaigns.spec import CampaignSpec
from partnercast.campaigns.store import version_spec
from partnercast.core.errors import NotFound
from partnercast.core.models import Dispatch
from partnercast.core.timeutil import as_utc
from partnercast.tenants.models import Partner


@dataclass(frozen=True)
class ScheduleRow:
    partner: str
    region: str
    wave: str
    time_zone: str
    touch: str
    day: int
    at: datetime  # UTC
    local: datetime
    state: str


def cycle_schedule(
    session: Session, campaign: Campaign, number: int | None = None
) -> tuple[Cycle, list[ScheduleRow]]:
    """The planned dispatches of cycle ``number`` (default: the latest), by time."""
    statement = select(Cycle).where(Cycle.campaign_id == campaign.id)
    if number is not None:
        statement = statement.where(Cycle.number == number)
    cycle = session.exec(statement.order_by(col(Cycle.number).desc())).first()
    if cycle is None:
        which = f"cycle {number}" if number is not None else "cycle yet"
        raise NotFound(
            f"campaign {campaign.key!r} has no {which} (preview one with --start ISO-DATETIME)"
        )
    found = session.exec(
        select(Dispatch, Touch, Partner, Enrollment)
        .join(Touch, col(Touch.id) == Dispatch.touch_id)
        .join(Partner, col(Partner.id) == Dispatch.partner_id)
        .join(Enrollment, col(Enrollment.id) == Dispatch.enrollment_id)
        .where(Dispatch.cycle_id == cycle.id)
    ).all()
    specs = _Specs(session)
    rows = [
        _row(
            specs.of(enrollment),
            partner,
            (touch.key, touch.day_offset),
            dispatch.scheduled_at,
            dispatch.state,
        )
        for dispatch, touch, partner, enrollment in found
    ]
    return cycle, sorted(rows, key=lambda r: (r.at, r.partner, r.touch))


def preview_schedule(
    session: Session, campaign: Campaign, starts_at: datetime
) -> list[ScheduleRow]:
    """What a cycle starting at ``starts_at`` would plan for today's enrollments."""
    found = session.exec(
        select(Enrollment, Partner)
        .join(Partner, col(Partner.id) == Enrollment.partner_id)
        .where(Enrollment.campaign_id == campaign.id, Enrollment.state != approval.DECLINED)
    ).all()
    specs = _Specs(session)
    rows: list[ScheduleRow] = []
    for enrollment, partner in found:
        spec = specs.of(enrollment)
        for touch in spec.touches:
            at = planned_time(spec, touch.key, partner, starts_at, touch.day)
            rows.append(_row(spec, partner, (touch.key, touch.day), at, "preview"))
    return sorted(rows, key=lambda r: (r.at, r.partner, r.touch))


class _Specs:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.cache: dict[int, CampaignSpec] = {}

    def of(self, enrollment: Enrollment) -> CampaignSpec:
        if enrollment.version_id not in self.cache:
            version = self.session.get(CampaignVersion, enrollment.version_id)
            if version is None:
                raise NotFound(f"campaign version {enrollment.version_id} is gone")
            self.cache[enrollment.version_id] = version_spec(version)
        return self.cache[enrollment.version_id]


def _row(
    spec: CampaignSpec, partner: Partner, touch: tuple[str, int], at: datetime, state: str
) -> ScheduleRow:
    zone, zone_name = partner_zone(partner)
    wave = spec.wave_for(partner.region)
    moment = as_utc(at)
    return ScheduleRow(
        partner=partner.external_id,
        region=partner.region,
        wave=f"{wave[1].label()} +{wave[1].offset_days}d" if wave else "-",
        time_zone=zone_name,
        touch=touch[0],
        day=touch[1],
        at=moment,
        local=moment.astimezone(zone),
        state=state,
    )


def schedule_table(rows: list[ScheduleRow], *, title: str) -> ScheduleView:
    """The rows as a table where it fits, else two short lines per row (see ScheduleView)."""
    return ScheduleView(rows, title)


class ScheduleView:
    """A table on a wide console; on a narrow one (80 columns: a pipe, a file) two lines
    per partner and touch, so that no date, time or zone is ever cut short."""

    def __init__(self, rows: list[ScheduleRow], title: str) -> None:
        self.rows = rows
        self.title = title

    def table(self) -> Table:
        table = Table(title=self.title, pad_edge=False)
        for header in ("partner", "region", "wave", "touch", "day", "local time", "time zone"):
            table.add_column(header, no_wrap=True)
        table.add_column("UTC", no_wrap=True)
        table.add_column("state", no_wrap=True)
        for row in self.rows:
            table.add_row(
                row.partner,
                row.region or "-",
                row.wave,
                row.touch,
                str(row.day),
                _local(row),
                row.time_zone,
                f"{row.at:%Y-%m-%d %H:%M}",
                row.state,
            )
        return table

    def lines(self) -> list[str]:
        out = [self.title]
        for row in self.rows:
            wave = f", wave {row.wave}" if row.wave != "-" else ""
            out.append(
                f"{row.partner} ({row.region or '-'}{wave}) {row.touch}, day {row.day}: {row.state}"
            )
            out.append(f"  {_local(row)} {row.time_zone} = {row.at:%Y-%m-%d %H:%M} UTC")
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        table = self.table()
        needed = Measurement.get(console, options.update(max_width=10_000), table).maximum
        if needed <= options.max_width:
            yield table
            return
        for line in self.lines():
            yield Text(line, no_wrap=False)


def _local(row: ScheduleRow) -> str:
    return f"{row.local:%a %Y-%m-%d %H:%M} {row.local.tzname() or ''}".rstrip()
