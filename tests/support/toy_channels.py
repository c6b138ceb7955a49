"""Two tiny HTTP channels for testing the kit: one that keeps the contract, one that breaks it."""

from __future__ import annotations

import logging
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

log = logging.getLogger(__name__)
URL = "https://toy.example/posts"


class ToyAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl
    token: SecretStr


class ToyContent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)


class ToyChannel(Channel):
    """Posts text; maps errors as the contract says; the server dedupes by Idempotency-Key."""

    name: ClassVar[str] = "toy"
    title: ClassVar[str] = "Toy"
    Account: ClassVar[type[BaseModel]] = ToyAccount
    Content: ClassVar[type[BaseModel]] = ToyContent

    def render(self, request: RenderRequest) -> Draft:
        text = request.render_template(request.template)
        return Draft(self.name, request.touch_key, request.locale, request.nonce, {"text": text})

    def validate(self, draft: Draft) -> list[str]:
        text = draft.parts["text"]
        return [f"the text is {len(text)} characters (at most 20)"] if len(text) > 20 else []

    def publish(
        self,
        draft: Draft,
        account: BaseModel,
        *,
        idempotency_key: str,
        recipients: Sequence[Recipient] = (),
    ) -> PublishResult:
        assert isinstance(account, ToyAccount)
        log.debug("posting %s to %s", idempotency_key, account.url)
        headers = {
            "Authorization": f"Bearer {account.token.get_secret_value()}",
            "Idempotency-Key": idempotency_key,
        }
        try:
            response = requests.post(str(account.url), json=draft.parts, headers=headers, timeout=5)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise TransientError(f"toy unreachable: {error}") from error
        if response.status_code == 401:
            raise AuthError("toy refused the token")
        if response.status_code == 429 or response.status_code >= 500:
            retry = response.headers.get("Retry-After")
            raise TransientError(
                f"toy answered {response.status_code}", retry_after=float(retry) if retry else None
            )
        if response.status_code >= 400:
            raise PermanentError(f"toy answered {response.status_code}")
        return PublishResult(external_ids=[response.json()["id"]])


class LeakyAccount(BaseModel):
    url: str
    token: str  # not a SecretStr: shows everywhere


class SloppyChannel(ToyChannel):
    """Everything a reviewer should catch: a plain-text secret, 401 as transient, no dedupe."""

    name: ClassVar[str] = "sloppy"
    Account: ClassVar[type[BaseModel]] = LeakyAccount

    def validate(self, draft: Draft) -> list[str]:
        return []

    def publish(
        self,
        draft: Draft,
        account: BaseModel,
        *,
        idempotency_key: str,
        recipients: Sequence[Recipient] = (),
    ) -> PublishResult:
        log.debug("posting with token %s", account.token)  # type: ignore[attr-defined]
        try:
            response = requests.post(account.url, json=draft.parts, timeout=5)  # type: ignore[attr-defined]
        except requests.Timeout as error:
            raise TransientError("timeout") from error
        if response.status_code >= 400:
            raise TransientError(f"status {response.status_code}")
        return PublishResult(external_ids=[response.json()["id"]])
