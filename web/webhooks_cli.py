"""``partnercast webhooks``: a tenant's outgoing webhook receivers and their deliveries.

``add`` prints the endpoint's signing secret once (``whsec_...``: the receiver verifies
every request with it, docs/api.md shows how); ``deliveries`` lists what went out and
what waits; ``replay`` sends one again with the same webhook-id; ``deliver`` sends what is
due now (``partnercast worker`` does so every few seconds, ``tick`` at its end).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from partnercast.core.cli import NowOption, TenantOption, console, err_console, parse_now

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import Engine

    from partnercast.core.scheduler import PeriodicJob
    from partnercast.core.settings import Settings
    from partnercast.core.webhook_outbox import DeliveryReport

webhooks_app = typer.Typer(
    help="Outgoing webhooks (Standard Webhooks): receivers per tenant, deliveries, replays.",
    no_args_is_help=True,
)

_EVENTS = typer.Option(
    "--events",
    help="Event types, comma-separated, or * for all: enrollment.approved, "
    "enrollment.declined, enrollment.changes_requested, dispatch.sent, dispatch.failed, "
    "lead.created, lead.stage_changed, task.opened, contact.suppressed.",
    show_default=False,
)


@webhooks_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="The receiver's http(s) URL.", show_default=False)],
    tenant: TenantOption,
    events: Annotated[str, _EVENTS],
    description: Annotated[str, typer.Option(help="What the receiver is.")] = "",
    now: NowOption = None,
) -> None:
    """Add a receiver; prints its signing secret once (only a sealed copy is kept)."""
    from partnercast.core.settings import load_settings
    from partnercast.core.webhook_outbox import create_endpoint
    from partnercast.tenants.scope import tenant_scope

    settings = load_settings()
    with tenant_scope(tenant, settings) as session:
        endpoint, secret = create_endpoint(
            session,
            settings,
            url=url,
            event_types=events.split(","),
            now=parse_now(now),
            description=description,
        )
    err_console.print(
        f"webhook endpoint {endpoint.id}: {endpoint.url} ({', '.join(endpoint.event_types)}); "
        "its signing secret, shown this once:",
        highlight=False,
    )
    console.print(secret, highlight=False)


@webhooks_app.command("list")
def list_command(tenant: TenantOption) -> None:
    """The tenant's receivers, their event types and health."""
    from partnercast.core.webhook_outbox import list_endpoints
    from partnercast.tenants.scope import tenant_scope

    with tenant_scope(tenant) as session:
        endpoints = list_endpoints(session)
    if not endpoints:
        console.print("no webhook endpoints")
    for endpoint in endpoints:
        state = "enabled" if endpoint.enabled else f"disabled ({endpoint.disabled_reason})"
        if endpoint.enabled and endpoint.consecutive_failures:
            state += f", {endpoint.consecutive_failures} failures in a row"
        console.print(
            f"{endpoint.id}  {endpoint.url}  {','.join(endpoint.event_types)}  {state}",
            highlight=False,
            soft_wrap=True,
        )


def _switch(endpoint_id: int, tenant: str, enabled: bool, now: str | None) -> None:
    from partnercast.core.webhook_outbox import set_enabled
    from partnercast.tenants.scope import tenant_scope

    with tenant_scope(tenant) as session:
        set_enabled(session, endpoint_id, enabled, now=parse_now(now))
    word = "enabled: its waiting deliveries go out in order" if enabled else "disabled"
    console.print(f"webhook endpoint {endpoint_id} {word}", highlight=False)


@webhooks_app.command("enable")
def enable(
    endpoint_id: Annotated[int, typer.Argument(min=1, max=2**62, help="The endpoint's id.")],
    tenant: TenantOption,
    now: NowOption = None,
) -> None:
    """Enable a receiver (one the engine disabled, too)."""
    _switch(endpoint_id, tenant, True, now)


@webhooks_app.command("disable")
def disable(
    endpoint_id: Annotated[int, typer.Argument(min=1, max=2**62, help="The endpoint's id.")],
    tenant: TenantOption,
    now: NowOption = None,
) -> None:
    """Disable a receiver: its deliveries wait until it is enabled again."""
    _switch(endpoint_id, tenant, False, now)


