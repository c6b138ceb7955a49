"""Publishing to X: every answer the API documents, mapped to the channel's typed errors.

Bodies are shaped as X's API v2 documentation shows them (problem details with title,
detail, type and status; ``errors`` lists for invalid requests).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import responses

from partnercast.channels.social.x import XAccount, XChannel
from partnercast.plugins import AuthError, ChannelError, PermanentError, TransientError

ANSWERED = datetime(2026, 10, 21, 7, 0, tzinfo=UTC)  # the Date of every answer below

TWEETS = "https://api.twitter.com/2/tweets"
TWEET_ID = "1445880548472328192"


def _problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {"title": title, "detail": detail, "type": "about:blank", "status": status}


@dataclass(frozen=True)
class Row:
    status: int = 201
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    exception: Exception | None = None
    error: type[ChannelError] | None = None
    message: str = ""
    retry_after: tuple[float, float] | None = None  # accepted range


ROWS = [
    pytest.param(Row(body={"data": {"id": TWEET_ID, "text": "..."}}), id="201-created"),
    pytest.param(
        Row(
            400,
            {
                "errors": [{"parameters": {"text": []}, "message": "The text is too long."}],
                "title": "Invalid Request",
                "detail": "One or more parameters to your request was invalid.",
                "type": "https://api.twitter.com/2/problems/invalid-request",
            },
            error=PermanentError,
            message="The text is too long.",
        ),
        id="400-invalid-request",
    ),
    pytest.param(
        Row(401, _problem(401, "Unauthorized", "Unauthorized"), error=AuthError),
        id="401-unauthorized",
    ),
    pytest.param(
        Row(
            403,
            _problem(
                403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
            ),
            error=PermanentError,
            message="duplicate content",
        ),
        id="403-duplicate-content",
    ),
    pytest.param(
        Row(
            404, _problem(404, "Not Found Error", "Could not find resource."), error=PermanentError
        ),
        id="404-not-found",
    ),
    pytest.param(
        Row(
            422,
            _problem(422, "Unprocessable Entity", "The request could not be processed."),
            error=PermanentError,
            message="could not be processed",
        ),
        id="422-unprocessable",
    ),
    pytest.param(
        Row(
            429,
            _problem(429, "Too Many Requests", "Too Many Requests"),
            {"x-rate-limit-limit": "200", "x-rate-limit-remaining": "0"},
            error=TransientError,
            retry_after=(120.0, 120.0),  # x-rate-limit-reset: the answer's Date + 120 s
        ),
        id="429-rate-limit-reset",
    ),
    pytest.param(
        Row(
            429,
            _problem(429, "Too Many Requests", "Too Many Requests"),
            {"Retry-After": "30"},
            error=TransientError,
            retry_after=(30.0, 30.0),
        ),
        id="429-retry-after",
    ),
    pytest.param(
        Row(
            500,
            _problem(500, "Internal Server Error", "Internal Server Error"),
            error=TransientError,
        ),
        id="500",
    ),
    pytest.param(
        Row(503, _problem(503, "Service Unavailable", "Service Unavailable"), error=TransientError),
        id="503",
    ),
    pytest.param(
        Row(
            exception=requests.exceptions.ReadTimeout("read timed out"),
            error=TransientError,
            message="may or may not have been made",
        ),
        id="timeout",
    ),
    pytest.param(
        Row(
            exception=requests.exceptions.ConnectionError("Connection aborted."),
            error=TransientError,
            message="cannot reach X",
        ),
        id="connection-dropped",
    ),
]


def _register(mock: responses.RequestsMock, row: Row) -> None:
    if row.exception is not None:
        mock.add(responses.POST, TWEETS, body=row.exception)
        return
    headers = {"Date": format_datetime(ANSWERED, usegmt=True), **row.headers}
    if row.status == 429 and "Retry-After" not in headers:  # on X's clock, its Date's
        headers["x-rate-limit-reset"] = str(int(ANSWERED.timestamp()) + 120)
    mock.add(responses.POST, TWEETS, status=row.status, json=row.body, headers=headers)


@pytest.mark.parametrize("row", ROWS)
def test_publish_outcome(row: Row, make_request, x_account: XAccount) -> None:
    channel = XChannel()
    draft = channel.render(make_request())
    with responses.RequestsMock() as mock:
        _register(mock, row)
        if row.error is None:
            result = channel.publish(draft, x_account, idempotency_key="d-1")
            assert result.external_ids == [TWEET_ID]
            sent = mock.calls[0].request
            assert json.loads(sent.body) == {"text": draft.parts["text"]}
            assert sent.headers["Authorization"].startswith("OAuth ")
            return
        with pytest.raises(row.error) as raised:
            channel.publish(draft, x_account, idempotency_key="d-1")
    error = raised.value
    assert error.__cause__ is not None  # chained to the tweepy / requests exception
    assert row.message in str(error)
    if row.retry_after is not None:
        low, high = row.retry_after
        assert error.retry_after is not None and low <= error.retry_after <= high


def test_the_same_key_twice_posts_once(make_request, x_account: XAccount) -> None:
    channel = XChannel()
    draft = channel.render(make_request())
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, TWEETS, status=201, json={"data": {"id": TWEET_ID, "text": "."}})
        first = channel.publish(draft, x_account, idempotency_key="d-7")
        second = channel.publish(draft, x_account, idempotency_key="d-7")
        assert len(mock.calls) == 1
    assert first.external_ids == second.external_ids == [TWEET_ID]


def test_an_invalid_draft_is_never_sent(make_request, x_account: XAccount) -> None:
    channel = XChannel()
    draft = channel.render(make_request("x" * 300))
    with responses.RequestsMock(), pytest.raises(PermanentError, match="X allows 280"):
        channel.publish(draft, x_account, idempotency_key="d-2")


def test_a_custom_base_url_receives_the_calls(make_request, x_account: XAccount) -> None:
    settings = {**x_account.model_dump(), "api_base_url": "http://x.standin.test:8080/"}
    account = XAccount.model_validate(settings)
    channel = XChannel()
    with responses.RequestsMock() as mock:
        mock.add(
            responses.POST,
            "http://x.standin.test:8080/2/tweets",
            status=201,
            json={"data": {"id": "7", "text": "."}},
        )
        draft = channel.render(make_request())
        result = channel.publish(draft, account, idempotency_key="d-3")
    assert result.external_ids == ["7"]


def test_fetch_metrics_reads_public_metrics(x_account: XAccount) -> None:
    metrics = {
        "retweet_count": 2,
        "reply_count": 1,
        "like_count": 9,
        "quote_count": 0,
        "bookmark_count": 1,
        "impression_count": 340,
    }
    with responses.RequestsMock() as mock:
        mock.add(
            responses.GET,
            TWEETS,
            json={
                "data": [
                    {
                        "id": TWEET_ID,
                        "text": ".",
                        "edit_history_tweet_ids": [TWEET_ID],
                        "public_metrics": metrics,
                    }
                ]
            },
        )
        found = XChannel().fetch_metrics(x_account, [TWEET_ID, "404"])
        query = mock.calls[0].request.url
    assert found == [{"external_id": TWEET_ID, **metrics}, {"external_id": "404"}]
    assert "tweet.fields=public_metrics" in query and f"ids={TWEET_ID}" in query
