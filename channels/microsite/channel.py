"""The microsite channel: renders a partner's landing page and names its stable URL.

Where the page lives: nowhere as stored HTML. The engine's web layer renders it on each
request from the enrollment's *approved* content (pinned campaign version + approved
customisation), so a page disappears the moment the approval is voided or declined, and
nothing unapproved can ever be served. ``publish`` therefore has nothing to upload: it
returns the page's stable URL, which the dispatch records as its external id. Publishing
twice gives the same URL and changes nothing, so it is idempotent by construction.

Templates are ``templates/<name>.<locale>.html``: an HTML fragment (the page's body)
rendered in the engine's sandbox. The web layer wraps it in the page shell (head, the
stylesheet, security headers) and puts the lead form where the template writes
``<!-- partnercast:lead-form -->`` (or after the body when it does not).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from partnercast.channels.microsite.urls import page_path, page_url
from partnercast.plugins import (
    Channel,
    Draft,
    PermanentError,
    PublishResult,
    Recipient,
    RenderRequest,
)

FORM_SLOT = "<!-- partnercast:lead-form -->"
TITLE_MAX = 120
_SCRIPT = re.compile(r"<\s*script\b|\son[a-z]+\s*=", re.IGNORECASE)


class MicrositeAccount(BaseModel):
    """Where the engine serves pages: its public base URL. No secrets."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")


class MicrositeContent(BaseModel):
    """What a microsite touch declares in campaign.yaml besides its template."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(default="{{ campaign.name }} | {{ brand.name }}", min_length=1)
    """The page title (a Jinja string, like an email subject)."""
    description: str = ""
    """The meta description search engines and link previews show."""


class MicrositeChannel(Channel):
    """A landing page per partner and campaign, served by the engine."""

    name: ClassVar[str] = "microsite"
    title: ClassVar[str] = "Microsite"
    template_suffix: ClassVar[str] = ".html"
    audience: ClassVar[bool] = False
    Account: ClassVar[type[BaseModel]] = MicrositeAccount
    Content: ClassVar[type[BaseModel]] = MicrositeContent

    def render(self, request: RenderRequest) -> Draft:
        content = MicrositeContent.model_validate(dict(request.content))
        body = request.render_template(request.template)
        title = " ".join(request.render_string(content.title, html=False).split())
        description = " ".join(request.render_string(content.description, html=False).split())
        path = _path(request)
        return Draft(
            channel=self.name,
            touch_key=request.touch_key,
            locale=request.locale,
            nonce=request.nonce,
            parts={"html": body, "title": title, "description": description, "path": path},
            preview_html=body,
        )

    def validate(self, draft: Draft) -> list[str]:
        problems: list[str] = []
        title = draft.parts.get("title", "")
        if not title:
            problems.append("the page has no title")
        elif len(title) > TITLE_MAX:
            problems.append(f"the page title is {len(title)} characters (at most {TITLE_MAX})")
        if not draft.parts.get("html", "").strip():
            problems.append("the page is empty")
        if _SCRIPT.search(draft.parts.get("html", "")):
            problems.append(
                "landing pages run no scripts (the Content-Security-Policy blocks them): "
                "remove <script> and on...= attributes"
            )
        if not draft.parts.get("path"):
            problems.append("the engine did not say which tenant, partner and campaign this is")
        return problems

    def account_for(self, sender: Mapping[str, str]) -> BaseModel | None:
        base_url = getattr(self.settings, "public_base_url", "")
        return MicrositeAccount(base_url=base_url) if base_url else None

    def publish(
        self,
        draft: Draft,
        account: BaseModel,
        *,
        idempotency_key: str,
        recipients: Sequence[Recipient] = (),
    ) -> PublishResult:
        if not isinstance(account, MicrositeAccount):
            raise PermanentError("the microsite channel needs a MicrositeAccount")
        path = draft.parts.get("path", "")
        if not path:
            raise PermanentError("the page has no address (tenant, partner or campaign missing)")
        return PublishResult(external_ids=[page_url(account.base_url, path)])

    def find_published(
        self,
        draft: Draft,
        account: BaseModel,
        *,
        idempotency_key: str,
        since: datetime | None = None,
    ) -> list[str] | None:
        """Publishing posts nothing anywhere (the engine serves the page): the lookup is
        the publication itself, certain and repeatable."""
        return self.publish(draft, account, idempotency_key=idempotency_key).external_ids


def _path(request: RenderRequest) -> str:
    keys: dict[str, Any] = {
        "tenant": request.tenant_key,
        "partner": request.partner_external_id,
        "campaign": request.campaign_key,
    }
    if not all(keys.values()):
        return ""
    return page_path(keys["tenant"], keys["partner"], keys["campaign"])


__all__ = ["FORM_SLOT", "MicrositeAccount", "MicrositeChannel", "MicrositeContent"]
