"""The search channel's find_published and fetch_metrics against the Google Ads stand-in."""

from __future__ import annotations

from channels.search.helpers import request

from partnercast.channels.search.channel import SearchChannel
from partnercast.demo.search_standin import GoogleAdsStandIn


def test_find_published_is_certain_either_way() -> None:
    channel = SearchChannel()
    draft = channel.render(request())
    with GoogleAdsStandIn() as standin:
        account = standin.account()
        assert SearchChannel.supports_lookup()
        assert channel.find_published(draft, account, idempotency_key="t1:e1") == []
        made = channel.publish(draft, account, idempotency_key="t1:e1")
        found = SearchChannel().find_published(draft, account, idempotency_key="t1:e1")
        assert channel.find_published(draft, account, idempotency_key="t1:e2") == []
        assert len(standin.campaigns) == 1
    assert found == made.external_ids


def test_metrics_come_from_one_search_stream_in_googles_json_shape() -> None:
    channel = SearchChannel()
    draft = channel.render(request())
    with GoogleAdsStandIn() as standin:
        account = standin.account()
        campaign, budget = channel.publish(draft, account, idempotency_key="k").external_ids
        standin.set_metrics(
            campaign, impressions=1500, clicks=42, cost_micros=12_340_000, conversions=3.5
        )
        metrics = channel.fetch_metrics(account, [campaign, budget, "customers/1/campaigns/9"])
        [stream] = [r for r in standin.received if r.path.endswith("googleAds:searchStream")]
    assert metrics == [
        {
            "external_id": campaign,
            "impression_count": 1500,
            "click_count": 42,
            "cost_micros": 12_340_000,
            "conversions": 3.5,
        },
        {"external_id": budget},
        {"external_id": "customers/1/campaigns/9"},
    ]
    query = stream.body["query"]
    assert query.startswith("SELECT campaign.resource_name, metrics.impressions, metrics.clicks,")
    assert f"WHERE campaign.resource_name IN ('{campaign}', 'customers/1/campaigns/9')" in query
