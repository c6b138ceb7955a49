"""Publishing to the Google Ads API over REST, against responses shaped like Google's."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses
from channels.search.helpers import request

from partnercast.channels.search.channel import SearchChannel
from partnercast.channels.search.models import SearchAccount
from partnercast.plugins import AuthError, PermanentError, TransientError

API = "https://googleads.googleapis.com/v21/customers/1234567890"
SEARCH = f"{API}/googleAds:search"
MUTATE = f"{API}/googleAds:mutate"
TOKEN = "https://oauth2.googleapis.com/token"
KEY = "t1:e2:touch3:c4"
NAME = "cloud-security · Nordlicht Systemhaus · search-ad [pc:t1:e2:touch3:c4]"
MUTATE_OK = {
    "mutateOperationResponses": [
        {"campaignBudgetResult": {"resourceName": "customers/1234567890/campaignBudgets/456"}},
        {"campaignResult": {"resourceName": "customers/1234567890/campaigns/789"}},
        {"adGroupResult": {"resourceName": "customers/1234567890/adGroups/55"}},
        {"adGroupAdResult": {"resourceName": "customers/1234567890/adGroupAds/55~66"}},
    ]
}


def _account(**extra: Any) -> SearchAccount:
    return SearchAccount(
        customer_id="123-456-7890",
        login_customer_id="111-222-3333",
        developer_token="dev-token-s3cret",
        client_id="client.apps.example",
        client_secret="client-s3cret-value",
        refresh_token="refresh-s3cret-value",
        **extra,
    )


def _publish(key: str = KEY) -> list[str]:
    channel = SearchChannel()
    draft = channel.render(request())
    return channel.publish(draft, _account(), idempotency_key=key).external_ids


def _token_ok(mock: responses.RequestsMock) -> None:
    mock.post(TOKEN, json={"access_token": "ya29.access", "expires_in": 3599})


def _ads_failure(
    code: dict[str, str],
    message: str,
    path: list[dict[str, Any]],
    status: tuple[int, str] = (400, "INVALID_ARGUMENT"),
) -> dict[str, Any]:
    return {
        "error": {
            "code": status[0],
            "message": "Request contains an invalid argument.",
            "status": status[1],
            "details": [
                {
                    "@type": "type.googleapis.com/google.ads.googleads.v21.errors.GoogleAdsFailure",
                    "errors": [
                        {
                            "errorCode": code,
                            "message": message,
                            "location": {"fieldPathElements": path},
                        }
                    ],
                    "requestId": "req-1",
                }
            ],
        }
    }


def test_success_sends_one_atomic_mutate_with_the_documented_shape() -> None:
    with responses.RequestsMock() as mock:
        _token_ok(mock)
        mock.post(SEARCH, json={"fieldMask": "campaign.resourceName"})
        mock.post(MUTATE, json=MUTATE_OK)
        ids = _publish()
        token_call, search_call, mutate_call = mock.calls
    assert ids == [
        "customers/1234567890/campaigns/789",
        "customers/1234567890/campaignBudgets/456",
    ]
    assert "grant_type=refresh_token" in token_call.request.body
    assert json.loads(search_call.request.body) == {
        "query": "SELECT campaign.resource_name, campaign.campaign_budget FROM campaign "
        f"WHERE campaign.name = '{NAME}'"
    }
    headers = mutate_call.request.headers
    assert headers["Authorization"] == "Bearer ya29.access"
    assert headers["developer-token"] == "dev-token-s3cret"
    assert headers["login-customer-id"] == "1112223333"
    body = json.loads(mutate_call.request.body)
    operations = body["mutateOperations"]
    assert body["partialFailure"] is False
    assert [next(iter(op)) for op in operations] == [
        "campaignBudgetOperation",
        "campaignOperation",
        "adGroupOperation",
        "adGroupAdOperation",
        *["adGroupCriterionOperation"] * 3,
        *["campaignCriterionOperation"] * 3,
    ]
    base = "customers/1234567890"
    budget = operations[0]["campaignBudgetOperation"]["create"]
    assert budget["resourceName"] == f"{base}/campaignBudgets/-1"
    assert budget["amountMicros"] == "20000000"
    campaign = operations[1]["campaignOperation"]["create"]
    assert campaign["resourceName"] == f"{base}/campaigns/-2"
    assert campaign["name"] == NAME
    assert campaign["campaignBudget"] == f"{base}/campaignBudgets/-1"
    assert (campaign["advertisingChannelType"], campaign["status"]) == ("SEARCH", "PAUSED")
    assert campaign["containsEuPoliticalAdvertising"].startswith("DOES_NOT")
    assert operations[2]["adGroupOperation"]["create"]["campaign"] == f"{base}/campaigns/-2"
    ad = operations[3]["adGroupAdOperation"]["create"]
    assert ad["adGroup"] == f"{base}/adGroups/-3"
    rsa = ad["ad"]["responsiveSearchAd"]
    assert rsa["headlines"][0] == {"text": "Northwind Shield Partner"}
    assert rsa["headlines"][1] == {
        "text": "Hybrid Cloud sicher in 45 Tag",
        "pinnedField": "HEADLINE_1",
    }
    assert len(rsa["descriptions"]) == 2 and rsa["path1"] == "shield"
    assert ad["ad"]["finalUrls"][0].startswith("https://northwind.example/shield?ref=partner&utm_")
    keywords = [op["adGroupCriterionOperation"]["create"]["keyword"] for op in operations[4:7]]
    assert keywords == [
        {"text": "hybrid cloud security", "matchType": "PHRASE"},
        {"text": "northwind shield", "matchType": "EXACT"},
        {"text": "cloud audit", "matchType": "PHRASE"},
    ]
    locations = [op["campaignCriterionOperation"]["create"] for op in operations[7:]]
    assert [loc["location"]["geoTargetConstant"] for loc in locations] == [
        "geoTargetConstants/2276",
        "geoTargetConstants/2040",
        "geoTargetConstants/2756",
    ]
    assert {loc["campaign"] for loc in locations} == {f"{base}/campaigns/-2"}


def test_a_retried_dispatch_finds_its_campaign_and_creates_nothing() -> None:
    found = {
        "results": [
            {
                "campaign": {
                    "resourceName": "customers/1234567890/campaigns/789",
                    "campaignBudget": "customers/1234567890/campaignBudgets/456",
                }
            }
        ]
    }
    with responses.RequestsMock() as mock:
        _token_ok(mock)
        mock.post(SEARCH, json=found)
        ids = _publish()
        assert [call.request.url for call in mock.calls] == [TOKEN, SEARCH]
    assert ids == [
        "customers/1234567890/campaigns/789",
        "customers/1234567890/campaignBudgets/456",
    ]


def test_a_racing_duplicate_name_returns_the_campaign_the_other_attempt_made() -> None:
    duplicate = _ads_failure(
        {"campaignError": "DUPLICATE_CAMPAIGN_NAME"},
        "Campaign name already exists.",
        [{"fieldName": "mutate_operations", "index": 1}, {"fieldName": "campaign_operation"}],
    )
    existing = {"results": [{"campaign": {"resourceName": "customers/1234567890/campaigns/9"}}]}
    with responses.RequestsMock() as mock:
        _token_ok(mock)
        mock.post(SEARCH, json={})
        mock.post(MUTATE, status=400, json=duplicate)
        mock.post(SEARCH, json=existing)
        assert _publish() == ["customers/1234567890/campaigns/9"]


QUOTA = {
    "error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {
                "@type": "type.googleapis.com/google.ads.googleads.v21.errors.GoogleAdsFailure",
                "errors": [
                    {
                        "errorCode": {"quotaError": "RESOURCE_EXHAUSTED"},
                        "message": "Too many requests.",
                        "details": {"quotaErrorDetails": {"retryDelay": "120s"}},
                    }
                ],
            }
        ],
    }
}
REQUIRED = _ads_failure(
    {"fieldError": "REQUIRED"},
    "The required field was not present.",
    [
        {"fieldName": "mutate_operations", "index": 1},
        {"fieldName": "campaign_operation"},
        {"fieldName": "create"},
        {"fieldName": "name"},
    ],
)


def _status(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {"status": status, "json": body, "headers": headers or {}}


# (mutate answer, token answer, expected error, text in the message, retry_after)
FAILURES = [
    pytest.param(
        _status(400, REQUIRED),
        None,
        PermanentError,
        "The required field was not present. [fieldError.REQUIRED] "
        "(at mutate_operations[1].campaign_operation.create.name)",
        None,
        id="400-ads-failure",
    ),
    pytest.param(
        _status(
            401,
            {
                "error": {
                    "code": 401,
                    "message": "Request had invalid authentication credentials.",
                    "status": "UNAUTHENTICATED",
                }
            },
        ),
        None,
        AuthError,
        "invalid authentication",
        None,
        id="401",
    ),
    pytest.param(
        _status(
            403,
            _ads_failure(
                {"authorizationError": "USER_PERMISSION_DENIED"},
                "User doesn't have permission to access customer.",
                [],
                (403, "PERMISSION_DENIED"),
            ),
        ),
        None,
        PermanentError,
        "USER_PERMISSION_DENIED",
        None,
        id="403",
    ),
    pytest.param(
        _status(429, QUOTA, {"Retry-After": "30"}),
        None,
        TransientError,
        "Too many",
        30.0,
        id="429-retry-after",
    ),
    pytest.param(
        _status(429, QUOTA),
        None,
        TransientError,
        "quotaError",
        120.0,
        id="429-retry-delay",
    ),
    pytest.param(
        _status(
            500,
            {
                "error": {
                    "code": 500,
                    "message": "Internal error encountered.",
                    "status": "INTERNAL",
                }
            },
        ),
        None,
        TransientError,
        "Internal error",
        None,
        id="500",
    ),
    pytest.param(
        _status(
            503,
            {
                "error": {
                    "code": 503,
                    "message": "The service is currently unavailable.",
                    "status": "UNAVAILABLE",
                }
            },
        ),
        None,
        TransientError,
        "unavailable",
        None,
        id="503",
    ),
    pytest.param(
        _status(502, "<html>bad gateway</html>"),
        None,
        TransientError,
        "HTTP 502",
        None,
        id="502-not-json",
    ),
    pytest.param(
        requests.exceptions.ReadTimeout("read timed out"),
        None,
        TransientError,
        "in time",
        None,
        id="timeout",
    ),
    pytest.param(
        requests.exceptions.ConnectionError("Connection aborted."),
        None,
        TransientError,
        "cannot reach",
        None,
        id="connection-dropped",
    ),
    pytest.param(
        None,
        _status(
            400,
            {"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
        ),
        AuthError,
        "expired or revoked",
        None,
        id="token-refresh-revoked",
    ),
    pytest.param(
        None,
        _status(401, {"error": "invalid_client"}),
        AuthError,
        "invalid_client",
        None,
        id="token-invalid-client",
    ),
    pytest.param(
        None,
        _status(503, {}),
        TransientError,
        "503",
        None,
        id="token-endpoint-down",
    ),
    pytest.param(
        None,
        requests.exceptions.ConnectionError("reset"),
        TransientError,
        "token endpoint",
        None,
        id="token-endpoint-unreachable",
    ),
]


@pytest.mark.parametrize(("mutate", "token", "error", "text", "retry_after"), FAILURES)
def test_failures_become_the_contract_errors(
    mutate: Any, token: Any, error: type[Exception], text: str, retry_after: float | None
) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        if token is None:
            _token_ok(mock)
        elif isinstance(token, Exception):
            mock.post(TOKEN, body=token)
        else:
            mock.post(TOKEN, **token)
        mock.post(SEARCH, json={})
        if isinstance(mutate, Exception):
            mock.post(MUTATE, body=mutate)
        elif mutate is not None:
            mock.post(MUTATE, **mutate)
        with pytest.raises(error) as raised:
            _publish()
    assert text in str(raised.value)
    assert raised.value.retry_after == retry_after
    assert raised.value.__cause__ is not None or raised.value.__context__ is None
    for secret in ("dev-token-s3cret", "client-s3cret-value", "refresh-s3cret-value"):
        assert secret not in f"{raised.value} {raised.value!r}"


def test_the_access_token_is_reused_within_one_client() -> None:
    from partnercast.channels.search.googleads import GoogleAdsClient

    with responses.RequestsMock() as mock:
        _token_ok(mock)
        mock.post(SEARCH, json={})
        client = GoogleAdsClient(_account())
        client.search("SELECT campaign.id FROM campaign")
        client.search("SELECT campaign.id FROM campaign")
        assert [call.request.url for call in mock.calls].count(TOKEN) == 1


def test_an_invalid_draft_is_never_published() -> None:
    channel = SearchChannel()
    content = {**request().content, "headlines": ["Only one"]}
    draft = channel.render(request(content))
    with responses.RequestsMock() as mock, pytest.raises(PermanentError, match="1 headlines"):
        channel.publish(draft, _account(), idempotency_key=KEY)
    assert not mock.calls
