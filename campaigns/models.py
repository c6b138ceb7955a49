"""Table models of the campaign side: versions, touches, enrollments and cycles.

Time columns have no default: the caller passes its ``now`` (see core/models.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from partnercast.core.tenancy import TenantOwned


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
