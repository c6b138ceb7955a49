"""What the engine tells a tenant's webhook receivers, found in the flush that records it.

The outgoing webhooks (:mod:`partnercast.core.webhook_outbox`) report things every layer
records: an enrollment approved or declined (campaigns), a dispatch done or failed
(campaigns, core), a lead made or moved to another stage (funnel), a concierge task opened
(concierge), an address suppressed (tenants). This keeper, registered with the others by
whatever composes the engine (:func:`install`: the CLI, the web application, the demo,
the tests), looks at the rows each flush wrote and writes the deliveries on the same
connection, in the same transaction: a rolled-back approval is never reported, a
committed one always is, even if the process dies the next moment.

Suppressions written in bulk by an import (Core inserts, not rows of a session) are
reported by the import itself through :func:`~partnercast.core.webhook_outbox.enqueue`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from partnercast.concierge.models import ConciergeTask
from partnercast.core import keepers
from partnercast.core.models import Event
from partnercast.core.webhook_models import WebhookEndpoint
from partnercast.core.webhook_outbox import Happening, enqueue
from partnercast.funnel.leads import Lead
from partnercast.funnel.models import LeadStage
from partnercast.tenants.models import PartnerSuppression, Suppression
from partnercast.tenants.suppressions import suppressed_happening

KEEPER = "partnercast.outgoing-webhooks"

# Event kinds the engine records -> the webhook event types they are reported as.
EVENT_KINDS = {
    "enrollment.approved": "enrollment.approved",
    "enrollment.declined": "enrollment.declined",
    "enrollment.changes_requested": "enrollment.changes_requested",
    "dispatch.done": "dispatch.sent",
    "dispatch.failed": "dispatch.failed",
}


def install() -> None:
    """Report every flush's happenings to the tenants' webhooks from now on (idempotent)."""
    keepers.register(KEEPER, after_flush)


def after_flush(session: Session) -> None:
    found: dict[int, list[Happening]] = defaultdict(list)
    for row in session.new:
        happening = _new_row(row)
        if happening is not None:
            found[row.tenant_id].append(happening)
    if found:
        connection = session.connection()
        for tenant_id, happenings in found.items():
            # session.new is a set: a lead made and moved in one flush goes out in order.
            enqueue(connection, tenant_id, sorted(happenings, key=_in_order))


def _in_order(happening: Happening) -> tuple[int, datetime, str]:
    """A subject's first happening (a lead made) before what follows it (its stages, whose
    CRM times may even be earlier), then by time."""
    first = happening.event_type in {"lead.created", "task.opened"}
    return (0 if first else 1, happening.occurred_at, happening.key)


def _new_row(row: object) -> Happening | None:
    if isinstance(row, Event):
        return _from_event(row)
    if isinstance(row, ConciergeTask):
        return _task_opened(row)
    if isinstance(row, Lead):
        return _lead_created(row)
    if isinstance(row, LeadStage) and row.stage != "lead":
        return _stage_reached(row)
    if isinstance(row, Suppression | PartnerSuppression):
        return _suppressed(row)
    return None


def _from_event(event: Event) -> Happening | None:
    event_type = EVENT_KINDS.get(event.kind)
    if event_type is None:
        return None
    data: dict[str, Any] = {
        "partner_id": event.partner_id,
        "campaign_id": event.campaign_id,
    }
    if event_type.startswith("enrollment."):
        subject = f"enrollment:{event.enrollment_id}"
        data |= {
            "enrollment_id": event.enrollment_id,
            "by": event.source,
            "note": str(event.data.get("note", "")),
        }
    else:
        subject = f"dispatch:{event.dispatch_id}"
        data |= {
            "dispatch_id": event.dispatch_id,
            "sent": event.data.get("sent"),
            "reason": str(event.data.get("reason", "")),
        }
    return Happening(event_type, f"event:{event.id}", subject, data, event.occurred_at)


def _task_opened(task: ConciergeTask) -> Happening:
    data = {
        "task_id": task.id,
        "partner_id": task.partner_id,
        "kind": task.kind,
        "title": task.title,
        "due_at": _iso(task.due_at),
        "created_by": task.created_by,
    }
    return Happening("task.opened", f"task:{task.id}", f"task:{task.id}", data, task.created_at)


def _lead_created(lead: Lead) -> Happening:
    return Happening(
        "lead.created",
        f"lead:{lead.id}",
        f"lead:{lead.id}",
        _lead_data(lead),
        lead.created_at,
    )


def _stage_reached(stage: LeadStage) -> Happening:
    data = {
        "lead_id": stage.lead_id,
        "stage": stage.stage,
        "value": stage.value,
        "currency": stage.currency,
        "source": stage.source,
    }
    return Happening(
        "lead.stage_changed",
        f"leadstage:{stage.id}",
        f"lead:{stage.lead_id}",
        data,
        stage.occurred_at,  # the CRM's time
        stage.created_at,
    )


def _lead_data(lead: Lead) -> dict[str, Any]:
    return {
        "lead_id": lead.id,
        "partner_id": lead.partner_id,
        "campaign_id": lead.campaign_id,
        "stage": lead.stage,
        "email": lead.email,
        "name": lead.name,
        "company": lead.company,
        "source": lead.source,
        "crm_id": lead.crm_id,
    }


def _suppressed(row: Suppression | PartnerSuppression) -> Happening:
    return suppressed_happening(
        row_id=row.id or 0,
        email=row.email,
        reason=row.reason,
        source=row.source,
        partner_id=row.partner_id if isinstance(row, PartnerSuppression) else None,
        created_at=row.created_at,
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def open_task_for_disabled(session: Session, endpoint: WebhookEndpoint, now: datetime) -> None:
    """The outbox's ``on_disabled``: a concierge task about the tenant as a whole (no
    partner), due at once, saying which receiver stopped and why. Runs in the system
    session that disables the endpoint, so the row names its tenant."""
    task = ConciergeTask(
        partner_id=None,
        kind="webhook_disabled",
        title=f"Webhook endpoint {endpoint.id} disabled: {endpoint.url}"[:300],
        due_at=now,
        notes=(
            f"{endpoint.disabled_reason}. Its deliveries are kept and go out, in "
            f"order, once it is enabled again: partnercast webhooks enable {endpoint.id}"
        ),
        created_by="engine",
        cause_key=f"webhook-disabled:{endpoint.id}:{now.isoformat()}",
        created_at=now,
        updated_at=now,
    )
    task.tenant_id = endpoint.tenant_id
    session.add(task)
