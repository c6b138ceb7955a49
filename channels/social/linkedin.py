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
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import requests
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from partnercast.channels.social.post import PublishingChannel, normalized
from partnercast.plugins import AuthError, PermanentError, TransientError
from partnercast.plugins.http import from_headers, json_object

LINKEDIN_API = "https://api.linkedin.com/rest"
LINKEDIN_VERSION = "202605"
MAX_COMMENTARY = 3000
LOOKUP_COUNT = 50
LOOKUP_PAGES = 4
"""At most 200 of the author's newest posts are read; when all of them are newer than an
uncertain attempt and none matches, the lookup cannot tell (never reposts)."""
IDS_PER_STATISTICS = 20
SHARE_STATISTICS = {
    "impression_count": "impressionCount",
    "click_count": "clickCount",
    "like_count": "likeCount",
    "comment_count": "commentCount",
    "share_count": "shareCount",
}
"""Our metric names -> LinkedIn's totalShareStatistics fields."""
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
    # LinkedIn caps a member's shares a day; an account can set its own (rate_per_day).
    rate_limits: ClassVar[dict[str, int]] = {"per_day": 150}
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

    def find_posts(
        self, text: str, account: LinkedInAccount, since: datetime | None
    ) -> list[str] | None:
        """The author's posts since ``since`` whose commentary is ``text`` as posted.

        The Posts API's finder by author (``GET /posts?author=<urn>&q=author``, header
        ``X-RestLi-Method: FINDER``, newest first with ``sortBy=CREATED``, paged with
        ``start`` and ``count``) answers ``{"elements": [{"id", "author", "commentary",
        "createdAt" (epoch ms), ...}], "paging": {...}}``. It needs read access to the
        author's posts (``r_member_social`` or ``r_organization_social``); without it
        LinkedIn answers 403 and the engine cannot tell (the dispatch fails as uncertain).
        LinkedIn takes no client idempotency key, so the text is the marker. Pages are
        read until one reaches a post older than ``since``; None when LOOKUP_PAGES pages
        are all newer and none matched.
        """
        wanted = normalized(little_text(text))
        since_ms = int(since.timestamp() * 1000) if since is not None else 0
        found: list[str] = []
        for page in range(LOOKUP_PAGES):
            query = urlencode(
                {
                    "author": account.author_urn,
                    "q": "author",
                    "start": page * LOOKUP_COUNT,
                    "count": LOOKUP_COUNT,
                    "sortBy": "CREATED",
                }
            )
            response = self._send(account, None, f"posts?{query}", finder=True)
            elements = [
                element
                for element in json_object(response).get("elements") or []
                if isinstance(element, dict)
            ]
            found += [
                str(element["id"])
                for element in elements
                if element.get("id")
                and normalized(str(element.get("commentary", ""))) == wanted
                and int(element.get("createdAt") or 0) >= since_ms
            ]
            older = any(int(e.get("createdAt") or 0) < since_ms for e in elements)
            if older or len(elements) < LOOKUP_COUNT:
                return list(reversed(found))  # oldest first
        return list(reversed(found)) if found else None

    def fetch_metrics(
        self, account: BaseModel, external_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Counts per post (``external_id`` plus what LinkedIn gives), in order.

        An organisation's posts: ``GET /organizationalEntityShareStatistics?q=
        organizationalEntity&organizationalEntity=<org>&shares=List(...)`` whose elements
        carry ``totalShareStatistics`` (impressionCount, clickCount, likeCount,
        commentCount, shareCount; needs ``r_organization_social``). A member's posts:
        ``GET /socialActions/<post urn>`` (``likesSummary.totalLikes``,
        ``commentsSummary.aggregatedTotalComments``); LinkedIn shows members no
        impressions through this API. A post LinkedIn no longer knows keeps its
        ``external_id`` only.
        """
        checked: LinkedInAccount = self.checked_account(account)
        if checked.author_urn.startswith("urn:li:organization:"):
            found = self._share_statistics(checked, external_ids)
        else:
            found = {urn: self._social_actions(checked, urn) for urn in external_ids}
        return [{"external_id": urn, **found.get(urn, {})} for urn in external_ids]

    def _share_statistics(
        self, account: LinkedInAccount, urns: Sequence[str]
    ) -> dict[str, dict[str, int]]:
        found: dict[str, dict[str, int]] = {}
        for start in range(0, len(urns), IDS_PER_STATISTICS):
            chunk = urns[start : start + IDS_PER_STATISTICS]
            shares = [u for u in chunk if u.startswith("urn:li:share:")]
            posts = [u for u in chunk if not u.startswith("urn:li:share:")]
            query = "q=organizationalEntity&organizationalEntity=" + quote(account.author_urn, "")
            if shares:
                query += "&shares=" + _restli_list(shares)
            if posts:
                query += "&ugcPosts=" + _restli_list(posts)
            response = self._send(account, None, f"organizationalEntityShareStatistics?{query}")
            for element in json_object(response).get("elements") or []:
                urn = element.get("share") or element.get("ugcPost")
                stats = element.get("totalShareStatistics") or {}
                if isinstance(urn, str) and isinstance(stats, dict):
                    found[urn] = {
                        key: int(stats.get(name) or 0) for key, name in SHARE_STATISTICS.items()
                    }
        return found

    def _social_actions(self, account: LinkedInAccount, urn: str) -> dict[str, int]:
        try:
            response = self._send(account, None, f"socialActions/{quote(urn, '')}")
        except PermanentError as error:
            if " 404" in str(error).split(":")[0]:
                return {}  # deleted
            raise
        body = json_object(response)
        likes = body.get("likesSummary") or {}
        comments = body.get("commentsSummary") or {}
        return {
            "like_count": int(likes.get("totalLikes") or 0),
            "comment_count": int(
                comments.get("aggregatedTotalComments")
                or comments.get("totalFirstLevelComments")
                or 0
            ),
        }

    def _send(
        self,
        account: LinkedInAccount,
        body: dict[str, Any] | None,
        resource: str = "posts",
        *,
        finder: bool = False,
    ) -> requests.Response:
        """POST ``body`` to ``resource`` (or GET it when ``body`` is None)."""
        headers = {
            "Authorization": f"Bearer {account.access_token.get_secret_value()}",
            "LinkedIn-Version": account.api_version,
            "X-Restli-Protocol-Version": "2.0.0",
        }
        if finder:
            headers["X-RestLi-Method"] = "FINDER"
        url = f"{account.api_base_url}/{resource}"
        try:
            if body is None:
                response = self._session.get(url, headers=headers, timeout=account.timeout_seconds)
            else:
                response = self._session.post(
                    url, json=body, headers=headers, timeout=account.timeout_seconds
                )
        except requests.Timeout as error:
            raise TransientError(
                f"LinkedIn did not answer in {account.timeout_seconds:g} s"
                + (" (the post may or may not have been made)" if body is not None else "")
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
    if status == 429 or status >= 500:  # a 503 may say when too (Retry-After)
        raise TransientError(message, retry_after=_retry_after(response))
    raise PermanentError(message)


def _restli_list(urns: Sequence[str]) -> str:
    """Rest.li 2.0 ``List(a,b)``: each URN percent-encoded, the parentheses and commas not."""
    return "List(" + ",".join(quote(urn, "") for urn in urns) + ")"


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
    return from_headers(response.headers)
