"""Who may do what, where: the one role model behind the portal, the dashboard and the
REST API.

Four roles (DOMAIN.md's people):

* ``agency_admin``: everything, in every tenant of the agency (a membership with no
  tenant) or in one tenant (an API token is always one tenant's);
* ``concierge``: the agency's day-to-day work in a tenant, for the partners they cover
  (those assigned to their concierge, ``concierge_id``), or for all of the tenant's
  partners when no concierge is named;
* ``vendor_marketer``: the vendor's own people: campaigns, cycles, leads and spend, and
  reading everything of their own tenant;
* ``partner``: one partner's user: their own campaigns, customisation, decisions,
  contacts, channel accounts and results, never another partner's.

A :class:`Principal` is whoever is asking (a signed-in user or an API token), with the
grants their memberships or token give. :meth:`Principal.may` answers "may they do this
action in this tenant (for this partner)?"; :meth:`Principal.partner_scope` says which of
a tenant's partners they may see at all, so that every list can be filtered and every
other partner's id answered "not found".

Approving on a partner's behalf is allowed to agency staff (``decide`` for a role other
than ``partner``), and the caller must then record a reason: :meth:`Principal.acts_on_behalf`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    AGENCY_ADMIN = "agency_admin"
    CONCIERGE = "concierge"
    VENDOR_MARKETER = "vendor_marketer"
    PARTNER = "partner"


ROLE_TITLES = {
    Role.AGENCY_ADMIN: "agency admin",
    Role.CONCIERGE: "concierge",
    Role.VENDOR_MARKETER: "vendor marketer",
    Role.PARTNER: "partner user",
}

# Actions, by what they touch. "read" is seeing a tenant's data at all (a partner: their own).
READ = "read"
PARTNERS_WRITE = "partners.write"  # create, update, import partners; channel accounts
CONTACTS_WRITE = "contacts.write"  # contacts: create, import, suppress, erase
CAMPAIGNS_WRITE = "campaigns.write"  # campaigns and versions, segments, cycles, enrollments
CUSTOMISE = "enrollments.customise"
DECIDE = "enrollments.decide"  # approve, decline, ask for changes
TASKS_WRITE = "tasks.write"  # concierge tasks, reviews, capacity
FUNNEL_WRITE = "funnel.write"  # leads, lead stages, spend
INVITE = "users.invite"
ADMIN = "admin"  # API tokens, webhook subscriptions, memberships

ACTIONS = (
    READ,
    PARTNERS_WRITE,
    CONTACTS_WRITE,
    CAMPAIGNS_WRITE,
    CUSTOMISE,
    DECIDE,
    TASKS_WRITE,
    FUNNEL_WRITE,
    INVITE,
    ADMIN,
)

PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.AGENCY_ADMIN: frozenset(ACTIONS),
    Role.CONCIERGE: frozenset(
        {
            READ,
            PARTNERS_WRITE,
            CONTACTS_WRITE,
            CAMPAIGNS_WRITE,
            CUSTOMISE,
            DECIDE,
            TASKS_WRITE,
            FUNNEL_WRITE,
            INVITE,
        }
    ),
    Role.VENDOR_MARKETER: frozenset({READ, CAMPAIGNS_WRITE, FUNNEL_WRITE}),
    Role.PARTNER: frozenset({READ, CONTACTS_WRITE, CUSTOMISE, DECIDE, PARTNERS_WRITE}),
}


def parse_role(text: str) -> Role:
    """``agency-admin``, ``agency_admin`` or ``Agency admin`` -> the role; a ValueError
    naming the roles otherwise."""
    key = text.strip().lower().replace("-", "_").replace(" ", "_")
    if key == "partner_user":
        key = Role.PARTNER.value
    try:
        return Role(key)
    except ValueError:
        names = ", ".join(role.value.replace("_", "-") for role in Role)
        raise ValueError(f"unknown role {text!r}: one of {names}") from None


@dataclass(frozen=True)
class Grant:
    """One role in one tenant (None: every tenant), for one partner or as one concierge."""

    role: Role
    tenant_id: int | None
    partner_id: int | None = None
    concierge_id: int | None = None

    def covers_tenant(self, tenant_id: int) -> bool:
        return self.tenant_id is None or self.tenant_id == tenant_id


@dataclass(frozen=True)
class PartnerScope:
    """Which of one tenant's partners a principal may see: all of them, or those listed,
    plus those the listed concierges cover (resolved against the database by
    ``concierge.coverage.resolve``)."""

    everything: bool = False
    partner_ids: frozenset[int] = frozenset()
    concierge_ids: frozenset[int] = frozenset()

    @property
    def nothing(self) -> bool:
        return not (self.everything or self.partner_ids or self.concierge_ids)


@dataclass(frozen=True)
class Principal:
    """Whoever is asking: a user (``user_id``) or an API token (``token_id``)."""

    label: str  # the user's email, or "API token <name>": what audit trails record
    grants: tuple[Grant, ...] = field(default_factory=tuple)
    user_id: int | None = None
    token_id: int | None = None

    def grants_in(self, tenant_id: int) -> tuple[Grant, ...]:
        return tuple(grant for grant in self.grants if grant.covers_tenant(tenant_id))

    def sees_tenant(self, tenant_id: int) -> bool:
        return bool(self.grants_in(tenant_id))

    def visible_tenants(self, tenant_ids: Iterable[int]) -> list[int]:
        """Of ``tenant_ids``, those this principal may enter, in the given order."""
        return [tenant_id for tenant_id in tenant_ids if self.sees_tenant(tenant_id)]

    def roles_in(self, tenant_id: int) -> frozenset[Role]:
        return frozenset(grant.role for grant in self.grants_in(tenant_id))

    def is_staff_in(self, tenant_id: int) -> bool:
        """True for agency staff and vendor marketers: anyone who is not only a partner."""
        return any(role is not Role.PARTNER for role in self.roles_in(tenant_id))

    def may(self, action: str, tenant_id: int, partner_id: int | None = None) -> bool:
        """May this principal do ``action`` in the tenant (for ``partner_id``, when the
        action is about one partner)? A concierge's coverage is checked by the caller
        through :meth:`partner_scope` (it needs the database); here a concierge grant
        allows the action for any partner of the tenant it may see."""
        for grant in self.grants_in(tenant_id):
            if action not in PERMISSIONS[grant.role]:
                continue
            if grant.role is Role.PARTNER and partner_id != grant.partner_id:
                continue
            return True
        return False

    def partner_scope(self, tenant_id: int, *, action: str = READ) -> PartnerScope:
        """The partners of ``tenant_id`` this principal may do ``action`` for."""
        partner_ids: set[int] = set()
        concierge_ids: set[int] = set()
        for grant in self.grants_in(tenant_id):
            if action not in PERMISSIONS[grant.role]:
                continue
            if grant.role is Role.PARTNER:
                if grant.partner_id is not None:
                    partner_ids.add(grant.partner_id)
            elif grant.role is Role.CONCIERGE and grant.concierge_id is not None:
                concierge_ids.add(grant.concierge_id)
            else:
                return PartnerScope(everything=True)
        return PartnerScope(
            partner_ids=frozenset(partner_ids), concierge_ids=frozenset(concierge_ids)
        )

    def acts_on_behalf(self, tenant_id: int, partner_id: int) -> bool:
        """True when a decision for ``partner_id`` would be made by someone other than
        that partner's own user: it then needs a reason and is recorded as on behalf."""
        return not any(
            grant.role is Role.PARTNER and grant.partner_id == partner_id
            for grant in self.grants_in(tenant_id)
        )
