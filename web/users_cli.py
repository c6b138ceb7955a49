"""``partnercast users`` (who may sign in to the portal and the dashboard) and
``partnercast partners invite`` (email a partner's point of contact an invitation).

Heavy imports stay inside the commands: the CLI's start-up imports only typer and rich.
"""

from __future__ import annotations

from typing import Annotated

import typer

from partnercast.core.cli import NowOption, OptionalTenant, TenantOption, console, parse_now
from partnercast.core.errors import NotFound, UserError

users_app = typer.Typer(
    help="People who sign in to the portal and the dashboard, and what they may do where.",
    no_args_is_help=True,
)


@users_app.command("add")
def add(
    email: Annotated[
        str, typer.Argument(help="The person's email address (they sign in with it).")
    ],
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="agency-admin, concierge, vendor-marketer or partner.",
            show_default=False,
        ),
    ],
    tenant: OptionalTenant = None,
    partner: Annotated[
        str | None,
        typer.Option("--partner", help="The partner (external id) a partner user belongs to."),
    ] = None,
    concierge: Annotated[
        str | None,
        typer.Option(
            "--concierge",
            help="The concierge (name or email) whose partners a concierge user covers; "
            "without, every partner of the tenant.",
        ),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="The person's name.")] = "",
    locale: Annotated[
        str, typer.Option("--locale", help="Their language: en, de, fr (default en).")
    ] = "",
    now_text: NowOption = None,
) -> None:
    """Let a person sign in, with a role.

    An agency admin works in every tenant (no --tenant) or in one; anyone else in the
    tenant --tenant names."""
    from partnercast.core.cli import opened_engine
    from partnercast.core.tenancy import plain_session, tenant_session
    from partnercast.tenants.access import Role, parse_role
    from partnercast.tenants.partners import get_partner
    from partnercast.tenants.scope import resolve_tenant
    from partnercast.tenants.users import ensure_user, grant

    now = parse_now(now_text)
    try:
        parsed = parse_role(role)
    except ValueError as error:
        raise UserError(str(error), where="--role") from None
    if tenant is None and parsed is not Role.AGENCY_ADMIN:
        raise UserError(
            f"a {parsed.value.replace('_', ' ')} belongs to one tenant: name it", where="--tenant"
        )
    if (parsed is Role.PARTNER) != (partner is not None):
        raise UserError(
            "a partner user, and only a partner user, names --partner", where="--partner"
        )
    if concierge is not None and parsed is not Role.CONCIERGE:
        raise UserError("only a concierge user names --concierge", where="--concierge")
    with opened_engine() as engine:
        tenant_id = resolve_tenant(engine, tenant) if tenant else None
        partner_id = concierge_id = None
        if tenant_id is not None and (partner or concierge):
            with tenant_session(engine, tenant_id) as session:
                if partner:
                    partner_id = get_partner(session, partner, where="--partner").id
                if concierge:
                    concierge_id = _concierge_id(session, concierge)
        with plain_session(engine) as session:
            user = ensure_user(session, email, now=now, name=name, locale=locale)
            grant(
                session,
                user,
                parsed,
                tenant_id=tenant_id,
                partner_id=partner_id,
                concierge_id=concierge_id,
                now=now,
                invited_by="partnercast users add",
            )
            address = user.email
    where = f"in {tenant}" if tenant else "in every tenant"
    whom = (
        f" for {partner}" if partner else f" covering {concierge}'s partners" if concierge else ""
    )
    console.print(
        f"{address} may sign in as {parsed.value.replace('_', ' ')} {where}{whom}"
        " (they ask for a link at /sign-in)",
        markup=False,
        highlight=False,
    )


def _concierge_id(session: object, concierge: str) -> int:
    from sqlmodel import Session, or_, select

    from partnercast.concierge.models import Concierge

    assert isinstance(session, Session)
    found = session.exec(
        select(Concierge).where(
            or_(Concierge.name == concierge, Concierge.email == concierge.strip().lower())
        )
    ).first()
    if found is None or found.id is None:
        raise NotFound(f"no concierge {concierge!r}", where="--concierge")
    return found.id


