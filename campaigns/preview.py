"""Previewing a touch for a partner: exactly what a contact would get, without sending."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from partnercast.campaigns.enrollment import enrollment_spec, find_enrollment
from partnercast.campaigns.models import CampaignVersion, Enrollment
from partnercast.campaigns.rendering import PartnerView, pick_locale, render_touch
from partnercast.campaigns.sample_render import touch_problems
from partnercast.campaigns.spec import TouchSpec
from partnercast.campaigns.template_origin import from_a_template
from partnercast.core.errors import NotFound, TemplateError, UserError
from partnercast.core.settings import Settings
from partnercast.plugins import Channel, ChannelError
from partnercast.plugins.manager import Plugins, default_plugins
from partnercast.plugins.personalization import Personalizer
from partnercast.tenants.models import Contact, Partner, Tenant

SAMPLE_CONTACT = {
    "first_name": "Alex",
    "last_name": "Example",
    "company": "Example GmbH",
    "email": "alex@example.com",
}


@dataclass(frozen=True)
class PreviewResult:
    subject: str
    html: str
    text: str
    locale: str
    problems: list[str]
    channel_title: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    """What the channel says of the draft beyond its parts (a post's weighted length)."""


def render_preview(
    session: Session,
    settings: Settings,
    campaign_key: str,
    partner_external_id: str,
    touch_key: str,
    locale: str | None = None,
    *,
    plugins: Plugins | None = None,
) -> PreviewResult:
    """Render ``touch_key`` for the partner, personalised for a sample contact."""
    enrollment = find_enrollment(session, campaign_key, partner_external_id)
    spec = enrollment_spec(session, enrollment)
    touch = next((t for t in spec.touches if t.key == touch_key), None)
    if touch is None:
        known = ", ".join(t.key for t in spec.touches)
        raise NotFound(
            f"no touch {touch_key!r} in {campaign_key!r} (touches: {known})", where="--touch"
        )
    return preview_touch(session, settings, enrollment, touch, locale, plugins=plugins)


def preview_touch(
    session: Session,
    settings: Settings,
    enrollment: Enrollment,
    touch: TouchSpec,
    locale: str | None = None,
    *,
    customization: Mapping[str, Any] | None = None,
    plugins: Plugins | None = None,
) -> PreviewResult:
    """Render one touch of ``enrollment`` as a sample contact would get it, with
    ``customization`` instead of the saved one when given (the portal's live preview of
    what the partner has typed but not saved)."""
    spec = enrollment_spec(session, enrollment)
    partner = session.get(Partner, enrollment.partner_id)
    tenant = session.get(Tenant, enrollment.tenant_id)
    version = session.get(CampaignVersion, enrollment.version_id)
    if partner is None or tenant is None or version is None:
        raise NotFound("the enrollment's partner or campaign version is missing")
    chosen = locale or pick_locale("", spec, partner.languages)
    if chosen not in spec.locales:
        raise UserError(
            f"locale {chosen!r} is not one of the campaign's ({', '.join(spec.locales)})",
            where="--locale",
        )
    view = PartnerView(
        tenant,
        partner,
        spec,
        version.templates,
        enrollment.segment_key,
        dict(enrollment.customization if customization is None else customization),
    )
    loaded = plugins or default_plugins()
    channel = loaded.channel(touch.channel, settings)
    filters = loaded.template_filters()
    try:
        draft = render_touch(channel, view, touch, chosen, filters)
    except Exception as error:
        raise _render_failure(error, view, touch, chosen, type(channel), filters) from error
    values = {
        **_sample_contact(session, partner),
        "unsubscribe_url": f"{settings.public_base_url}/u/preview",
    }
    fill = Personalizer(draft.nonce).fill
    return PreviewResult(
        subject=fill(draft.parts.get("subject", ""), values, html_escape=False),
        html=fill(draft.preview_html or draft.parts.get("html", ""), values, html_escape=True),
        text=fill(draft.parts.get("text", ""), values, html_escape=False),
        locale=chosen,
        problems=channel.validate(draft),
        channel_title=channel.title,
        meta={key: value for key, value in draft.meta.items() if key != "identity"},
    )


def _render_failure(
    error: Exception,
    view: PartnerView,
    touch: TouchSpec,
    locale: str,
    channel: type[Channel],
    filters: Mapping[str, Callable[..., Any]],
) -> Exception:
    """A failed render as one line naming the template file and line, when it is the
    campaign's (a template or the channel refusing it); any other error as it is."""
    if not isinstance(error, UserError | ChannelError) and not from_a_template(error):
        return error
    if isinstance(error, TemplateError) and error.message.startswith("stopped"):
        return error  # over the render limits: never rendered again outside them
    problems = [
        found
        for found in touch_problems(view, touch, locale, channel, filters=filters)
        if not found.warning
    ]
    if not problems:
        message = error.message if isinstance(error, UserError) else str(error)
        return UserError(message, where=f"touch {touch.key!r} ({locale})")
    first = problems[0]
    where = f"{first.file}:{first.line}" if first.line else first.file
    return UserError(first.message, where=where)


def _sample_contact(session: Session, partner: Partner) -> dict[str, str]:
    contact = session.exec(
        select(Contact).where(Contact.partner_id == partner.id).order_by(col(Contact.id)).limit(1)
    ).first()
    if contact is None:
        return dict(SAMPLE_CONTACT)
    return {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "company": contact.company,
        "email": contact.email,
    }
