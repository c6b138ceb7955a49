"""The channel against the local Google Ads stand-in, over real HTTP."""

from __future__ import annotations

import pytest
from channels.search.helpers import request

from partnercast.channels.search.channel import SearchChannel
from partnercast.demo.search_standin import GoogleAdsStandIn
from partnercast.plugins import AuthError


def test_publish_through_the_standin_creates_one_campaign_and_retries_find_it() -> None:
    channel = SearchChannel()
    draft = channel.render(request())
    with GoogleAdsStandIn() as standin:
        account = standin.account(login_customer_id="111-222-3333")
        first = channel.publish(draft, account, idempotency_key="t1:e1:touch1:c1")
        again = SearchChannel().publish(draft, account, idempotency_key="t1:e1:touch1:c1")
        other = channel.publish(draft, account, idempotency_key="t1:e2:touch1:c1")
        received = standin.received
        campaigns = standin.campaigns
    assert first.external_ids == again.external_ids
    assert first.external_ids[0].startswith("customers/1234567890/campaigns/")
    assert other.external_ids != first.external_ids
    assert len(campaigns) == 2
    paths = [r.path.rsplit("/", 1)[-1] for r in received]
    assert paths.count("googleAds:mutate") == 2
    mutate = next(r for r in received if r.path.endswith("googleAds:mutate"))
    assert mutate.headers["login-customer-id"] == "1112223333"
    assert mutate.headers["developer-token"] == "<set>"  # the stand-in keeps no secrets
    kinds = [next(iter(op)) for op in mutate.body["mutateOperations"]]
    assert kinds[:4] == [
        "campaignBudgetOperation",
        "campaignOperation",
        "adGroupOperation",
        "adGroupAdOperation",
    ]


def test_a_revoked_refresh_token_is_an_auth_error_over_http() -> None:
    channel = SearchChannel()
    draft = channel.render(request())
    with GoogleAdsStandIn() as standin:
        account = standin.account(refresh_token="revoked")
        with pytest.raises(AuthError, match="revoked"):
            channel.publish(draft, account, idempotency_key="k")
