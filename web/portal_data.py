"""What the partner portal reads and writes, for one partner of one tenant.

Every function takes a tenant-scoped session and the partner's id, and never reads
another partner's rows: an enrollment, a decision or an account of another partner is
"not found" (:class:`PortalNotFound`), exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from pydantic import BaseModel, SecretStr
from sqlmodel import Session, col, select

from partnercast.campaigns import approval, decisions
from partnercast.campaigns.cycles import COMPLETED
from partnercast.campaigns.enrollment import enrollment_spec
from partnercast.campaigns.live_preview import LivePreview
from partnercast.campaigns.models import ApprovalRecord, Campaign, Cycle, Enrollment, Touch
from partnercast.campaigns.send_windows import partner_zone
from partnercast.campaigns.spec import CampaignSpec
from partnercast.core import accounts
from partnercast.core.errors import NotFound
from partnercast.core.models import Dispatch
from partnercast.core.secrets import SecretBox
from partnercast.core.timeutil import as_utc
from partnercast.tenants.models import Partner

WAITING = (
    approval.INVITED,
    approval.CUSTOMISING,
    approval.SUBMITTED,
    approval.CHANGES_REQUESTED,
)
"""States in which a campaign waits for the partner's decision."""
TOKEN_LIFETIMES = {"linkedin": timedelta(days=60)}
"""How long a connection's access token lives, where the network limits it: LinkedIn's
OAuth 2.0 access tokens last 60 days. X's OAuth 1.0a tokens and Google's refresh tokens do
not expire on a date."""
EXPIRY_WARNING = timedelta(days=14)
"""How long before a token expires the portal warns."""


class PortalNotFound(NotFound):
    """Another partner's (or tenant's) row, or none: the same answer."""


@dataclass(frozen=True)
class TouchLine:
    key: str
    channel: str
    day: int
    at_local: datetime | None  # the planned send in the partner's time zone, once planned
    state: str  # the dispatch's state, or "" before a cycle plans it
    declined: bool


@dataclass(frozen=True)
class Offer:
    """One campaign offered to the partner, as the home page lists it."""

    enrollment: Enrollment
    campaign: Campaign
    spec: CampaignSpec
    touches: list[TouchLine]
    waiting: bool

    @property
    def id(self) -> int:
        return self.enrollment.id or 0


@dataclass
class Home:
    partner: Partner
    zone: tzinfo
    zone_name: str
    offers: list[Offer]
    on_behalf: list[ApprovalRecord]
    campaign_names: dict[int, str] = field(default_factory=dict)


def partner_row(session: Session, partner_id: int) -> Partner:
    partner = session.get(Partner, partner_id)
    if partner is None:
        raise PortalNotFound("no such partner")
    return partner


def enrollment_of(session: Session, partner_id: int, enrollment_id: int) -> Enrollment:
    """The partner's enrollment ``enrollment_id``; not found for anyone else's."""
    enrollment = session.get(Enrollment, enrollment_id)
    if enrollment is None or enrollment.partner_id != partner_id:
        raise PortalNotFound("no such campaign")
    return enrollment


def home(session: Session, partner_id: int) -> Home:
    partner = partner_row(session, partner_id)
    zone, zone_name = partner_zone(partner)
    rows = session.exec(
        select(Enrollment, Campaign)
        .join(Campaign, col(Campaign.id) == Enrollment.campaign_id)
        .where(Enrollment.partner_id == partner_id)
        .order_by(col(Campaign.name), col(Enrollment.id))
    ).all()
    offers = []
    for enrollment, campaign in rows:
        spec = enrollment_spec(session, enrollment)
        offers.append(
            Offer(
                enrollment,
                campaign,
                spec,
                _touch_lines(session, enrollment, spec, zone),
                enrollment.state in WAITING,
            )
        )
    records = decisions.records_for(session, [offer.id for offer in offers], on_behalf_only=True)
    names = {offer.id: offer.campaign.name for offer in offers}
    return Home(partner, zone, zone_name, offers, records[:20], names)


def _touch_lines(
    session: Session, enrollment: Enrollment, spec: CampaignSpec, zone: tzinfo
) -> list[TouchLine]:
    """Each touch with its planned time in the partner's zone, from the latest cycle that
    planned it (a cycle not yet completed)."""
    planned = session.exec(
        select(Dispatch, Touch)
        .join(Touch, col(Touch.id) == Dispatch.touch_id)
        .join(Cycle, col(Cycle.id) == Dispatch.cycle_id)
        .where(Dispatch.enrollment_id == enrollment.id, Cycle.state != COMPLETED)
        .order_by(col(Dispatch.scheduled_at))
    ).all()
    by_key = {touch.key: dispatch for dispatch, touch in planned}
    lines = []
    for touch in sorted(spec.touches, key=lambda t: (t.day, t.key)):
        dispatch = by_key.get(touch.key)
        lines.append(
            TouchLine(
                key=touch.key,
                channel=touch.channel,
                day=touch.day,
                at_local=as_utc(dispatch.scheduled_at).astimezone(zone) if dispatch else None,
                state=dispatch.state if dispatch else "",
                declined=touch.key in enrollment.declined_touches,
            )
        )
    return lines


