"""The one atomic ``googleAds:mutate`` that creates a partner's search campaign.

Budget, campaign, ad group, responsive search ad, keywords and location targets are
created together, linked through temporary resource names (negative ids, each used once
in the request), so a failure leaves nothing half-built. The campaign's name embeds the
dispatch's idempotency key: :func:`lookup_query` finds it again before a retry creates a
second campaign.
"""

from __future__ import annotations

import re
from typing import Any

from partnercast.channels.search.ad import SearchAd
from partnercast.channels.search.geo import geo_target_constant

NAME_MAX = 255
MATCH_TYPES = {"broad": "BROAD", "phrase": "PHRASE", "exact": "EXACT"}
PINS = {"headline": "HEADLINE_{}", "description": "DESCRIPTION_{}"}


def campaign_name(ad: SearchAd, idempotency_key: str) -> str:
    """``<campaign · partner · touch> [pc:<key>]``, quotes and backslashes removed.

    The key stays whole at the end however long the label is, so the name is unique per
    dispatch and safe to put in a GAQL string literal.
    """
    suffix = f" [pc:{_clean(idempotency_key)}]"
    label = _clean(ad.label())[: NAME_MAX - len(suffix)]
    return label + suffix


def _clean(text: str) -> str:
    return " ".join(re.sub(r"['\"\\]", "", text).split())


def lookup_query(name: str) -> str:
    """GAQL finding the campaign a previous attempt of the same dispatch created."""
    return (
        "SELECT campaign.resource_name, campaign.campaign_budget FROM campaign "
        f"WHERE campaign.name = '{name}'"
    )


def metrics_query(campaigns: list[str]) -> str:
    """GAQL for the lifetime metrics of ``campaigns`` (resource names, digits and slashes)."""
    names = ", ".join(f"'{_clean(name)}'" for name in campaigns)
    return (
        "SELECT campaign.resource_name, metrics.impressions, metrics.clicks, "
        "metrics.cost_micros, metrics.conversions FROM campaign "
        f"WHERE campaign.resource_name IN ({names})"
    )


def mutate_operations(ad: SearchAd, customer_id: str, name: str) -> list[dict[str, Any]]:
    """The mutateOperations, in dependency order, for one partner's campaign."""
    base = f"customers/{customer_id}"
    budget = f"{base}/campaignBudgets/-1"
    campaign = f"{base}/campaigns/-2"
    ad_group = f"{base}/adGroups/-3"
    status = "ENABLED" if ad.status == "enabled" else "PAUSED"
    bidding: dict[str, Any] = (
        {"manualCpc": {}} if ad.max_cpc_micros else {"targetSpend": {}}  # maximise clicks
    )
    group: dict[str, Any] = {
        "resourceName": ad_group,
        "name": f"{name} ad group"[:NAME_MAX],
        "campaign": campaign,
        "status": "ENABLED",
        "type": "SEARCH_STANDARD",
    }
    if ad.max_cpc_micros:
        group["cpcBidMicros"] = str(ad.max_cpc_micros)
    rsa: dict[str, Any] = {
        "headlines": [_asset(line.text, line.pin, "headline") for line in ad.headlines],
        "descriptions": [_asset(line.text, line.pin, "description") for line in ad.descriptions],
    }
    if ad.path1:
        rsa["path1"] = ad.path1
    if ad.path2:
        rsa["path2"] = ad.path2
    operations: list[dict[str, Any]] = [
        {
            "campaignBudgetOperation": {
                "create": {
                    "resourceName": budget,
                    "name": f"{name} budget"[:NAME_MAX],
                    "amountMicros": str(ad.daily_budget_micros),
                    "deliveryMethod": "STANDARD",
                    "explicitlyShared": False,
                }
            }
        },
        {
            "campaignOperation": {
                "create": {
                    "resourceName": campaign,
                    "name": name,
                    "status": status,
                    "advertisingChannelType": "SEARCH",
                    "campaignBudget": budget,
                    **bidding,
                    "networkSettings": {
                        "targetGoogleSearch": True,
                        "targetSearchNetwork": True,
                        "targetContentNetwork": False,
                        "targetPartnerSearchNetwork": False,
                    },
                    "containsEuPoliticalAdvertising": "DOES_NOT_CONTAIN_EU_POLITICAL_ADVERTISING",
                }
            }
        },
        {"adGroupOperation": {"create": group}},
        {
            "adGroupAdOperation": {
                "create": {
                    "adGroup": ad_group,
                    "status": "ENABLED",
                    "ad": {"finalUrls": [ad.final_url], "responsiveSearchAd": rsa},
                }
            }
        },
    ]
    operations += [
        {
            "adGroupCriterionOperation": {
                "create": {
                    "adGroup": ad_group,
                    "status": "ENABLED",
                    "keyword": {"text": text, "matchType": MATCH_TYPES[match]},
                }
            }
        }
        for text, match in ad.keywords
    ]
    operations += [
        {
            "campaignCriterionOperation": {
                "create": {
                    "campaign": campaign,
                    "location": {"geoTargetConstant": geo_target_constant(country)},
                }
            }
        }
        for country in ad.countries
    ]
    return operations


def _asset(text: str, pin: int | None, kind: str) -> dict[str, Any]:
    asset: dict[str, Any] = {"text": text}
    if pin:
        asset["pinnedField"] = PINS[kind].format(pin)
    return asset


def resource_names(responses: list[dict[str, Any]]) -> list[str]:
    """The resource names in a mutate response, in operation order."""
    names: list[str] = []
    for item in responses:
        for result in item.values():
            if isinstance(result, dict) and isinstance(result.get("resourceName"), str):
                names.append(result["resourceName"])
    return names
