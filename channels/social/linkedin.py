"""The ``linkedin`` channel: a post on LinkedIn through its versioned Posts API.

``POST {api_base_url}/posts`` with the partner's OAuth 2.0 bearer token, the
``LinkedIn-Version`` header (YYYYMM) and ``X-Restli-Protocol-Version: 2.0.0``; LinkedIn
answers 201 with the new post's URN in the ``x-restli-id`` header. The commentary is in
LinkedIn's "little" text format, where ``\\ | { } @ [ ] ( ) < > # * _ ~`` are markup:
unescaped, LinkedIn silently cuts the post at the first one. Links and #hashtags are
left as they are, so that they stay clickable.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from partnercast.channels.social.post import PublishingChannel
from partnercast.plugins import AuthError, PermanentError, TransientError

LINKEDIN_API = "https://api.linkedin.com/rest"
LINKEDIN_VERSION = "202605"
MAX_COMMENTARY = 3000
_RESERVED = re.compile(r"[\\|{}@\[\]()<>#*_~]")
# A link or a hashtag stays as written; everything else has its markup characters escaped.
_KEEP = re.compile(r"https?://[^\s<>\"']+|(?<![\w#])#\w+")


class LinkedInAccount(BaseModel):
    """A partner's LinkedIn member or organisation, connected with OAuth 2.0."""

    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr
    """Needs the ``w_member_social`` (or ``w_organization_social``) scope."""
    author_urn: str = Field(pattern=r"^urn:li:(person|organization):[A-Za-z0-9_-]+$")
    """Who posts: ``urn:li:person:...`` or ``urn:li:organization:...``."""
    api_base_url: str = LINKEDIN_API
    api_version: str = Field(default=LINKEDIN_VERSION, pattern=r"^\d{6}$")
    """The ``LinkedIn-Version`` header; LinkedIn keeps each monthly version about a year."""
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("api_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"must be an http(s) URL such as {LINKEDIN_API}")
        return value.rstrip("/")


def little_text(text: str) -> str:
    """``text`` as LinkedIn commentary: markup characters escaped, links and tags kept."""
    pieces: list[str] = []
    position = 0
    for match in _KEEP.finditer(text):
        pieces.append(_RESERVED.sub(r"\\\g<0>", text[position : match.start()]))
        pieces.append(match.group(0))
        position = match.end()
    pieces.append(_RESERVED.sub(r"\\\g<0>", text[position:]))
    return "".join(pieces)


def utf16_length(text: str) -> int:
    """Characters as LinkedIn counts them (UTF-16 code units: an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


class LinkedInChannel(PublishingChannel):
    """A post on the partner's LinkedIn profile or page."""

    name: ClassVar[str] = "linkedin"
    title: ClassVar[str] = "LinkedIn"
    network: ClassVar[str] = "linkedin"
    network_title: ClassVar[str] = "LinkedIn"
    max_length: ClassVar[int] = MAX_COMMENTARY
    Account: ClassVar[type[BaseModel]] = LinkedInAccount

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        self._session = requests.Session()

    def length(self, text: str) -> int:
        return utf16_length(text)

    def post(self, text: str, account: LinkedInAccount) -> str:
        body = {
            "author": account.author_urn,
            "commentary": little_text(text),
            "visibility": "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": False,
        }
        response = self._send(account, body)
        post_urn = response.headers.get("x-restli-id", "")
        if not post_urn:
            raise PermanentError(
                f"LinkedIn answered {response.status_code} without a post id (x-restli-id)"
            )
        return post_urn

    def _send(self, account: LinkedInAccount, body: dict[str, Any]) -> requests.Response:
        headers = {
            "Authorization": f"Bearer {account.access_token.get_secret_value()}",
            "LinkedIn-Version": account.api_version,
            "X-Restli-Protocol-Version": "2.0.0",
        }
        url = f"{account.api_base_url}/posts"
        try:
            response = self._session.post(
                url, json=body, headers=headers, timeout=account.timeout_seconds
            )
        except requests.Timeout as error:
            raise TransientError(
                f"LinkedIn did not answer in {account.timeout_seconds:g} s "
                "(the post may or may not have been made)"
            ) from error
        except requests.ConnectionError as error:
            raise TransientError(f"cannot reach LinkedIn: {error}") from error
        _raise_for_status(response)
        return response

    def close(self) -> None:
        self._session.close()


def _raise_for_status(response: requests.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    message = f"LinkedIn answered {status}: {_message(response)}"
    if status == 401:
        raise AuthError(message)
    if status == 429:
        raise TransientError(message, retry_after=_retry_after(response))
    if status >= 500:
        raise TransientError(message)
    raise PermanentError(message)


def _message(response: requests.Response) -> str:
    """LinkedIn's error body (``{"status", "serviceErrorCode", "code", "message"}``)."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or "no message"
    if not isinstance(body, dict):
        return response.reason or "no message"
    code, message = body.get("code"), body.get("message")
    text = f"{code}: {message}" if code and message else str(message or code or response.reason)
    return " ".join(text.split())


def _retry_after(response: requests.Response) -> float | None:
    header = response.headers.get("Retry-After", "").strip()
    return float(header) if header.isdigit() else None
