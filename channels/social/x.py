"""The ``x`` channel: a post on X (formerly Twitter), through tweepy's API v2 client.

Posts with OAuth 1.0a user context (``tweepy.Client(consumer_key, consumer_secret,
access_token, access_token_secret).create_tweet(text=...)``), measured with X's own
weighted length (twitter-text: every URL counts 23, CJK characters and emoji count 2).
tweepy sends every request to ``https://api.twitter.com`` and sets no timeout; the
client's session here sends them to the account's ``api_base_url`` instead (a local
stand-in, say) with the account's timeout.
"""

from __future__ import annotations

import html
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar

import requests
import tweepy
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from partnercast.channels.social.logs import secrets_redacted
from partnercast.channels.social.post import PublishingChannel, normalized
from partnercast.plugins import AuthError, PermanentError, TransientError
from partnercast.plugins.http import from_headers, server_time

TWEEPY_HOST = "https://api.twitter.com"
"""The host tweepy.Client hard-codes in ``BaseClient.request``."""
MAX_WEIGHTED_LENGTH = 280
IDS_PER_LOOKUP = 100
TIMELINE_PAGE_SIZE = 100
TIMELINE_PAGES = 3
"""At most 300 of the account's posts since an uncertain attempt are read; past that,
without a match, the lookup cannot tell (the dispatch fails as uncertain, never reposts)."""


class XAccount(BaseModel):
    """A partner's X account, connected with OAuth 1.0a (user context, write access)."""

    model_config = ConfigDict(extra="forbid")

    consumer_key: str = Field(min_length=1)
    """The app's API key (public: it identifies the app in every signed request)."""
    consumer_secret: SecretStr
    access_token: SecretStr
    access_token_secret: SecretStr
    api_base_url: str = TWEEPY_HOST
    """Where API v2 lives, without ``/2``; set it to a stand-in's URL to post locally."""
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("api_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL such as https://api.twitter.com")
        return value.rstrip("/")

    def secret_values(self) -> list[str]:
        secrets = (self.consumer_secret, self.access_token, self.access_token_secret)
        return [secret.get_secret_value() for secret in secrets]


class _ApiSession(requests.Session):
    """tweepy's session, re-pointed at another API host and given a timeout.

    The URL is rewritten before requests applies the OAuth signature, so the signature
    covers the URL actually called.
    """

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__()
        self.base_url = base_url
        self.timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if isinstance(url, str) and url.startswith(TWEEPY_HOST + "/"):
            url = self.base_url + url[len(TWEEPY_HOST) :]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


def _client(account: XAccount) -> tweepy.Client:
    client = tweepy.Client(
        consumer_key=account.consumer_key,
        consumer_secret=account.consumer_secret.get_secret_value(),
        access_token=account.access_token.get_secret_value(),
        access_token_secret=account.access_token_secret.get_secret_value(),
    )
    client.session = _ApiSession(account.api_base_url, account.timeout_seconds)
    return client


