"""What a plugin's pages and commands may ask of the engine: the :class:`Host`.

A plugin's HTTP routes (the ``register_routes`` hook) and its commands reach the engine
only through this small interface, never by importing the engine's modules: the built-in
microsite and email channels are written against it exactly as a third party's would be.
The routes hook receives the host of the application it mounts into; a command opens one
with :func:`open_host` (the engine's database, from the settings, closed afterwards).

What it offers, and nothing more:

* the plugins' own settings (:attr:`Host.config`, the sections ``register_settings``
  declared);
* signed tokens (:meth:`Host.sign`, :meth:`Host.unsign`): the engine's secret key, a
  purpose per use, an age limit when read;
* tenants: :meth:`Host.tenant_id` (a command's ``--tenant``) and :meth:`Host.accept_signed`
  (a webhook signed with the tenant's secret by the Standard Webhooks scheme, its id
  accepted once; :meth:`Host.release_signed` forgets it when it could not be applied);
* live pages: :meth:`Host.find_live_page` finds a partner's approved page for a channel,
  :meth:`Host.render_live_page` renders it in the engine's sandbox,
  :meth:`Host.record_visit` and :meth:`Host.accept_lead` record what visitors do;
* delivery feedback: :meth:`Host.record_delivery_feedback` records parsed bounce and
  complaint reports against the deliveries they are about (and suppresses addresses).

Every method that writes takes ``now``: the HTTP handler or command reads the clock once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from partnercast.plugins.settings import PluginConfig

RECORDED, UNCHANGED, IGNORED, REJECTED = "recorded", "unchanged", "ignored", "rejected"
REPLAY = 409
""":attr:`NotSigned.status` of a message whose id was accepted before: nothing is done
again, and the route answers it as delivered (2xx), so that a sender retrying a call whose
answer it lost stops (Standard Webhooks senders retry anything else)."""
"""The outcomes of one delivery-feedback report."""


class TokenError(Exception):
    """A token is forged, damaged, signed for another purpose, or (``expired``) too old."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("expired" if expired else "not valid")
        self.expired = expired


@dataclass(frozen=True)
class LivePage:
    """One partner's approved page for one campaign: live while the approval holds.

    ``colors`` holds ``primary_color`` and ``secondary_color`` (the partner's over the
    vendor's; unchecked text). ``locales`` are the campaign's, ``default_locale`` the one
    the partner speaks. ``handle`` is the engine's own: pass the page back unchanged.
    """

    channel: str
    tenant_id: int
    tenant_slug: str
    partner_key: str
    partner_name: str
    campaign_key: str
    locales: tuple[str, ...]
    default_locale: str
    colors: Mapping[str, str]
    handle: object = field(default=None, compare=False, repr=False)

    def locale(self, requested: str = "") -> str:
        """``requested`` when the campaign has it, else the partner's locale."""
        return requested if requested in self.locales else self.default_locale


@dataclass(frozen=True)
class RenderedPage:
    """A live page's approved content, rendered (partner text escaped by the sandbox)."""

    title: str
    description: str
    html: str
    locale: str


@dataclass(frozen=True)
class NewLead:
    """What a visitor sent through a page's form, already validated by the plugin."""

    email: str
    name: str
    company: str
    message: str
    consent_text: str
    locale: str
    utm: Mapping[str, str]


class DeliveryReport(Protocol):
    """One recipient's outcome from a bounce or complaint report, as a plugin parsed it.

    ``kind``: ``bounce-hard``, ``bounce-soft``, ``delayed`` or ``complaint``;
    ``message_id``: the Message-ID of the engine's message, with its angle brackets.
    """

    @property
    def kind(self) -> str: ...
    @property
    def recipient(self) -> str: ...
    @property
    def message_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def diagnostic(self) -> str: ...
    @property
    def report_id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def summary(self) -> str: ...


@dataclass(frozen=True)
class SignedPost:
    """A signed webhook message the host accepted: the tenant it comes from, its
    ``webhook-id`` and the sender's ``webhook-timestamp``."""

    tenant_id: int
    message_id: str
    sent_at: datetime


