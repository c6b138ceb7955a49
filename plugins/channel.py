"""The Channel contract, and the types a channel receives and returns.

A channel is a class with declarative attributes (name, title, template suffix, whether
it speaks to an audience of contacts, pydantic models of its account settings and of a
touch's content) and a few fixed methods: ``render`` -> :class:`Draft` (what the partner
previews), ``validate`` -> problems, ``publish`` -> :class:`PublishResult`.

Errors are typed so that one failing channel never stops the others: raise
:class:`TransientError` (retry later), :class:`PermanentError` (fail, tell the concierge)
or :class:`AuthError` (the account must be reconnected). Per-recipient outcomes of an
audience channel come back in the result instead of being raised.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from partnercast.plugins.settings import PluginConfig


class ChannelError(Exception):
    """Base of the errors a channel raises from ``publish``."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(ChannelError):
    """Try again later (a timeout, a 4xx SMTP reply, HTTP 429 or 5xx)."""


class PermanentError(ChannelError):
    """This publication cannot succeed as it is; a person must look at it."""


class AuthError(ChannelError):
    """The account's credentials were refused: it must be reconnected."""


class NoContent(BaseModel):
    """Content model of a channel whose touches need nothing beyond the template."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class RenderRequest:
    """Everything a channel needs to render one touch for one partner in one locale.

    ``render_template(name)`` renders ``templates/<name>.<locale><suffix>`` of the campaign
    version in the engine's sandbox with the layered context; ``render_string(source,
    html=...)`` renders a short template (a subject line). Contact values come out as
    merge markers for ``nonce`` (see partnercast.plugins.personalization). ``content`` is
    the touch's channel content from campaign.yaml, in this locale. ``identity`` is who
    the message goes out as (name, legal_name, postal_address, sender_name, sender_email).
    ``render_vendor_template`` and ``render_vendor_string`` render the same with the
    vendor's defaults only (no partner customisation), so that a channel can refuse a
    post that is word for word the vendor's. ``campaign_key`` and ``partner_external_id``
    (the partner's id in the vendor's records) let a channel tag links per campaign and
    partner (UTM parameters); ``tenant_key`` (the tenant's slug) with them names a
    partner's own page (the microsite's address). All are empty when the engine does not
    know them.
    """

    channel: str
    touch_key: str
    template: str
    locale: str
    content: Mapping[str, Any]
    nonce: str
    render_template: Callable[[str], str]
    render_string: Callable[..., str]
    identity: Mapping[str, str] = field(default_factory=dict)
    render_vendor_template: Callable[[str], str] | None = None
    render_vendor_string: Callable[..., str] | None = None
    campaign_key: str = ""
    partner_external_id: str = ""
    tenant_key: str = ""


@dataclass(frozen=True)
class TemplateFinding:
    """A problem a channel finds in one rendered template (:meth:`Channel.check_rendered`).

    ``offset`` is where it is, as a character index into the rendered text: the engine
    maps it back to the template file and line that produced that text (None: the
    template as a whole). A ``warning`` is shown but does not refuse the campaign.
    """

    message: str
    offset: int | None = None
    warning: bool = False


@dataclass
class Draft:
    """A rendered touch: what the partner previews and what the channel publishes."""

    channel: str
    touch_key: str
    locale: str
    nonce: str
    parts: dict[str, str]
    preview_html: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipient:
    """One contact a message goes to, with the engine's ids for the delivery ledger."""

    delivery_id: int
    contact_id: int
    email: str
    message_id: str
    values: Mapping[str, str]


RecipientStatus = Literal["sent", "hard_bounce", "transient", "failed"]


@dataclass(frozen=True)
class RecipientOutcome:
    """What happened to one recipient's message."""

    delivery_id: int
    status: RecipientStatus
    detail: str = ""


@dataclass
class PublishResult:
    """What a publish call did: external ids (posts) or per-recipient outcomes (email)."""

    external_ids: list[str] = field(default_factory=list)
    outcomes: list[RecipientOutcome] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == "sent")


class DeliveryJournal(Protocol):
    """Where an audience channel notes its messages as they go on the wire.

    The engine passes one to ``publish(journal=...)`` when the channel declares
    ``journals_deliveries = True``. Each connection works in windows of at most
    ``window`` recipients: before handing a window's messages to the server it calls
    ``note(done, handing_over=[ids of the window])`` with the outcomes of its previous
    window (empty for the first), and after its last ``note(done, [], released)``, where
    ``released`` are ids it noted but never handed over (it was stopped). Each call is ONE
    committed write, so if the process dies, the only messages whose fate is unknown are
    those noted in flight on each connection: they are resent with the same Message-ID,
    flagged uncertain (or, at most once, not at all); every other contact is known sent or
    not sent.

    The engine's journal also offers ``ahead`` (0 or 1) and ``begin(done, handing_over,
    released)``: ``note`` run on a writer thread of the calling connection, returning a
    ticket whose ``result()`` is ``note``'s answer. With ``ahead`` 1 a connection notes its
    next window while it sends the current one and asks the ticket's answer only before
    sending the window noted, so at most two windows a connection are in flight (one
    with ``ahead`` 0). A channel that uses only ``note`` keeps the one-window bound; the
    built-in email channel uses ``begin`` when the journal has it. ``note`` returns False when the
    engine may no longer send for this dispatch (its lease was taken over): the channel
    stops that connection at once. Called from the channel's sender threads;
    implementations are thread-safe.

    ``renewal_due()`` is True when the engine's lease wants renewing: a connection whose
    window is slow to go (a slow server) then notes what it has sent so far
    (``note(done, [])``), which renews it. ``record(done, handing_over)`` is ``note`` for a
    window of one message (``done``: the previous message's outcome or None,
    ``handing_over``: the next id or None).
    """

    window: int

    def renewal_due(self) -> bool: ...

    def note(
        self,
        done: Sequence[RecipientOutcome],
        handing_over: Sequence[int] = (),
        released: Sequence[int] = (),
    ) -> bool: ...

    def record(self, done: RecipientOutcome | None, handing_over: int | None) -> bool: ...


