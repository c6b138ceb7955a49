"""The engine behind :class:`partnercast.plugins.host.Host`: what plugins' pages and
commands may ask of it, implemented by the engine's own layers.

:class:`EngineHost` is handed to the ``register_routes`` hook by the application factory
(:mod:`partnercast.web.app`) and opened for plugins' commands by :func:`opened_host`,
which the composition root provides to :func:`partnercast.plugins.host.open_host`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy.engine import Engine

from partnercast.campaigns import delivery_feedback
from partnercast.core.cli import open_engine
from partnercast.core.settings import Settings, load_settings
from partnercast.core.signing import InvalidToken, sign, unsign
from partnercast.funnel.crm_secret import SignedMessage
from partnercast.plugins.host import (
    DeliveryReport,
    FeedbackOutcome,
    Host,
    LivePage,
    NewLead,
    NotSigned,
    RenderedPage,
    SignedPost,
    TokenError,
)
from partnercast.plugins.manager import Plugins, default_plugins
from partnercast.plugins.settings import PluginConfig
from partnercast.tenants.scope import resolve_tenant
from partnercast.web import landing, signed_posts


class EngineHost:
    """One engine (database, settings, plugins) behind the plugins' :class:`Host`."""

    def __init__(self, engine: Engine, settings: Settings, plugins: Plugins) -> None:
        self.engine = engine
        self.settings = settings
        self.plugins = plugins
        self._config = plugins.config(settings)  # a bad plugin setting: one error, at once

    @property
    def public_base_url(self) -> str:
        return self.settings.public_base_url.rstrip("/")

    @property
    def config(self) -> PluginConfig:
        return self._config

    def sign(self, purpose: str, value: str, *, now: datetime) -> str:
        return sign(self.settings, purpose, value, now=now)

    def unsign(self, purpose: str, token: str, *, max_age_seconds: int, now: datetime) -> str:
        try:
            value = unsign(self.settings, purpose, token, max_age_seconds=max_age_seconds, now=now)
        except InvalidToken as error:
            raise TokenError(expired="expired" in error.message) from error
        if not isinstance(value, str):
            raise TokenError()
        return value

    def tenant_id(self, name: str) -> int:
        return resolve_tenant(self.engine, name)

    def accept_signed(
        self, slug: str, body: bytes, headers: Mapping[str, str], *, source: str, now: datetime
    ) -> SignedPost:
        try:
            post = signed_posts.accept(
                self.engine, self.settings, slug, body, headers, source=source, now=now
            )
        except signed_posts.Refused as refused:
            raise NotSigned(refused.reason, refused.status) from refused
        message = post.message
        return SignedPost(post.tenant_id, message.message_id, message.sent_at)

    def release_signed(self, post: SignedPost) -> None:
        message = SignedMessage(post.message_id, post.sent_at)
        signed_posts.release(self.engine, signed_posts.SignedPost(post.tenant_id, message))

    def find_live_page(
        self, channel: str, tenant_slug: str, partner_key: str, campaign_key: str
    ) -> LivePage | None:
        found = landing.find_live_page(self.engine, channel, tenant_slug, partner_key, campaign_key)
        if found is None:
            return None
        return LivePage(
            channel=channel,
            tenant_id=found.tenant_id,
            tenant_slug=found.tenant.slug,
            partner_key=found.partner.external_id,
            partner_name=found.partner.name,
            campaign_key=found.campaign.key,
            locales=tuple(found.spec.locales),
            default_locale=landing.partner_locale(found),
            colors=landing.brand_colors(found),
            handle=found,
        )

    def render_live_page(self, page: LivePage, locale: str) -> RenderedPage:
        return landing.render_page(_live(page), self.plugins, self.settings, locale)

    def record_visit(
        self,
        page: LivePage,
        *,
        locale: str,
        utm: Mapping[str, str],
        exported: bool,
        now: datetime,
    ) -> None:
        landing.record_visit(
            self.engine, _live(page), locale=locale, utm=dict(utm), exported=exported, now=now
        )

    def accept_lead(self, page: LivePage, lead: NewLead, *, now: datetime) -> int:
        return landing.accept_lead(self.engine, _live(page), lead, now=now)

    def record_delivery_feedback(
        self, tenant_id: int, reports: Sequence[DeliveryReport], *, now: datetime
    ) -> FeedbackOutcome:
        return delivery_feedback.record_reports(self.engine, tenant_id, reports, now=now)


def _live(page: LivePage) -> landing.LivePage:
    """The engine's own page behind a plugin's :class:`LivePage`."""
    if not isinstance(page.handle, landing.LivePage):
        raise TypeError("a LivePage the engine did not find")
    return page.handle


@contextmanager
def opened_host() -> Iterator[Host]:
    """The engine for a plugin's command: settings loaded, database opened (and closed)."""
    settings = load_settings()
    engine = open_engine(settings)
    try:
        yield EngineHost(engine, settings, default_plugins())
    finally:
        engine.dispose()
