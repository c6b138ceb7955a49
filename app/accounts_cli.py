"""``partnercast accounts``: connect partners' channel accounts, list them, rotate keys.

Secrets are typed by the channel's Account model (``SecretStr``); a secret field not
given with ``--set`` is prompted for with hidden input. Nothing here ever prints a
secret: listings show ``****``.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from partnercast.core.cli import NowOption, TenantOption, console, opened_engine, parse_now
from partnercast.core.errors import NotFound, UserError

if TYPE_CHECKING:
    from sqlmodel import Session


accounts_app = typer.Typer(help="Partners' channel accounts (secrets encrypted at rest).")

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="An account setting as key=value (repeatable).", show_default=False),
]


def _pairs(items: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, item in enumerate(items, start=1):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            # Not echoed: a mistyped --set is often the secret itself, pasted alone.
            raise UserError(
                "expected key=value (what was given is not shown: it may be a secret)",
                where=f"--set number {number}",
            )
        values[key.strip()] = value
    return values


@accounts_app.command("connect")
def connect(
    partner: Annotated[str, typer.Argument(help="The partner's external id.")],
    channel: Annotated[str, typer.Argument(help="The channel name (see `partnercast plugins`).")],
    tenant: TenantOption,
    settings: SetOption = None,
    now: NowOption = None,
) -> None:
    """Connect (or reconnect) a partner's account on a channel.

    Dispatches that failed because this account was refused or missing are due again
    (at --now).
    """
    from partnercast.core import accounts
    from partnercast.core.secrets import secret_box
    from partnercast.core.settings import load_settings
    from partnercast.plugins.manager import default_plugins
    from partnercast.tenants.partners import get_partner
    from partnercast.tenants.scope import tenant_scope

    moment = parse_now(now)
    config = load_settings()
    model = default_plugins().channel(channel, config).Account
    values: dict[str, Any] = _pairs(settings or [])
    for name in accounts.secret_fields(model):
        if name not in values and model.model_fields[name].is_required():
            values[name] = typer.prompt(f"{name}", hide_input=True)
    account = accounts.validate_account(model, values, channel)
    with tenant_scope(tenant, config) as session:
        row = get_partner(session, partner, where=tenant)
        if row.id is None:
            raise NotFound(f"no partner {partner!r}", where=tenant)
        stored = accounts.connect_account(
            session,
            partner_id=row.id,
            channel=channel,
            account=account,
            box=secret_box(config),
            now=moment,
        )
        shown = _shown(stored.settings, accounts.secret_fields(model))
        held = resume_held_dispatches(session, partner_id=row.id, channel=channel, now=moment)
    console.print(f"connected {partner} to {channel}: {shown}", highlight=False)
    if held:
        console.print(
            f"{held} dispatch(es) held for this account are due again now", highlight=False
        )


def resume_held_dispatches(
    session: Session, *, partner_id: int, channel: str, now: datetime
) -> int:
    """Due again at ``now``: the partner's dispatches on ``channel`` that failed for want of a
    working account, in cycles that have not ended (a touch is never sent after its
    cycle). Returns how many."""
    from sqlmodel import select

    from partnercast.campaigns.cycles import COMPLETED
    from partnercast.campaigns.models import Cycle
    from partnercast.core import accounts

    still_open = [i for i in session.exec(select(Cycle.id).where(Cycle.state != COMPLETED)) if i]
    held = accounts.held_dispatches(
        session, partner_id=partner_id, channel=channel, cycle_ids=still_open
    )
    for dispatch in held:
        session.add(dispatch)
    return accounts.resume_held(held, now)


def _shown(settings: dict[str, Any], secret_names: list[str]) -> str:
    parts = [f"{key}={value}" for key, value in sorted(settings.items()) if value is not None]
    return ", ".join(parts + [f"{name}=****" for name in secret_names])


@accounts_app.command("list")
def list_accounts(tenant: TenantOption) -> None:
    """List the tenant's channel accounts (secrets shown as ****)."""
    from sqlmodel import col, select

    from partnercast.core import accounts
    from partnercast.tenants.models import Partner
    from partnercast.tenants.scope import tenant_scope

    table = Table("partner", "channel", "status")
    table.add_column("settings", overflow="fold")  # folded, never cut: whole at 80 columns
    table.add_column("last error", overflow="fold")
    with tenant_scope(tenant) as session:
        rows = session.exec(
            select(accounts.ChannelAccount, Partner)
            .join(Partner, col(Partner.id) == accounts.ChannelAccount.partner_id)
            .order_by(Partner.external_id, accounts.ChannelAccount.channel)
        ).all()
        for row, partner in rows:
            secret_note = ["secrets=****"] if row.secrets else []
            settings = "\n".join(
                [f"{k}={v}" for k, v in sorted(row.settings.items()) if v is not None] + secret_note
            )
            table.add_row(partner.external_id, row.channel, row.status, settings, row.last_error)
    console.print(table)


@accounts_app.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt every stored secret (channel accounts, webhook secrets) with the first
    encryption key, all tenants; a secret no configured key opens is one line, nothing
    changed."""
    from partnercast.core import accounts
    from partnercast.core.secrets import secret_box
    from partnercast.core.settings import load_settings
    from partnercast.core.tenancy import system_session
    from partnercast.core.webhook_outbox import rotate_secrets as rotate_endpoint_secrets
    from partnercast.funnel.crm_secret import rotate_secrets as rotate_webhook_secrets

    config = load_settings()
    box = secret_box(config)
    reason = "key rotation re-encrypts every tenant's secrets"
    with opened_engine(config) as engine, system_session(engine, reason=reason) as session:
        count = accounts.rotate_secrets(session, box)
        webhooks = rotate_webhook_secrets(session, box)
        endpoints = rotate_endpoint_secrets(session, box)
    console.print(
        f"re-encrypted the secrets of {count} accounts, {webhooks} webhook secrets and "
        f"{endpoints} outgoing webhook endpoints with the first key"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(accounts_app, name="accounts")