def decisions_of(session: Session, enrollment: Enrollment) -> list[ApprovalRecord]:
    return decisions.records_for(session, [enrollment.id or 0])


def combined_fingerprint(preview: LivePreview) -> str:
    """One fingerprint over every touch as rendered: what an approval of the whole
    campaign was shown."""
    return decisions.content_fingerprint(
        [(touch.key, touch.fingerprint) for touch in preview.touches]
    )


# --- channel accounts ---------------------------------------------------------------------


@dataclass(frozen=True)
class AccountField:
    name: str
    secret: bool
    required: bool
    kind: str  # text | number | choice
    choices: list[str]
    value: str  # the stored plain value; never a secret's
    stored: bool  # a secret is stored for this field
    advanced: bool


@dataclass(frozen=True)
class Connection:
    channel: str
    title: str
    status: str  # connected | needs_reconnect | not_connected
    last_error: str
    connected_at: datetime | None
    expires_at: datetime | None
    expires_soon: bool
    expired: bool
    fields: list[AccountField]


def connections(
    session: Session,
    partner_id: int,
    channels: Mapping[str, tuple[str, type[BaseModel]]],
    now: datetime,
) -> list[Connection]:
    """Each channel's connection for the partner: its health, when its token expires,
    and the form fields (secrets never shown back: only whether one is stored)."""
    found = []
    for name, (title, model) in channels.items():
        row = accounts.find_account(session, partner_id=partner_id, channel=name)
        secret_names = set(accounts.secret_fields(model))
        stored_secrets = bool(row and row.secrets)
        fields = [
            _account_field(field_name, info, secret_names, row, stored_secrets)
            for field_name, info in model.model_fields.items()
        ]
        connected_at = as_utc(row.updated_at) if row else None
        lifetime = TOKEN_LIFETIMES.get(name)
        expires_at = connected_at + lifetime if connected_at and lifetime else None
        moment = as_utc(now)
        found.append(
            Connection(
                channel=name,
                title=title,
                status=row.status if row else "not_connected",
                last_error=row.last_error if row else "",
                connected_at=connected_at,
                expires_at=expires_at,
                expires_soon=bool(expires_at and moment < expires_at <= moment + EXPIRY_WARNING),
                expired=bool(expires_at and expires_at <= moment),
                fields=fields,
            )
        )
    return found


ADVANCED = ("api_base", "api_base_url", "oauth_url", "api_version", "timeout", "ca_file")


def _account_field(
    name: str,
    info: Any,
    secret_names: set[str],
    row: accounts.ChannelAccount | None,
    stored_secrets: bool,
) -> AccountField:
    annotation = info.annotation
    args = getattr(annotation, "__args__", ()) or ()
    literal = [str(arg) for arg in args if isinstance(arg, str)]
    kind = "choice" if literal else "number" if annotation in (int, float) else "text"
    stored = row.settings.get(name) if row else None
    default = None if info.is_required() else info.default
    value = stored if stored is not None else default
    secret = name in secret_names
    return AccountField(
        name=name,
        secret=secret,
        required=info.is_required(),
        kind=kind,
        choices=literal,
        value="" if secret or value is None else str(value),
        stored=secret and stored_secrets,
        advanced=not info.is_required() and any(name.startswith(a) for a in ADVANCED),
    )


def account_values(
    session: Session,
    partner_id: int,
    channel: str,
    model: type[BaseModel],
    form: Mapping[str, str],
    box: SecretBox,
) -> dict[str, Any]:
    """The account's values from the form: an empty secret keeps the stored one, an
    empty optional field its default."""
    values: dict[str, Any] = {}
    secret_names = set(accounts.secret_fields(model))
    stored: BaseModel | None = None
    row = accounts.find_account(session, partner_id=partner_id, channel=channel)
    for name in model.model_fields:
        text = form.get(name, "").strip()
        if text:
            values[name] = text
        elif name in secret_names and row is not None and row.secrets:
            if stored is None:
                stored = accounts.load_account(row, model, box)
            kept = getattr(stored, name, None)
            if isinstance(kept, SecretStr):
                values[name] = kept.get_secret_value()
    return values


def resume_held(session: Session, partner_id: int, channel: str, now: datetime) -> int:
    """Due again at ``now``: the partner's dispatches on ``channel`` held for want of a
    working account, in cycles not completed (as ``partnercast accounts connect`` does)."""
    open_cycles: Sequence[int | None] = session.exec(
        select(Cycle.id).where(Cycle.state != COMPLETED)
    ).all()
    held = accounts.held_dispatches(
        session,
        partner_id=partner_id,
        channel=channel,
        cycle_ids=[i for i in open_cycles if i],
    )
    for dispatch in held:
        session.add(dispatch)
    return accounts.resume_held(held, now)
