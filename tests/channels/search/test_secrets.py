"""Secrets never show in repr, dumps, logs or errors."""

from __future__ import annotations

import logging

import pytest
import responses
from channels.search.helpers import request

from partnercast.channels.search.channel import SearchChannel
from partnercast.channels.search.models import SearchAccount
from partnercast.plugins import AuthError

SECRETS = ("dev-token-s3cret", "client-s3cret-value", "refresh-s3cret-value", "ya29.access-s3cret")
API = "https://googleads.googleapis.com/v21/customers/1234567890"


def _account() -> SearchAccount:
    return SearchAccount(
        customer_id="1234567890",
        developer_token=SECRETS[0],
        client_id="client.apps.example",
        client_secret=SECRETS[1],
        refresh_token=SECRETS[2],
    )


@pytest.mark.parametrize(
    "view",
    [
        pytest.param(repr, id="repr"),
        pytest.param(str, id="str"),
        pytest.param(lambda a: a.model_dump_json(), id="model_dump_json"),
        pytest.param(lambda a: str(a.model_dump()), id="model_dump"),
    ],
)
def test_secrets_are_not_in_views_of_the_account(view) -> None:
    text = view(_account())
    assert not any(secret in text for secret in SECRETS)


@pytest.mark.parametrize("outcome", ["success", "refused"])
def test_secrets_are_not_logged_at_debug(caplog: pytest.LogCaptureFixture, outcome: str) -> None:
    channel = SearchChannel()
    draft = channel.render(request())
    caplog.set_level(logging.DEBUG)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(
            "https://oauth2.googleapis.com/token",
            json={"access_token": SECRETS[3], "expires_in": 3599},
        )
        mock.post(f"{API}/googleAds:search", json={})
        if outcome == "success":
            mock.post(f"{API}/googleAds:mutate", json={"mutateOperationResponses": []})
            channel.publish(draft, _account(), idempotency_key="k1")
        else:
            mock.post(f"{API}/googleAds:mutate", status=401, json={"error": {"code": 401}})
            with pytest.raises(AuthError):
                channel.publish(draft, _account(), idempotency_key="k1")
    assert caplog.records, "the channel logs what it does"
    assert not any(secret in caplog.text for secret in SECRETS)
