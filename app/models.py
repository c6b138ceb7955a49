"""Every table model, imported in one place so that SQLModel's metadata is complete.

Alembic's autogenerate and the tests use this; application code imports the model it
needs from its own folder.
"""

from sqlmodel import SQLModel

from partnercast.campaigns.models import (
    ApprovalRecord,
    Campaign,
    CampaignVersion,
    Cycle,
    Enrollment,
    Touch,
)
from partnercast.concierge.models import (
    Concierge,
    ConciergeSettings,
    ConciergeTask,
    PartnerAssignment,
    PartnerReadiness,
    Review,
)
from partnercast.core.accounts import ChannelAccount
from partnercast.core.heartbeat import WorkerHeartbeat
from partnercast.core.models import Delivery, Dispatch, Event
from partnercast.core.ratelimit import ProviderBucket, RateBucket
from partnercast.core.scheduler import JobRun
from partnercast.core.webhook_models import WebhookDelivery, WebhookEndpoint
from partnercast.funnel.engagement import Engagement
from partnercast.funnel.leads import Lead
from partnercast.funnel.models import CrmSecret, LeadStage, PartnerRollup, Rollup, Spend
from partnercast.tenants.access_models import ApiToken, Membership, SignInLink, User, WebSession
from partnercast.tenants.models import (
    ConsentRecord,
    Contact,
    Erasure,
    Partner,
    PartnerSuppression,
    Segment,
    Suppression,
    Tenant,
)
from partnercast.web.api.models import IdempotencyKey

metadata = SQLModel.metadata

__all__ = [
    "ApiToken",
    "ApprovalRecord",
    "Campaign",
    "CampaignVersion",
    "ChannelAccount",
    "Concierge",
    "ConciergeSettings",
    "ConciergeTask",
    "ConsentRecord",
    "Contact",
    "CrmSecret",
    "Cycle",
    "Delivery",
    "Dispatch",
    "Engagement",
    "Enrollment",
    "Erasure",
    "Event",
    "IdempotencyKey",
    "JobRun",
    "Lead",
    "LeadStage",
    "Membership",
    "Partner",
    "PartnerAssignment",
    "PartnerReadiness",
    "PartnerRollup",
    "PartnerSuppression",
    "ProviderBucket",
    "RateBucket",
    "Review",
    "Rollup",
    "Segment",
    "SignInLink",
    "Spend",
    "Suppression",
    "Tenant",
    "Touch",
    "User",
    "WebSession",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WorkerHeartbeat",
    "metadata",
]
