"""The webhook channel passes partnercast's conformance kit (and signs what it sends)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import responses
from partnercast_webhook.channel import SIGNATURE_HEADER, WebhookChannel, signature
from pydantic import SecretStr

from partnercast.plugins.testing import (
    ChannelCase,
    ChannelConformance,
    HttpTransport,
    simple_request,
)

URL = "https://partner.example/hooks/partnercast"
SECRET = "whsec-0123456789abcdef"


def _request(content: Mapping[str, Any]):
    return simple_request("webhook", content, "Our new offer is live.")


class TestWebhookChannel(ChannelConformance):
    case = ChannelCase(
        channel=WebhookChannel,
        good_settings={"url": URL, "secret": SECRET},
        bad_settings={
            "no-url": {"secret": SECRET},
            "not-a-url": {"url": "partner hook", "secret": SECRET},
            "short-secret": {"url": URL, "secret": "abc"},
            "unknown-field": {"url": URL, "secret": SECRET, "token": "x"},
        },
        good_content={"title": "Secure your hybrid cloud"},
        bad_content={"empty-title": {"title": ""}, "long-title": {"title": "x" * 201}},
        render_request=_request,
        transport=HttpTransport("POST", URL, dedupe_header="Idempotency-Key"),
    )


@responses.activate
def test_the_body_is_signed_with_the_partners_secret() -> None:
    responses.post(URL, json={"id": "hook-1"})
    channel = WebhookChannel()
    draft = channel.render(_request({"title": "Hello"}))
    account = WebhookChannel.Account(url=URL, secret=SECRET)
    result = channel.publish(draft, account, idempotency_key="t1:e1:k")
    sent = responses.calls[0].request
    assert result.external_ids == ["hook-1"]
    assert sent.headers["Idempotency-Key"] == "t1:e1:k"
    assert sent.headers[SIGNATURE_HEADER] == signature(SecretStr(SECRET), sent.body)
    assert json.loads(sent.body)["title"] == "Hello"
