"""``partnercast api-tokens``: make, list and revoke the REST API's tokens.

``create`` prints the token once, on stdout and alone (``TOKEN=$(partnercast api-tokens
create ...)`` works); what it is goes to stderr. Only its hash is kept; ``list`` shows
public ids, names and roles, never a secret. Nothing here logs a token.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated

import typer

from partnercast.core.cli import NowOption, TenantOption, console, err_console, parse_now
from partnercast.core.errors import NotFound, UserError

tokens_app = typer.Typer(
    help="REST API tokens (docs/api.md): one tenant and role each, shown once.",
    no_args_is_help=True,
)

_DURATION = re.compile(r"^\s*(\d{1,5})\s*([dh])\s*$")


def parse_expiry(text: str, now: datetime) -> datetime:
    """``90d``, ``12h`` from ``now``, or an ISO date or datetime; after ``now``."""
    from partnercast.core.bounds import parse_instant

    match = _DURATION.match(text)
    if match:
        count, unit = int(match.group(1)), match.group(2)
        moment = now + (timedelta(days=count) if unit == "d" else timedelta(hours=count))
    else:
        try:
            moment = parse_instant(text)
        except ValueError as error:
            raise UserError(f"{error} (or a duration such as 90d)", where="--expires") from None
    if moment <= now:
        raise UserError(f"{text!r} is not in the future", where="--expires")
    return moment


@tokens_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="What the token is for (shown in audits).")],
    tenant: TenantOption,
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="agency-admin, concierge, vendor-marketer or partner.",
            show_default=False,
        ),
    ],
    partner: Annotated[
        str | None,
        typer.Option("--partner", help="The partner (external id) of a partner token."),
    ] = None,
    concierge: Annotated[
        str | None,
        typer.Option(
            "--concierge",
            help="A concierge token covers this concierge's partners (name or email).",
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="90d, 12h or an ISO date (default: never)."),
    ] = None,
    now_text: NowOption = None,
) -> None:
    """Make a token and print it once (on stdout, alone)."""
    from sqlmodel import or_, select

    from partnercast.concierge.models import Concierge
    from partnercast.tenants.access import Role, parse_role
    from partnercast.tenants.api_tokens import create_token, describe
    from partnercast.tenants.partners import get_partner
    from partnercast.tenants.scope import tenant_scope

    now = parse_now(now_text)
    try:
        parsed_role = parse_role(role)
    except ValueError as error:
        raise UserError(str(error), where="--role") from None
    if concierge is not None and parsed_role is not Role.CONCIERGE:
        raise UserError("only a concierge token names a concierge", where="--concierge")
    expires_at = parse_expiry(expires, now) if expires is not None else None
    with tenant_scope(tenant) as session:
        partner_id = None
        if partner is not None:
            partner_id = get_partner(session, partner, where="--partner").id
        concierge_id = None
        if concierge is not None:
            found = session.exec(
                select(Concierge).where(
                    or_(Concierge.name == concierge, Concierge.email == concierge.lower())
                )
            ).first()
            if found is None:
                raise NotFound(f"no concierge {concierge!r}", where="--concierge")
            concierge_id = found.id
        if parsed_role is Role.PARTNER and partner_id is None:
            raise UserError("a partner token needs --partner", where="--role")
        if parsed_role is not Role.PARTNER and partner_id is not None:
            raise UserError("only a partner token names a partner", where="--partner")
        row, token = create_token(
            session,
            name=name,
            role=parsed_role,
            now=now,
            partner_id=partner_id,
            concierge_id=concierge_id,
            created_by="partnercast api-tokens create",
            expires_at=expires_at,
        )
        shown = describe(row)
    console.print(token, markup=False, highlight=False, soft_wrap=True)
    until = f", expires {expires_at.isoformat(timespec='minutes')}" if expires_at else ""
    err_console.print(
        f"made {shown}{until}: the token above is shown this once; keep it secret",
        markup=False,
        highlight=False,
    )


@tokens_app.command("list")
def list_command(tenant: TenantOption, now_text: NowOption = None) -> None:
    """The tenant's tokens (public id, name, role, state), never their secrets."""
    from rich.table import Table

    from partnercast.tenants.api_tokens import list_tokens
    from partnercast.tenants.scope import tenant_scope

    now = parse_now(now_text)
    with tenant_scope(tenant) as session:
        rows = list_tokens(session)
    if not rows:
        console.print(f"no API tokens in {tenant}", markup=False, highlight=False)
        return
    table = Table("id", "name", "role", "state", "last used")
    for row in rows:
        if row.revoked_at is not None:
            state = f"revoked {row.revoked_at:%Y-%m-%d}"
        elif row.expires_at is not None and row.expires_at <= now:
            state = f"expired {row.expires_at:%Y-%m-%d}"
        elif row.expires_at is not None:
            state = f"live until {row.expires_at:%Y-%m-%d}"
        else:
            state = "live"
        used = f"{row.last_used_at:%Y-%m-%d %H:%M}" if row.last_used_at else "never"
        table.add_row(row.public_id, row.name, row.role.replace("_", "-"), state, used)
    console.print(table)


@tokens_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (from `api-tokens list`).")],
    tenant: TenantOption,
    now_text: NowOption = None,
) -> None:
    """Revoke a token: every request with it is refused (401) from now on."""
    from partnercast.tenants.api_tokens import describe, revoke_token
    from partnercast.tenants.scope import tenant_scope

    now = parse_now(now_text)
    with tenant_scope(tenant) as session:
        row = revoke_token(session, token_id, now=now)
        shown = describe(row)
    console.print(f"revoked {shown}", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(tokens_app, name="api-tokens")
