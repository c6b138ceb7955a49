"""Account secrets never show: not in repr, errors, or any log line at DEBUG."""

from __future__ import annotations

import logging

import pytest
import requests
import responses

from partnercast.channels.social.linkedin import LinkedInAccount, LinkedInChannel
from partnercast.channels.social.x import XAccount, XChannel
from partnercast.plugins import ChannelError

from .conftest import LINKEDIN_SECRET, X_SECRETS

TWEETS = "https://api.twitter.com/2/tweets"
POSTS = "https://api.linkedin.com/rest/posts"
ALL_SECRETS = (*X_SECRETS, LINKEDIN_SECRET)


def _assert_no_secret(text: str) -> None:
    for secret in ALL_SECRETS:
        assert secret not in text


def test_accounts_hide_secrets(x_account: XAccount, linkedin_account: LinkedInAccount) -> None:
    for account in (x_account, linkedin_account):
        for view in (repr(account), str(account), account.model_dump_json()):
            _assert_no_secret(view)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param({"status": 201, "ok": True}, id="success"),
        pytest.param({"status": 401}, id="401"),
        pytest.param({"status": 429, "headers": {"Retry-After": "5"}}, id="429"),
        pytest.param({"body": requests.exceptions.ConnectionError("reset")}, id="dropped"),
    ],
)
def test_nothing_secret_is_logged_or_raised(
    answer: dict, make_request, x_account, linkedin_account, caplog
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, third-party ones included
    messages: list[str] = []
    with responses.RequestsMock() as mock:
        if "body" in answer:
            mock.add(responses.POST, TWEETS, body=answer["body"])
            mock.add(responses.POST, POSTS, body=answer["body"])
        else:
            status, headers = answer["status"], answer.get("headers", {})
            x_body = {"data": {"id": "1", "text": "."}} if answer.get("ok") else {"detail": "no"}
            mock.add(responses.POST, TWEETS, status=status, json=x_body, headers=headers)
            li_headers = {**headers, "x-restli-id": "urn:li:share:1"}
            mock.add(responses.POST, POSTS, status=status, json={}, headers=li_headers)
        for channel, account in ((XChannel(), x_account), (LinkedInChannel(), linkedin_account)):
            draft = channel.render(make_request(channel=channel.name))
            try:
                channel.publish(draft, account, idempotency_key="k")
            except ChannelError as error:
                messages.append(f"{error} {error!r} {error.__cause__}")
    assert any("oauth_token" in record.getMessage() for record in caplog.records)  # it logs...
    _assert_no_secret(caplog.text)  # ...but masked
    _assert_no_secret(" ".join(messages))


def test_a_bad_account_mapping_does_not_echo_its_values(make_request) -> None:
    from partnercast.plugins import PermanentError

    settings = {"access_token": LINKEDIN_SECRET, "author_urn": LINKEDIN_SECRET}
    with pytest.raises(PermanentError) as raised:
        LinkedInChannel().publish(
            LinkedInChannel().render(make_request()), settings, idempotency_key="k"
        )
    assert "author_urn" in str(raised.value)
    _assert_no_secret(str(raised.value))