class NotSigned(Exception):
    """A webhook the host refused: ``status`` 401 (unsigned, not valid, not on time) or
    409 (its id was accepted before: a replay), and the one-line ``reason``."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class FeedbackOutcome:
    """What one report did: ``outcome`` is one of RECORDED, UNCHANGED, IGNORED, REJECTED;
    ``retry`` (rejected only): the message is still being sent, try again later."""

    outcome: str
    reason: str
    kind: str = ""
    delivery_id: int | None = None
    retry: bool = False

    @property
    def line(self) -> str:
        return f"{self.outcome}: {self.reason}"


class Host(Protocol):
    """The engine, as a plugin's routes and commands see it."""

    @property
    def public_base_url(self) -> str:
        """The engine's public address (``https://engine.example``, no trailing slash)."""
        ...

    @property
    def config(self) -> PluginConfig:
        """Every plugin's own settings: ``host.config.section("microsite", Model)``."""
        ...

    def sign(self, purpose: str, value: str, *, now: datetime) -> str:
        """A URL-safe token carrying ``value``, signed at ``now`` with the engine's key
        for ``purpose`` (name it after the plugin: ``microsite-form``)."""
        ...

    def unsign(self, purpose: str, token: str, *, max_age_seconds: int, now: datetime) -> str:
        """The value of a token signed for ``purpose`` at most ``max_age_seconds`` before
        ``now``; :class:`TokenError` otherwise."""
        ...

    def tenant_id(self, name: str) -> int:
        """The id of the tenant a slug (or id) names; a one-line user error when none."""
        ...

    def accept_signed(
        self, slug: str, body: bytes, headers: Mapping[str, str], *, source: str, now: datetime
    ) -> SignedPost:
        """The message, when ``body`` and ``headers`` carry the Standard Webhooks signature
        of the tenant ``slug`` names, made within the tolerance of ``now``; its id is then
        accepted for good (``source`` names the endpoint). :class:`NotSigned` otherwise (an
        unknown tenant and a bad signature look the same; an id accepted before is 409)."""
        ...

    def release_signed(self, post: SignedPost) -> None:
        """Forget an accepted id: what the message asked could not be done yet, and its
        sender may send it again (a retry keeps its id)."""
        ...

    def find_live_page(
        self, channel: str, tenant_slug: str, partner_key: str, campaign_key: str
    ) -> LivePage | None:
        """The partner's page for ``channel``'s touch in the campaign, while the partner is
        active and approved the content as is; None for anything else (unknown names,
        no approval, another tenant's partner)."""
        ...

    def render_live_page(self, page: LivePage, locale: str) -> RenderedPage:
        """The page's approved content, rendered by its channel in the engine's sandbox
        (a page has no recipient: contact merge fields come out empty)."""
        ...

    def record_visit(
        self,
        page: LivePage,
        *,
        locale: str,
        utm: Mapping[str, str],
        exported: bool,
        now: datetime,
    ) -> None:
        """One ``visit`` event for the page's partner and campaign (``exported``: a copy
        of the page hosted elsewhere)."""
        ...

    def accept_lead(self, page: LivePage, lead: NewLead, *, now: datetime) -> int:
        """Write the lead (stage ``lead``, attributed to the touch ``utm_content`` names
        and the cycle running at ``now``) and its ``form`` event; the lead's id."""
        ...

    def record_delivery_feedback(
        self, tenant_id: int, reports: Sequence[DeliveryReport], *, now: datetime
    ) -> FeedbackOutcome:
        """Record one report (its recipients' outcomes, most severe first) against the
        tenant's delivery its Message-ID names: a hard bounce or a complaint suppresses
        the address. Idempotent; REJECTED when it matches no delivery of the tenant."""
        ...


HostOpener = Callable[[], AbstractContextManager[Host]]
_opener: list[HostOpener] = []


def provide_host(opener: HostOpener) -> None:
    """Tell :func:`open_host` how to open the engine (the composition root calls it)."""
    _opener[:] = [opener]


@contextmanager
def open_host() -> Iterator[Host]:
    """The engine for a plugin's command: its database opened from the settings, closed
    when the block ends."""
    if not _opener:
        raise RuntimeError("no engine to open: partnercast's CLI provides one (provide_host)")
    with _opener[0]() as host:
        yield host
