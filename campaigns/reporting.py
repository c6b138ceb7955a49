"""Per-partner state of a campaign: approval and touches sent, delivered, suppressed."""

from __future__ import annotations

from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from sqlmodel import Session, col, func, select

from partnercast.campaigns.models import Campaign, Enrollment
from partnercast.core import outbox
from partnercast.core.models import Delivery, Dispatch
from partnercast.tenants.models import Partner


@dataclass
class PartnerRow:
    external_id: str
    name: str
    segment: str
    state: str
    touches_done: int = 0
    touches_skipped: int = 0
    touches_failed: int = 0
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    suppressed: int = 0


def partner_rows(session: Session, campaign: Campaign) -> list[PartnerRow]:
    """One row per enrolled partner, counted from the dispatches and the delivery ledger."""
    rows: dict[int, PartnerRow] = {}
    enrolled = session.exec(
        select(Enrollment, Partner)
        .join(Partner, col(Partner.id) == Enrollment.partner_id)
        .where(Enrollment.campaign_id == campaign.id)
        .order_by(col(Partner.external_id))
    ).all()
    for enrollment, partner in enrolled:
        rows[enrollment.id or 0] = PartnerRow(
            partner.external_id, partner.name, enrollment.segment_key, enrollment.state
        )
    dispatch_counts = session.exec(
        select(Dispatch.enrollment_id, Dispatch.state, func.count())
        .join(Enrollment, col(Enrollment.id) == Dispatch.enrollment_id)
        .where(Enrollment.campaign_id == campaign.id)
        .group_by(col(Dispatch.enrollment_id), col(Dispatch.state))
    ).all()
    for enrollment_id, state, count in dispatch_counts:
        row = rows.get(enrollment_id)
        if row is None:
            continue
        if state == outbox.DONE:
            row.touches_done += count
        elif state == outbox.SKIPPED:
            row.touches_skipped += count
        elif state == outbox.FAILED:
            row.touches_failed += count
    delivery_counts = session.exec(
        select(Dispatch.enrollment_id, Delivery.state, func.count())
        .join(Dispatch, col(Dispatch.id) == Delivery.dispatch_id)
        .join(Enrollment, col(Enrollment.id) == Dispatch.enrollment_id)
        .where(Enrollment.campaign_id == campaign.id)
        .group_by(col(Dispatch.enrollment_id), col(Delivery.state))
    ).all()
    for enrollment_id, state, count in delivery_counts:
        row = rows.get(enrollment_id)
        if row is None:
            continue
        if state == outbox.SUPPRESSED:
            row.suppressed += count
            continue
        row.sent += count  # every message handed to the channel
        if state == outbox.SENT:
            row.delivered += count
        elif state == outbox.BOUNCED:
            row.bounced += count
    return list(rows.values())


_STATE_LABEL = {"changes_requested": "changes req."}
_STATE_STYLE = {
    "approved": "green",
    "declined": "red",
    "changes_requested": "yellow",
    "submitted": "cyan",
    "invited": "dim",
    "customising": "blue",
}


def partner_table(rows: list[PartnerRow], *, title: str, show_names: bool = True) -> Table:
    table = Table(title=title, show_footer=True, pad_edge=False, collapse_padding=True)
    table.add_column("partner", footer=f"{len(rows)}", no_wrap=True)
    if show_names:
        table.add_column("name", no_wrap=True, overflow="ellipsis", max_width=22)
    table.add_column("segment", no_wrap=True)
    table.add_column("state", no_wrap=True)
    for header, attribute in (
        ("touch", "touches_done"),
        ("sent", "sent"),
        ("deliv.", "delivered"),
        ("bounce", "bounced"),
        ("suppr.", "suppressed"),
    ):
        total = sum(getattr(row, attribute) for row in rows)
        table.add_column(
            header, justify="right", footer=f"{total:,}", no_wrap=True, min_width=len(header)
        )
    for row in rows:
        style = _STATE_STYLE.get(row.state, "")
        state = _STATE_LABEL.get(row.state, row.state)
        cells = [
            row.external_id,
            *([row.name] if show_names else []),
            row.segment,
            Text(state, style) if style else state,
            str(row.touches_done),
            f"{row.sent:,}",
            f"{row.delivered:,}",
            f"{row.bounced:,}",
            f"{row.suppressed:,}",
        ]
        table.add_row(*cells)
    return table
