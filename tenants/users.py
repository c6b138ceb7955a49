"""People who sign in and what they may do: users, their memberships, and the
:class:`~partnercast.tenants.access.Principal` a signed-in user acts as.

Users belong to no tenant (one person may work with several vendors of the agency), so
these functions take a plain session and check tenants themselves: a membership names its
tenant, and :func:`principal_for_user` gives only the grants of the user's own memberships.
"""

from __future__ import annotations

from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from partnercast.core.errors import NotFound, UserError
from partnercast.tenants.access import Grant, Principal, Role
from partnercast.tenants.access_models import Membership, User


def normalise_email(email: str) -> str:
    """The address as users are keyed: trimmed and lower-cased; a UserError if it is not
    an address at all."""
    try:
        checked = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as error:
        raise UserError(f"{email.strip()!r} is not an email address: {error}") from None
    return checked.normalized.lower()


def find_user(session: Session, email: str) -> User | None:
    """The user with this address, or None (never an error: asking must not reveal)."""
    try:
        address = normalise_email(email)
    except UserError:
        return None
    return session.exec(select(User).where(User.email == address)).first()


def ensure_user(
    session: Session, email: str, *, now: datetime, name: str = "", locale: str = ""
) -> User:
    """The user with this address, made if new; a name or locale given fills an empty one."""
    address = normalise_email(email)
    user = session.exec(select(User).where(User.email == address)).first()
    if user is None:
        user = User(email=address, name=name[:200], locale=locale or "en", created_at=now)
    else:
        user.name = user.name or name[:200]
        if locale and user.locale == "en" and locale != "en":
            user.locale = locale
    session.add(user)
    session.flush()
    return user


def grant(
    session: Session,
    user: User,
    role: Role,
    *,
    tenant_id: int | None,
    now: datetime,
    partner_id: int | None = None,
    concierge_id: int | None = None,
    invited_by: str = "",
) -> Membership:
    """Give ``user`` ``role`` (idempotent: the same grant twice is one membership).

    An agency admin may have no tenant (every tenant); every other role needs one, and a
    partner user needs the partner.
    """
    _check_grant(role, tenant_id, partner_id)
    found = session.exec(
        select(Membership).where(
            Membership.user_id == user.id,
            Membership.role == role.value,
            _is(Membership.tenant_id, tenant_id),
            _is(Membership.partner_id, partner_id),
        )
    ).first()
    if found is not None:
        if concierge_id is not None:
            found.concierge_id = concierge_id
            session.add(found)
        return found
    if user.id is None:
        raise UserError("save the user before granting it a role")
    membership = Membership(
        user_id=user.id,
        role=role.value,
        tenant_id=tenant_id,
        partner_id=partner_id,
        concierge_id=concierge_id,
        invited_by=invited_by[:254],
        created_at=now,
    )
    session.add(membership)
    session.flush()
    return membership


def _check_grant(role: Role, tenant_id: int | None, partner_id: int | None) -> None:
    if tenant_id is None and role is not Role.AGENCY_ADMIN:
        raise UserError(f"a {role.value.replace('_', ' ')} belongs to one tenant: name it")
    if (role is Role.PARTNER) != (partner_id is not None):
        raise UserError("a partner user, and only a partner user, belongs to one partner")


def _is(column: int | None, value: int | None) -> ColumnElement[bool]:
    return col(column).is_(None) if value is None else col(column) == value


def revoke_memberships(
    session: Session, user: User, *, tenant_id: int, partner_id: int | None = None
) -> int:
    """Remove the user's memberships in one tenant (for one partner only, if given)."""
    query = select(Membership).where(
        Membership.user_id == user.id, Membership.tenant_id == tenant_id
    )
    if partner_id is not None:
        query = query.where(Membership.partner_id == partner_id)
    rows = session.exec(query).all()
    for row in rows:
        session.delete(row)
    session.flush()
    return len(rows)


def memberships(session: Session, user_id: int) -> list[Membership]:
    return list(
        session.exec(
            select(Membership).where(Membership.user_id == user_id).order_by(col(Membership.id))
        ).all()
    )


def principal_for_user(session: Session, user_id: int) -> Principal:
    """What the user may do: one grant per membership. A disabled or unknown user gets a
    principal with no grants (it sees nothing)."""
    user = session.get(User, user_id)
    if user is None or user.disabled:
        return Principal(label=user.email if user else f"user {user_id}", user_id=user_id)
    grants = tuple(
        Grant(
            role=Role(row.role),
            tenant_id=row.tenant_id,
            partner_id=row.partner_id,
            concierge_id=row.concierge_id,
        )
        for row in memberships(session, user_id)
    )
    return Principal(label=user.email, grants=grants, user_id=user_id)


def mark_signed_in(session: Session, user: User, *, now: datetime) -> None:
    """Record a sign-in: the user's last, and the first acceptance of each invitation."""
    user.last_sign_in_at = now
    session.add(user)
    for row in memberships(session, user.id or 0):
        if row.accepted_at is None:
            row.accepted_at = now
            session.add(row)
    session.flush()


def require_user(session: Session, email: str) -> User:
    user = find_user(session, email)
    if user is None:
        raise NotFound(f"no user {email.strip()!r}")
    return user