class Channel(ABC):
    """Base class of every channel, built-in or third-party."""

    name: ClassVar[str]
    title: ClassVar[str]
    template_suffix: ClassVar[str] = ".txt"
    audience: ClassVar[bool] = False
    # An audience channel whose publish() accepts journal= (see DeliveryJournal).
    journals_deliveries: ClassVar[bool] = False
    Account: ClassVar[type[BaseModel]]
    Content: ClassVar[type[BaseModel]] = NoContent
    # Default send limits of one account, e.g. {"per_minute": 30, "per_day": 500} (keys
    # per_second/minute/hour/day); a partner's own rate_per_* account fields override them.
    rate_limits: ClassVar[Mapping[str, int]] = {}
    # What every template of this channel must show, checked when a campaign is loaded:
    # ``{"links.unsubscribe": "the unsubscribe link"}`` reports "<name> template must show
    # the unsubscribe link: use {{ links.unsubscribe }}" for a template (with what it
    # includes) that never uses it.
    template_must_show: ClassVar[Mapping[str, str]] = {}

    def __init__(self, settings: PluginConfig | None = None) -> None:
        """Channels are built with the plugins' config (None: a bare channel, in a test).

        ``settings.section(namespace, Model)`` is the plugin's own settings (the
        ``register_settings`` hook); ``settings.public_base_url`` the engine's address.
        """
        self.settings = settings

    @classmethod
    def check_touch(cls, touch_key: str, content: Mapping[str, Any]) -> list[str]:
        """Problems of a touch as the campaign declares it, found when it is loaded.

        ``content`` is what the touch gives the channel in the campaign's default locale
        (its ``content:`` with its ``subject`` and ``preheader``). Return whole sentences
        naming the touch; the loader reports them at the touch's line. The default finds
        none: the Content model already checks each field.
        """
        return []

    @classmethod
    def check_rendered(cls, rendered: str) -> list[TemplateFinding]:
        """Problems of one touch template as rendered for a sample partner and contact.

        Called when a campaign is loaded (and by ``preview`` when a render fails), once per
        touch, locale and variant, with ``templates/<template>.<locale><suffix>`` rendered
        in the sandbox (contact values as merge markers). Report what would make
        ``render`` fail or send something broken (email: MJML that does not compile, an
        unknown MJML tag as a warning), each with the offset in ``rendered`` where it is.
        The default finds none.
        """
        return []

    def account_for(self, sender: Mapping[str, str]) -> BaseModel | None:
        """The account to publish with for a partner, when none was connected.

        ``sender`` carries the partner's sender identity (sender_name, sender_email,
        legal_name). Channels that need a partner to connect an account return None.
        """
        return None

    def fetch_metrics(
        self, account: BaseModel, external_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Metrics of published posts (views, clicks...), one dict per external id.

        Optional: the default says the channel does not support it. The engine calls it
        from a periodic job, only when :meth:`supports_metrics` is true.
        """
        raise NotImplementedError(f"the {self.name} channel does not fetch metrics")

    @classmethod
    def supports_metrics(cls) -> bool:
        return cls.fetch_metrics is not Channel.fetch_metrics

    def find_published(
        self,
        draft: Draft,
        account: BaseModel,
        *,
        idempotency_key: str,
        since: datetime | None = None,
    ) -> list[str] | None:
        """Ask the network whether this dispatch's post already exists.

        The engine calls it before publishing again a dispatch whose earlier attempt may
        have reached the network (a crash after the call, a timeout, a dropped
        connection) and has no external ids. ``since`` is when that attempt started
        (UTC); a post made before it is not this dispatch's. Return the post's external
        ids (as ``publish`` would have), ``[]`` when the network certainly holds no such
        post (the lookup read everything since ``since``), or None when the channel
        cannot tell (no lookup, or a bounded lookup that ran out before ``since``).
        Raise the typed errors as ``publish`` does. The default cannot tell: the engine
        then never posts blindly, it fails the dispatch as uncertain and a concierge
        checks the partner's feed.
        """
        return None

    @classmethod
    def supports_lookup(cls) -> bool:
        return cls.find_published is not Channel.find_published

    @abstractmethod
    def render(self, request: RenderRequest) -> Draft:
        """Render a touch into a draft (no network, no side effects)."""

    @abstractmethod
    def validate(self, draft: Draft) -> list[str]:
        """Problems that make the draft unpublishable (lengths, missing links...)."""

    @abstractmethod
    def publish(
        self,
        draft: Draft,
        account: BaseModel,
        *,
        idempotency_key: str,
        recipients: Sequence[Recipient] = (),
    ) -> PublishResult:
        """Publish the draft; for audience channels, to ``recipients`` only.

        ``idempotency_key`` is the same for every attempt of one dispatch: send it to the
        network as its idempotency key or client-side id (an Idempotency-Key header, a
        post name, a client reference), or look it up before posting, so that a retried
        dispatch never makes a second post. Raise TransientError, PermanentError or
        AuthError, chained ``from`` the cause; never put a secret in their messages.
        """
