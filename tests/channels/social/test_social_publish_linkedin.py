"""Publishing to LinkedIn's Posts API: documented answers mapped to the typed errors.

Error bodies are shaped as LinkedIn's documentation shows them
(``{"status", "serviceErrorCode", "code", "message"}``; 422 carries only message and status).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import responses

from partnercast.channels.social.linkedin import LinkedInAccount, LinkedInChannel, little_text
from partnercast.plugins import AuthError, ChannelError, PermanentError, TransientError

POSTS = "https://api.linkedin.com/rest/posts"
POST_URN = "urn:li:share:6844785523593134080"


def _error(status: int, code: str, message: str, service: int = 0) -> dict[str, Any]:
    return {"status": status, "serviceErrorCode": service, "code": code, "message": message}


@dataclass(frozen=True)
class Row:
    status: int = 201
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    exception: Exception | None = None
    error: type[ChannelError] | None = None
    message: str = ""
    retry_after: float | None = None


ROWS = [
    pytest.param(Row(headers={"x-restli-id": POST_URN}), id="201-created"),
    pytest.param(
        Row(
            400,
            _error(400, "ILLEGAL_ARGUMENT", "Request body could not be converted to data map"),
            error=PermanentError,
            message="ILLEGAL_ARGUMENT: Request body could not be converted",
        ),
        id="400-illegal-argument",
    ),
    pytest.param(
        Row(
            401, _error(401, "INVALID_ACCESS_TOKEN", "Invalid access token", 65600), error=AuthError
        ),
        id="401-invalid-token",
    ),
    pytest.param(
        Row(
            403,
            _error(
                403,
                "ACCESS_DENIED",
                "Not enough permissions to access: partnerApiPostsExternal.CREATE.20260501",
                100,
            ),
            error=PermanentError,
            message="Not enough permissions",
        ),
        id="403-access-denied",
    ),
    pytest.param(
        Row(404, _error(404, "NOT_FOUND", "Not Found"), error=PermanentError), id="404-not-found"
    ),
    pytest.param(
        Row(
            422,
            {"message": "ERROR :: /author :: field is required but not found", "status": 422},
            error=PermanentError,
            message="/author :: field is required",
        ),
        id="422-unprocessable",
    ),
    pytest.param(
        Row(
            429,
            _error(
                429,
                "TOO_MANY_REQUESTS",
                "Resource level throttle APPLICATION DAY limit for calls to this resource is "
                "reached.",
                101,
            ),
            {"Retry-After": "60"},
            error=TransientError,
            retry_after=60.0,
        ),
        id="429-retry-after",
    ),
    pytest.param(
        Row(
            500, _error(500, "INTERNAL_SERVER_ERROR", "Internal Server Error"), error=TransientError
        ),
        id="500",
    ),
    pytest.param(
        Row(503, _error(503, "SERVICE_UNAVAILABLE", "Service Unavailable"), error=TransientError),
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
            message="cannot reach LinkedIn",
        ),
        id="connection-dropped",
    ),
    pytest.param(
        Row(201, error=PermanentError, message="without a post id"), id="201-without-post-id"
    ),
]


@pytest.mark.parametrize("row", ROWS)
def test_publish_outcome(row: Row, make_request, linkedin_account: LinkedInAccount) -> None:
    channel = LinkedInChannel()
    draft = channel.render(make_request(channel="linkedin"))
    with responses.RequestsMock() as mock:
        if row.exception is not None:
            mock.add(responses.POST, POSTS, body=row.exception)
        elif row.body is None:
            mock.add(responses.POST, POSTS, status=row.status, headers=row.headers, body="")
        else:
            mock.add(responses.POST, POSTS, status=row.status, json=row.body, headers=row.headers)
        if row.error is None:
            result = channel.publish(draft, linkedin_account, idempotency_key="d-1")
            assert result.external_ids == [POST_URN]
            _assert_documented_request(mock.calls[0].request, draft.parts["text"])
            return
        with pytest.raises(row.error) as raised:
            channel.publish(draft, linkedin_account, idempotency_key="d-1")
    assert row.message in str(raised.value)
    assert raised.value.retry_after == row.retry_after
    if row.exception is not None:
        assert raised.value.__cause__ is row.exception


def _assert_documented_request(request: requests.PreparedRequest, text: str) -> None:
    assert request.headers["Authorization"] == "Bearer AQV-linkedin-access-TOKEN-44"
    assert request.headers["LinkedIn-Version"] == "202605"
    assert request.headers["X-Restli-Protocol-Version"] == "2.0.0"
    assert json.loads(request.body) == {
        "author": "urn:li:person:8675309",
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


@pytest.mark.parametrize(
    ("text", "commentary"),
    [
        pytest.param("Plain words, nothing else.", "Plain words, nothing else.", id="plain"),
        pytest.param("Audit (in 45 days)", "Audit \\(in 45 days\\)", id="parentheses"),
        pytest.param(
            "a_b *c* ~d~ <e> [f] {g} @h | \\",
            "a\\_b \\*c\\* \\~d\\~ \\<e\\> \\[f\\] \\{g\\} \\@h \\| \\\\",
            id="every-reserved-character",
        ),
        pytest.param("Join us #CloudSecurity", "Join us #CloudSecurity", id="hashtag-kept"),
        pytest.param("Number #1 (really)", "Number #1 \\(really\\)", id="hashtag-with-digits"),
        pytest.param("C# and F#", "C\\# and F\\#", id="hash-not-a-hashtag"),
        pytest.param(
            "See https://ex.example/a_(b)?utm_source=linkedin (now)",
            "See https://ex.example/a_(b)?utm_source=linkedin \\(now\\)",
            id="link-kept",
        ),
    ],
)
def test_commentary_is_little_text(text: str, commentary: str) -> None:
    assert little_text(text) == commentary


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"author_urn": "urn:li:person:1"}, id="no-token"),
        pytest.param({"access_token": "AQV-token-value", "author_urn": "person:1"}, id="bad-urn"),
        pytest.param(
            {
                "access_token": "AQV-token-value",
                "author_urn": "urn:li:person:1",
                "api_version": "2026-05",
            },
            id="bad-version",
        ),
        pytest.param(
            {
                "access_token": "AQV-token-value",
                "author_urn": "urn:li:person:1",
                "api_base_url": "ftp://x",
            },
            id="bad-base-url",
        ),
    ],
)
def test_bad_account_settings_are_refused(settings: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        LinkedInAccount(**settings)
