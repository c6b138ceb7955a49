"""Google access tokens: asked for once per account and hour, not once per publish.

Against the stand-in's token endpoint over real HTTP, which counts the tokens it issues.
"""

from __future__ import annotations

import pytest
from channels.search.helpers import request

from partnercast.channels.search.channel import SearchChannel
from partnercast.channels.search.googleads import TOKENS, GoogleAdsClient, TokenCache
from partnercast.demo.search_standin import GoogleAdsStandIn
from partnercast.plugins import AuthError


def test_many_publishes_on_one_account_ask_for_one_token() -> None:
    channel = SearchChannel()
    draft = channel.render(request())
    with GoogleAdsStandIn() as standin:
        account = standin.account()
        for number in range(4):
            channel.publish(draft, account, idempotency_key=f"t1:e{number}:touch1:c1")
        SearchChannel().find_published(draft, account, idempotency_key="t1:e0:touch1:c1")
        assert len(standin.campaigns) == 4
        assert standin.tokens_issued == 1
        tokens = [r for r in standin.received if r.path == "/token"]
        assert len(tokens) == 1


def test_each_account_has_its_own_token() -> None:
    channel = SearchChannel()
    draft = channel.render(request())
    with GoogleAdsStandIn() as standin:
        channel.publish(draft, standin.account(), idempotency_key="t1:e1:touch1:c1")
        other = standin.account(refresh_token="another-partners-refresh-token")
        channel.publish(draft, other, idempotency_key="t1:e2:touch1:c1")
        channel.publish(draft, other, idempotency_key="t1:e3:touch1:c1")
        assert standin.tokens_issued == 2


def test_a_token_google_refuses_is_forgotten_and_a_new_one_asked_for() -> None:
    channel = SearchChannel()
    draft = channel.render(request())
    with GoogleAdsStandIn() as standin:
        account = standin.account()
        channel.publish(draft, account, idempotency_key="t1:e1:touch1:c1")
        standin.fail_next("search", 401, rpc_status="UNAUTHENTICATED", message="token revoked")
        with pytest.raises(AuthError, match="UNAUTHENTICATED"):
            channel.publish(draft, account, idempotency_key="t1:e2:touch1:c1")
        channel.publish(draft, account, idempotency_key="t1:e2:touch1:c1")
        assert standin.tokens_issued == 2
        assert len(standin.campaigns) == 2


def test_an_expiring_token_is_renewed_a_minute_early() -> None:
    cache = TokenCache()
    with GoogleAdsStandIn() as standin:
        client = GoogleAdsClient(standin.account(), tokens=cache)
        first = client.access_token()
        assert client.access_token() == first and standin.tokens_issued == 1
        cache.put(TokenCache.key(standin.account()), first, lifetime=60)  # expires in 60 s
        assert client.access_token() != first and standin.tokens_issued == 2


def test_the_cache_holds_no_credential() -> None:
    with GoogleAdsStandIn() as standin:
        account = standin.account()
        GoogleAdsClient(account).access_token()
        key = TokenCache.key(account)
    held = repr(TOKENS.__dict__)
    assert key in held
    for secret in ("standin-client-secret", "standin-refresh-token"):
        assert secret not in key and secret not in held
