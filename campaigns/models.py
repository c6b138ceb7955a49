"""Table models of the campaign side: versions, touches, enrollments and cycles.

Time columns have no default: the caller passes its ``now`` (see core/models.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from partnercast.core.tenancy import TenantOwned

# ApprovalRecord.user_id names the table person: importing its model here makes the key
# resolvable wherever a decision is recorded (a command imports only what it uses).
from partnercast.tenants import access_models as _people  # noqa: F401


class Campaign(TenantOwned, SQLModel, table=True):
    """A campaign, identified by its key; its content lives in versions."""

    __table_args__ = (UniqueConstraint("tenant_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64)
    name: str = Field(max_length=200)
    latest_version_id: int | None = Field(default=None)
    created_at: datetime


class CampaignVersion(TenantOwned, SQLModel, table=True):
    """One immutable snapshot of a campaign folder: its parsed spec and template sources."""

    __table_args__ = (UniqueConstraint("campaign_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    number: int
    content_hash: str = Field(max_length=64)
    cycle_days: int
    spec: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    templates: dict[str, str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime


class Touch(TenantOwned, SQLModel, table=True):
    """One channel action on a day of the cycle, in one campaign version."""

    __table_args__ = (UniqueConstraint("version_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="campaignversion.id", index=True)
    key: str = Field(max_length=64)
    channel: str = Field(max_length=64)
    day_offset: int
    template: str = Field(max_length=300)


class Enrollment(TenantOwned, SQLModel, table=True):
    """A partner taking part in a campaign, pinned to the version it approved."""

    __table_args__ = (UniqueConstraint("tenant_id", "partner_id", "campaign_id"),)

    id: int | None = Field(default=None, primary_key=True)
    partner_id: int = Field(foreign_key="partner.id", index=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    version_id: int = Field(foreign_key="campaignversion.id")
    segment_key: str = Field(default="", max_length=64)  # picks the segment variant
    state: str = Field(default="invited", max_length=32)
    auto_approve: bool = Field(default=False)
    customization: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    note: str = Field(default="", max_length=2000)
    state_changed_at: datetime
    approved_at: datetime | None = None
    # Fingerprint of (version, customisation) the partner approved: a send checks it, so
    # content changed after approval can never go out under the partner's name.
    approved_fingerprint: str = Field(default="", max_length=64)
    # Keys of the touches the partner declined on their own (campaigns/decisions.py): those
    # never go out for this partner, whatever the campaign's approval.
    declined_touches: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    created_at: datetime


class Cycle(TenantOwned, SQLModel, table=True):
    """One 30-60 day run of a campaign version."""

    __table_args__ = (UniqueConstraint("campaign_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    campaign_id: int = Field(foreign_key="campaign.id", index=True)
    version_id: int = Field(foreign_key="campaignversion.id")
    number: int
    starts_at: datetime
    ends_at: datetime
    state: str = Field(default="scheduled", max_length=20)  # scheduled | running | completed
    created_at: datetime


class ApprovalRecord(TenantOwned, SQLModel, table=True):
    """One decision on an enrollment, with its evidence (campaigns/decisions.py): who, on
    whose behalf and why, when, from which address and browser, and a fingerprint of the
    exact content they were shown. Rows are only ever added."""

    __tablename__ = "approvalrecord"
    __table_args__ = (Index("ix_approvalrecord_enrollment", "enrollment_id", "decided_at"),)

    id: int | None = Field(default=None, primary_key=True)
    enrollment_id: int = Field(foreign_key="enrollment.id")
    partner_id: int = Field(foreign_key="partner.id", index=True)
    campaign_id: int = Field(foreign_key="campaign.id")
    version_id: int = Field(foreign_key="campaignversion.id")
    touch_key: str | None = Field(default=None, max_length=64)  # None: the whole campaign
    decision: str = Field(max_length=32)  # approve | decline | request_changes | auto_approve...
    state_after: str = Field(max_length=32)  # the enrollment's state after the decision
    user_id: int | None = Field(default=None, foreign_key="person.id")
    token_id: int | None = None  # apitoken.id, when an API token decided
    actor_label: str = Field(max_length=254)  # the user's email, "API token <name>", "cli ..."
    on_behalf: bool = Field(default=False)
    reason: str = Field(default="", max_length=2000)  # required when on behalf
    note: str = Field(default="", max_length=2000)
    decided_at: datetime
    client_address: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=500)
    # approval.fingerprint (version + customisation) of what was shown and decided on, and,
    # for a decision on one touch, a hash of that touch's rendered content when known.
    fingerprint: str = Field(max_length=64)
    content_fingerprint: str = Field(default="", max_length=64)
