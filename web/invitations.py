"""Inviting a partner's point of contact to the portal: a user, a partner membership, and
an email in the partner's language carrying a sign-in link valid for a week.

Used by ``partnercast partners invite`` and by the dashboard's invite button::

    invitation = invite_partner(
        engine, settings, tenant_id=tenant.id, partner_id=partner.id, now=now,
        invited_by=visitor.principal.label, smtp=mail.smtp_server(host.config.sections),
    )

The address is ``Partner.contact_email`` (a partner without one is a UserError saying
how to set it); the language is the partner's first language (``Partner.languages``),
else the tenant's default locale. Inviting again sends a new link (the earlier one still
works until it expires or is used) and keeps the one membership. Who accepted: the
membership's ``accepted_at``, set at the first sign-in (:func:`partner_users`).
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import col, select

from partnercast.core.errors import NotFound, UserError
from partnercast.core.settings import Settings
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.tenants.access import Role
from partnercast.tenants.access_models import Membership, User
from partnercast.tenants.models import Partner, Tenant
from partnercast.tenants.users import ensure_user, grant
from partnercast.web import magic_links, mail
from partnercast.web.link_mail import invitation_message

INVITATION_LIFETIME = magic_links.INVITATION_LIFETIME


@dataclass(frozen=True)
class Invitation:
    """An invitation made (and sent, when ``sent``)."""

    email: str
    name: str
    locale: str
    user_id: int
    tenant_id: int
    partner_id: int
    url: str
    expires_at: datetime
    sent: bool


def partner_language(partner: Partner, tenant: Tenant) -> str:
    """The language a partner is written to in: its first language, else the tenant's."""
    for language in partner.languages or []:
        if isinstance(language, str) and language.strip():
            return language.strip()
    return tenant.default_locale or "en"


def invite_partner(
    engine: Engine,
    settings: Settings,
    *,
    tenant_id: int,
    partner_id: int,
    now: datetime,
    invited_by: str = "",
    smtp: mail.SmtpServer | None = None,
    send: bool = True,
    lifetime: timedelta = INVITATION_LIFETIME,
) -> Invitation:
    """Invite the partner's point of contact: make the user and the partner membership,
    issue an invitation link (``lifetime``, 7 days) and email it (unless ``send`` is
    False) through ``smtp`` (default: the configured email channel's server).

    A partner of another tenant is NotFound; no contact email is a UserError; a refused
    or unreachable SMTP server is a UserError and nothing is kept (the mail is sent before
    the user, membership and link are committed)."""
    with plain_session(engine) as session:
        tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"no tenant {tenant_id}")
    with tenant_session(engine, tenant_id) as session:
        partner = session.get(Partner, partner_id)
        if partner is None or partner.tenant_id != tenant_id:
            raise NotFound(f"no partner {partner_id} in {tenant.slug}")
        session.expunge(partner)
    if not partner.contact_email.strip():
        raise UserError(
            f"partner {partner.external_id!r} has no point of contact email: set contact_email"
            " (partners import, or the partner's page) and invite again"
        )
    locale = partner_language(partner, tenant)
    with plain_session(engine) as session:
        user = ensure_user(
            session, partner.contact_email, now=now, name=partner.contact_name, locale=locale
        )
        grant(
            session,
            user,
            Role.PARTNER,
            tenant_id=tenant_id,
            partner_id=partner_id,
            now=now,
            invited_by=invited_by,
        )
        link = magic_links.issue(
            session,
            settings,
            user,
            now=now,
            purpose=magic_links.INVITATION,
            lifetime=lifetime,
        )
        assert user.id is not None
        invitation = Invitation(
            email=user.email,
            name=user.name,
            locale=locale,
            user_id=user.id,
            tenant_id=tenant_id,
            partner_id=partner_id,
            url=link.url,
            expires_at=link.expires_at,
            sent=send,
        )
        if send:  # inside the transaction: mail that was not sent leaves no user nor link
            message = invitation_message(
                settings,
                to=invitation.email,
                name=invitation.name,
                locale=locale,
                url=link.url,
                vendor=tenant.name,
                partner=partner.name,
                days=max(1, round(lifetime / timedelta(days=1))),
                now=now,
            )
            try:
                mail.send(smtp or mail.smtp_server_for(settings), message)
            except (OSError, smtplib.SMTPException) as error:
                raise UserError(
                    f"the invitation to {invitation.email} was not sent: {error}"
                ) from None
    return invitation


@dataclass(frozen=True)
class PartnerUser:
    """A partner's user as the dashboard lists them: invited when, accepted when."""

    email: str
    name: str
    invited_at: datetime
    invited_by: str
    accepted_at: datetime | None


def partner_users(engine: Engine, tenant_id: int, partner_id: int) -> list[PartnerUser]:
    """The partner's users (partner memberships in the tenant), oldest first."""
    with plain_session(engine) as session:
        rows = session.exec(
            select(Membership, User)
            .where(
                Membership.user_id == User.id,
                Membership.tenant_id == tenant_id,
                Membership.partner_id == partner_id,
                Membership.role == Role.PARTNER.value,
            )
            .order_by(col(Membership.created_at), col(Membership.id))
        ).all()
        return [
            PartnerUser(user.email, user.name, row.created_at, row.invited_by, row.accepted_at)
            for row, user in rows
        ]


__all__ = ["INVITATION_LIFETIME", "Invitation", "PartnerUser", "invite_partner", "partner_users"]