@users_app.command("list")
def list_command(tenant: OptionalTenant = None) -> None:
    """Who may sign in (to --tenant, or anywhere), as what, and when they last did."""
    from rich.table import Table
    from sqlmodel import col, select

    from partnercast.core.cli import opened_engine
    from partnercast.core.tenancy import plain_session, tenant_session
    from partnercast.tenants.access_models import Membership, User
    from partnercast.tenants.models import Partner, Tenant
    from partnercast.tenants.scope import resolve_tenant

    with opened_engine() as engine:
        only = resolve_tenant(engine, tenant) if tenant else None
        with plain_session(engine) as session:
            slugs = {t.id: t.slug for t in session.exec(select(Tenant)).all()}
            query = select(Membership, User).where(Membership.user_id == User.id)
            if only is not None:
                query = query.where(
                    (col(Membership.tenant_id) == only) | col(Membership.tenant_id).is_(None)
                )
            rows = session.exec(query.order_by(col(User.email), col(Membership.id))).all()
        partners: dict[int, str] = {}
        for tenant_id in {row.tenant_id for row, _ in rows if row.partner_id is not None}:
            assert tenant_id is not None
            with tenant_session(engine, tenant_id) as session:
                for partner in session.exec(select(Partner)).all():
                    partners[partner.id or 0] = partner.external_id
    if not rows:
        console.print(
            "nobody may sign in yet: partnercast users add EMAIL --role ROLE", markup=False
        )
        return
    table = Table("email", "role", "tenant", "partner", "signed in")
    for membership, user in rows:
        state = (
            "disabled"
            if user.disabled
            else (f"{user.last_sign_in_at:%Y-%m-%d}" if user.last_sign_in_at else "never")
        )
        table.add_row(
            user.email,
            membership.role.replace("_", "-"),
            slugs.get(membership.tenant_id, "") if membership.tenant_id else "(all)",
            partners.get(membership.partner_id or 0, "") if membership.partner_id else "",
            state,
        )
    console.print(table)


@users_app.command("remove")
def remove(
    email: Annotated[str, typer.Argument(help="The person's email address.")],
    tenant: OptionalTenant = None,
    partner: Annotated[
        str | None, typer.Option("--partner", help="Only their membership for this partner.")
    ] = None,
    now_text: NowOption = None,
) -> None:
    """Take a person's access away; their open sessions end.

    In --tenant (for --partner only, if given), or everywhere: then they can no longer
    sign in at all."""
    from sqlmodel import select

    from partnercast.core.cli import opened_engine
    from partnercast.core.tenancy import plain_session, tenant_session
    from partnercast.tenants.access_models import Membership
    from partnercast.tenants.partners import get_partner
    from partnercast.tenants.scope import resolve_tenant
    from partnercast.tenants.users import require_user, revoke_memberships
    from partnercast.web.sessions import revoke_user_sessions

    now = parse_now(now_text)
    if partner is not None and tenant is None:
        raise UserError("--partner goes with --tenant", where="--partner")
    with opened_engine() as engine:
        tenant_id = resolve_tenant(engine, tenant) if tenant else None
        partner_id = None
        if tenant_id is not None and partner:
            with tenant_session(engine, tenant_id) as session:
                partner_id = get_partner(session, partner, where="--partner").id
        with plain_session(engine) as session:
            user = require_user(session, email)
            if tenant_id is not None:
                removed = revoke_memberships(
                    session, user, tenant_id=tenant_id, partner_id=partner_id
                )
            else:
                rows = session.exec(select(Membership).where(Membership.user_id == user.id)).all()
                for row in rows:
                    session.delete(row)
                removed = len(rows)
                user.disabled = True
                session.add(user)
            address, user_id = user.email, user.id or 0
        if removed == 0 and tenant_id is not None:
            raise NotFound(
                f"{address} has no access in {tenant}{' for ' + partner if partner else ''}"
            )
        ended = revoke_user_sessions(engine, user_id, now=now)
    where = f"in {tenant}" if tenant else "everywhere"
    console.print(
        f"removed {removed} role(s) of {address} {where}; {ended} open session(s) ended",
        markup=False,
        highlight=False,
    )


def invite(
    partner: Annotated[str, typer.Argument(help="The partner (external id) to invite.")],
    tenant: TenantOption,
    now_text: NowOption = None,
) -> None:
    """Email the partner's contact an invitation to the portal.

    In the partner's language, with a sign-in link that works once within 7 days; the
    contact becomes a partner user."""
    from partnercast.core.settings import load_settings
    from partnercast.tenants.partners import get_partner
    from partnercast.tenants.scope import tenant_engine
    from partnercast.web.invitations import invite_partner

    now = parse_now(now_text)
    settings = load_settings()
    with tenant_engine(tenant, settings) as (engine, tenant_id):
        from partnercast.core.tenancy import tenant_session

        with tenant_session(engine, tenant_id) as session:
            found = get_partner(session, partner)
            partner_id = found.id or 0
        invitation = invite_partner(
            engine,
            settings,
            tenant_id=tenant_id,
            partner_id=partner_id,
            now=now,
            invited_by="partnercast partners invite",
        )
    console.print(
        f"invited {invitation.email} ({invitation.locale}) to {tenant}'s portal for {partner}:"
        f" the link works once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC",
        markup=False,
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Mount ``users`` and ``partners invite``."""
    from partnercast.tenants.cli import partners_app

    app.add_typer(users_app, name="users")
    partners_app.command("invite")(invite)