class XChannel(PublishingChannel):
    """A post on the partner's own X account."""

    name: ClassVar[str] = "x"
    title: ClassVar[str] = "X (formerly Twitter)"
    # X caps an account's posts (a few hundred a day); an account can set its own (rate_per_day).
    rate_limits: ClassVar[dict[str, int]] = {"per_day": 300}
    network: ClassVar[str] = "x"
    network_title: ClassVar[str] = "X"
    max_length: ClassVar[int] = MAX_WEIGHTED_LENGTH
    Account: ClassVar[type[BaseModel]] = XAccount

    def length(self, text: str) -> int:
        from twitter_text import parse_tweet  # its regexes cost 0.4 s a worker start

        return int(parse_tweet(text).weightedLength)

    def text_problems(self, text: str) -> list[str]:
        from twitter_text import parse_tweet

        result = parse_tweet(text)
        if not result.valid and result.weightedLength <= MAX_WEIGHTED_LENGTH:
            return ["the post contains characters X does not accept"]
        return []

    def post(self, text: str, account: XAccount) -> str:
        with _x_errors("publishing", account):
            response = _client(account).create_tweet(text=text, user_auth=True)
        data = response.data if isinstance(response.data, Mapping) else {}
        if not data.get("id"):
            raise PermanentError(f"X answered without a post id: {response!r}")
        return str(data["id"])

    def find_posts(self, text: str, account: XAccount, since: datetime | None) -> list[str] | None:
        """The account's posts since ``since`` whose text, links expanded, is ``text``.

        Reads ``GET /2/users/me`` then ``GET /2/users/:id/tweets`` (the user's timeline,
        newest first, ``start_time``-bounded, retweets and replies excluded). X answers a
        post's ``text`` with every link shortened to ``https://t.co/...`` and ``&<>``
        HTML-escaped; ``entities.urls`` gives each short link's ``expanded_url``. X takes
        no client idempotency key, so the text is the marker. None when nothing matched
        in TIMELINE_PAGES pages and X still had more posts since ``since``.
        """
        client = _client(account)
        wanted = normalized(text)
        found: list[str] = []
        with _x_errors("looking up recent posts", account):
            me = client.get_me(user_auth=True)
            user_id = me.data.id if me.data is not None else None
            if user_id is None:
                raise PermanentError("X did not say which user the account is")
            token = None
            for _page in range(TIMELINE_PAGES):
                response = client.get_users_tweets(
                    user_id,
                    start_time=since,
                    max_results=TIMELINE_PAGE_SIZE,
                    exclude=["retweets", "replies"],
                    tweet_fields=["created_at", "entities"],
                    pagination_token=token,
                    user_auth=True,
                )
                for tweet in response.data or []:
                    if normalized(expanded_text(tweet.text, tweet.entities)) == wanted:
                        found.append(str(tweet.id))
                token = (response.meta or {}).get("next_token")
                if not token:
                    break
        if token and not found:
            return None  # more posts since the attempt than a lookup reads
        return list(reversed(found))  # oldest first

    def fetch_metrics(
        self, account: BaseModel, external_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Public metrics (impressions, likes, reposts, replies...), one dict per id, in order.

        Each dict holds ``external_id`` and X's ``public_metrics`` counts; a post X no
        longer returns (deleted) has its ``external_id`` only.
        """
        checked = self.checked_account(account)
        client = _client(checked)
        found: dict[str, dict[str, int]] = {}
        for start in range(0, len(external_ids), IDS_PER_LOOKUP):
            ids = list(external_ids[start : start + IDS_PER_LOOKUP])
            with _x_errors("reading metrics", checked):
                response = client.get_tweets(ids, tweet_fields=["public_metrics"], user_auth=True)
            for tweet in response.data or []:
                found[str(tweet.id)] = dict(tweet.public_metrics or {})
        return [{"external_id": i, **found.get(i, {})} for i in external_ids]


@contextmanager
def _x_errors(doing: str, account: XAccount) -> Iterator[None]:
    """tweepy's and requests' exceptions as the channel's typed errors."""
    with secrets_redacted(account.secret_values()):
        try:
            yield
        except tweepy.errors.Unauthorized as error:
            raise AuthError(f"X refused the account's credentials: {_message(error)}") from error
        except tweepy.errors.TooManyRequests as error:
            raise TransientError(
                f"X rate limit reached while {doing}: {_message(error)}",
                retry_after=_retry_after(error),
            ) from error
        except tweepy.errors.TwitterServerError as error:  # 503 may say when (Retry-After)
            raise TransientError(
                f"X failed while {doing}: {_message(error)}",
                retry_after=from_headers(error.response.headers),
            ) from error
        except tweepy.errors.HTTPException as error:
            raise PermanentError(f"X refused {doing}: {_message(error)}") from error
        except requests.Timeout as error:
            raise TransientError(
                f"X did not answer in {account.timeout_seconds:g} s while {doing} "
                "(the post may or may not have been made)"
            ) from error
        except requests.ConnectionError as error:
            raise TransientError(f"cannot reach X while {doing}: {error}") from error
        except tweepy.errors.TweepyException as error:
            raise PermanentError(f"X client error while {doing}: {error}") from error


def expanded_text(text: str, entities: Mapping[str, Any] | None) -> str:
    """A post's text as written: t.co links expanded, X's HTML escapes undone."""
    text = html.unescape(text)
    for url in (entities or {}).get("urls") or []:
        short, expanded = url.get("url"), url.get("expanded_url")
        if isinstance(short, str) and isinstance(expanded, str) and short:
            text = text.replace(short, expanded)
    return text


def _message(error: tweepy.errors.HTTPException) -> str:
    """tweepy's "403 Forbidden\\nYou are not allowed..." on one line."""
    return "; ".join(line for line in str(error).splitlines() if line)


def _retry_after(error: tweepy.errors.TooManyRequests) -> float | None:
    """Seconds to wait: Retry-After if X sends it, else until x-rate-limit-reset (epoch
    seconds on X's clock, counted from the answer's own Date: never the local clock)."""
    headers = error.response.headers
    seconds = from_headers(headers)
    if seconds is not None:
        return seconds
    answered = server_time(headers)
    reset: int | None = error.reset_time
    if reset is not None and answered is not None:
        return max(1.0, reset - answered.timestamp())
    return None
