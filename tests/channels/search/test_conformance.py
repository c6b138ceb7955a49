"""The search channel passes the plugin framework's conformance kit."""

from __future__ import annotations

import json
import re
from typing import Any

import requests
import responses
from channels.search.helpers import CONTENT, request

from partnercast.channels.search.channel import SearchChannel
from partnercast.plugins.testing import ChannelCase, ChannelConformance
from partnercast.plugins.testing_http import HttpNetwork, HttpTransport

API = "https://googleads.googleapis.com/v21/customers/1234567890"
BASE = "customers/1234567890"


def _created(number: int) -> tuple[str, str]:
    return f"{BASE}/campaigns/{number}", f"{BASE}/campaignBudgets/{number}00"


def _mutate_ok(_request: requests.PreparedRequest, number: int) -> dict[str, Any]:
    campaign, budget = _created(number)
    return {
        "mutateOperationResponses": [
            {"campaignBudgetResult": {"resourceName": budget}},
            {"campaignResult": {"resourceName": campaign}},
        ]
    }


def _token_and_search(mock: responses.RequestsMock, network: HttpNetwork) -> None:
    """The token endpoint, and a search that finds campaigns earlier mutates created."""
    mock.post("https://oauth2.googleapis.com/token", json={"access_token": "kit-access"})

    def search(prepared: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        query = json.loads(prepared.body or "{}")["query"]
        for number, call in enumerate(network.calls, start=1):
            operations = json.loads(call.body or "{}")["mutateOperations"]
            name = operations[1]["campaignOperation"]["create"]["name"]
            if f"'{name}'" in query:
                campaign, budget = _created(number)
                row = {"campaign": {"resourceName": campaign, "campaignBudget": budget}}
                return 200, {}, json.dumps({"results": [row]})
        return 200, {}, "{}"

    mock.add_callback("POST", f"{API}/googleAds:search", callback=search)


class TestSearchConformance(ChannelConformance):
    case = ChannelCase(
        channel=SearchChannel,
        good_settings={
            "customer_id": "123-456-7890",
            "developer_token": "kit-developer-token",
            "client_id": "kit-client.apps.example",
            "client_secret": "kit-client-secret",
            "refresh_token": "kit-refresh-token",
        },
        bad_settings={
            "short-customer-id": {
                "customer_id": "12345",
                "developer_token": "kit-developer-token",
                "client_id": "c",
                "client_secret": "kit-client-secret",
                "refresh_token": "kit-refresh-token",
            },
            "no-refresh-token": {
                "customer_id": "1234567890",
                "developer_token": "kit-developer-token",
                "client_id": "c",
                "client_secret": "kit-client-secret",
            },
        },
        good_content=CONTENT,
        bad_content={
            "two-headlines": {**CONTENT, "headlines": ["One headline", "Two headlines"]},
            "long-headline": {**CONTENT, "headlines": ["A" * 31, "B", "C"]},
            "empty-final-url": {**CONTENT, "final_url": " "},
            "no-keywords": {**CONTENT, "keywords": []},
            "budget-not-in-cents": {**CONTENT, "daily_budget_micros": 1},
        },
        render_request=request,
        transport=HttpTransport(
            "POST",
            re.compile(re.escape(f"{API}/googleAds:mutate")),
            ok_body=_mutate_ok,
            extra=_token_and_search,
        ),
    )