@webhooks_app.command("remove")
def remove(
    endpoint_id: Annotated[int, typer.Argument(min=1, max=2**62, help="The endpoint's id.")],
    tenant: TenantOption,
) -> None:
    """Remove a receiver and its deliveries."""
    from partnercast.core.webhook_outbox import delete_endpoint
    from partnercast.tenants.scope import tenant_scope

    with tenant_scope(tenant) as session:
        delete_endpoint(session, endpoint_id)
    console.print(f"webhook endpoint {endpoint_id} removed", highlight=False)


@webhooks_app.command("deliveries")
def deliveries(
    tenant: TenantOption,
    endpoint: Annotated[int | None, typer.Option(min=1, max=2**62, help="One endpoint.")] = None,
    state: Annotated[
        str | None, typer.Option(help="pending or delivered.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many, newest first.")] = 50,
) -> None:
    """What went out and what waits, newest first."""
    from partnercast.core.errors import UserError
    from partnercast.core.webhook_models import DELIVERED, PENDING
    from partnercast.core.webhook_outbox import list_deliveries
    from partnercast.tenants.scope import tenant_scope

    if state is not None and state not in {PENDING, DELIVERED}:
        raise UserError(f"{state!r} is not pending or delivered", where="--state")
    with tenant_scope(tenant) as session:
        rows = list_deliveries(session, endpoint_id=endpoint, state=state, limit=limit)
    if not rows:
        console.print("no deliveries")
    for row in rows:
        outcome = f"HTTP {row.last_status}" if row.last_status else row.last_error or "-"
        console.print(
            f"{row.id}  {row.msg_id}  {row.event_type}  {row.subject}  {row.state}  "
            f"attempts {row.attempts}  {outcome}",
            highlight=False,
            soft_wrap=True,
        )


@webhooks_app.command("replay")
def replay(
    delivery_id: Annotated[int, typer.Argument(min=1, max=2**62, help="The delivery's id.")],
    tenant: TenantOption,
    now: NowOption = None,
) -> None:
    """Send a delivery again, the same message with the same webhook-id, due now."""
    from partnercast.core.webhook_outbox import replay as replay_delivery
    from partnercast.tenants.scope import tenant_scope

    with tenant_scope(tenant) as session:
        row = replay_delivery(session, delivery_id, now=parse_now(now))
    console.print(f"delivery {row.id} ({row.msg_id}) is due again", highlight=False)


@webhooks_app.command("deliver")
def deliver(now: NowOption = None) -> None:
    """Send every delivery due now, of every tenant (the worker does this on its own)."""
    from partnercast.core.cli import opened_engine
    from partnercast.core.settings import load_settings

    settings = load_settings()
    with opened_engine(settings) as engine:
        report = deliver_now(engine, settings, parse_now(now))
    disabled = f", endpoints disabled: {report.disabled}" if report.disabled else ""
    console.print(
        f"webhooks: {report.delivered} delivered, {report.failed} failed{disabled}",
        highlight=False,
    )


def deliver_now(
    engine: Engine, settings: Settings, now: datetime, *, owner: str = ""
) -> DeliveryReport:
    """What ``deliver``, ``tick`` and the worker run: the outbox, with a concierge task for
    an endpoint it disables."""
    import os

    from partnercast.core.webhook_outbox import deliver_due
    from partnercast.web.outgoing_events import open_task_for_disabled

    return deliver_due(
        engine,
        settings,
        now,
        owner=owner or f"process-{os.getpid()}",
        on_disabled=open_task_for_disabled,
    )


def deliver_after_tick(engine: Engine, now: datetime, tenant_ids: list[int]) -> int:
    """The step that ends ``tick``: deliver what the tick made due (every tenant's: the
    outbox is shared). Returns how many were delivered."""
    from partnercast.core.settings import load_settings

    return deliver_now(engine, load_settings(), now).delivered


def register(app: typer.Typer) -> None:
    app.add_typer(webhooks_app, name="webhooks")


WEBHOOK_JOB = "partnercast.webhooks"


def webhook_job(engine: Engine, settings: Settings, owner: str) -> PeriodicJob:
    """The worker's periodic delivery: every 5 seconds, one worker a slot (the deliveries'
    leases would keep two apart anyway; this keeps them from both querying)."""
    from datetime import timedelta

    from partnercast.core.scheduler import PeriodicJob

    def run(now: datetime) -> None:
        deliver_now(engine, settings, now, owner=owner)

    return PeriodicJob(WEBHOOK_JOB, run, timedelta(seconds=5))
