"""The webhook channel: a touch as signed JSON, POSTed to the partner's own endpoint."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import ClassVar

import requests
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, SecretStr

from partnercast.plugins import (
    AuthError,
    Channel,
    Draft,
    PermanentError,
    PublishResult,
    Recipient,
    RenderRequest,
    TransientError,
)

BODY_MAX = 10_000
SIGNATURE_HEADER = "X-Partnercast-Signature"


class WebhookAccount(BaseModel):
    """Where a partner receives touches, and the shared secret that signs them."""

    model_config = ConfigDict(extra="forbid")

    url: HttpUrl
    secret: SecretStr = Field(min_length=16)
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)


class WebhookContent(BaseModel):
    """What a webhook touch declares in campaign.yaml besides its template."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)


def signature(secret: SecretStr, body: bytes) -> str:
    """The value of the signature header for ``body`` (what a receiver recomputes)."""
    digest = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookChannel(Channel):
    name: ClassVar[str] = "webhook"
    title: ClassVar[str] = "Webhook"
    template_suffix: ClassVar[str] = ".txt"
    Account: ClassVar[type[BaseModel]] = WebhookAccount
    Content: ClassVar[type[BaseModel]] = WebhookContent

    def render(self, request: RenderRequest) -> Draft:
        content = WebhookContent.model_validate(dict(request.content))
        title = " ".join(request.render_string(content.title, html=False).split())
        body = request.render_template(request.template).strip()
        return Draft(
            channel=self.name,
            touch_key=request.touch_key,
            locale=request.locale,
            nonce=request.nonce,
            parts={"title": title, "body": body},
            preview_html="",
        )

    def validate(self, draft: Draft) -> list[str]:
        problems = []
        if not draft.parts.get("title"):
            problems.append("the title is empty")
        if not draft.parts.get("body"):
            problems.append("the body is empty")
        elif len(draft.parts["body"]) > BODY_MAX:
            problems.append(
                f"the body is {len(draft.parts['body'])} characters (at most {BODY_MAX})"
            )
        return problems

    def publish(
        self,
        draft: Draft,
        account: BaseModel,
        *,
        idempotency_key: str,
        recipients: Sequence[Recipient] = (),
    ) -> PublishResult:
        if not isinstance(account, WebhookAccount):
            raise PermanentError("the webhook channel needs a WebhookAccount")
        body = json.dumps(
            {
                "id": idempotency_key,
                "touch": draft.touch_key,
                "locale": draft.locale,
                **draft.parts,
            },
            sort_keys=True,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,  # the receiver drops a retried duplicate
            SIGNATURE_HEADER: signature(account.secret, body),
        }
        try:
            response = requests.post(
                str(account.url), data=body, headers=headers, timeout=account.timeout_seconds
            )
        except (requests.Timeout, requests.ConnectionError) as error:
            raise TransientError(f"webhook unreachable: {type(error).__name__}") from error
        return PublishResult(external_ids=[_external_id(response, idempotency_key)])


def _external_id(response: requests.Response, idempotency_key: str) -> str:
    status = response.status_code
    if status == 401:
        raise AuthError("the webhook refused the signature (401): reconnect with the new secret")
    if status == 429 or status >= 500:
        raise TransientError(f"webhook answered {status}", retry_after=_retry_after(response))
    if status >= 400:
        raise PermanentError(f"webhook answered {status}")
    try:
        return str(response.json().get("id") or idempotency_key)
    except ValueError:  # a receiver may answer 204 or plain text: our key names the post
        return idempotency_key


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None
