"""Both social channels through the plugin framework's conformance kit.

One row is expected to fail, on purpose: ``publish/idempotent`` publishes the same key
from two channel instances (a retry in another process) and wants one post. Neither X
nor LinkedIn takes an idempotency key or can be asked cheaply for a post by a client
id, so across processes it is the engine's dispatch ledger (external ids recorded per
dispatch, never published twice) that guarantees one post; within one instance the
channel returns the first ids again (see test_the_same_key_twice_posts_once).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import responses

from partnercast.channels.social.linkedin import LinkedInChannel
from partnercast.channels.social.x import XChannel
from partnercast.plugins.testing import (
    ChannelCase,
    Check,
    HttpTransport,
    checks,
    run_check,
    simple_request,
)

CROSS_PROCESS_IDEMPOTENCY = (
    "neither network takes an idempotency key: across processes the engine's dispatch "
    "ledger prevents a second post"
)
GOOD_CONTENT = {"link": "https://northwind.example/shield", "hashtags": ["CloudSecurity"]}
BAD_CONTENT = {
    "bad-hashtag": {"hashtags": ["not a tag"]},
    "unknown-key": {"subject": "Hello"},
    "vendor-words-when-partner-copy-required": {"require_partner_copy": True},
}


def _request(channel: str) -> Any:
    def make(content: Mapping[str, Any]) -> Any:
        return simple_request(channel, content, "We harden hybrid clouds in 45 days.")

    return make


@dataclass
class _Network:
    posts: int = 0


@dataclass
class LinkedInTransport(HttpTransport):
    """The kit's HTTP fake, answering success as LinkedIn does: 201, id in x-restli-id."""

    calls: list[requests.PreparedRequest] = field(default_factory=list)

    @contextlib.contextmanager
    def succeeding(self) -> Iterator[_Network]:
        network = _Network()

        def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
            network.posts += 1
            return 201, {"x-restli-id": f"urn:li:share:{network.posts}"}, ""

        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.add_callback(self.method, self.url, callback=answer)
            yield network


X_CASE = ChannelCase(
    channel=XChannel,
    good_settings={
        "consumer_key": "kit-consumer-key",
        "consumer_secret": "kit-consumer-secret-1",
        "access_token": "1234-kit-access-token-2",
        "access_token_secret": "kit-token-secret-3",
    },
    bad_settings={
        "no-token-secret": {
            "consumer_key": "k",
            "consumer_secret": "kit-consumer-secret-1",
            "access_token": "1234-kit-access-token-2",
        },
        "bad-base-url": {
            "consumer_key": "k",
            "consumer_secret": "kit-consumer-secret-1",
            "access_token": "1234-kit-access-token-2",
            "access_token_secret": "kit-token-secret-3",
            "api_base_url": "api.twitter.com",
        },
    },
    good_content=GOOD_CONTENT,
    bad_content={**BAD_CONTENT, "too-long": {"hashtags": ["a" * 140, "b" * 140]}},
    render_request=_request("x"),
    transport=HttpTransport(
        "POST",
        "https://api.twitter.com/2/tweets",
        ok_status=201,
        ok_body=lambda _request, number: {"data": {"id": str(number), "text": "."}},
    ),
)
LINKEDIN_CASE = ChannelCase(
    channel=LinkedInChannel,
    good_settings={"access_token": "AQV-kit-access-token-4", "author_urn": "urn:li:person:42"},
    bad_settings={
        "no-author": {"access_token": "AQV-kit-access-token-4"},
        "organization-name-not-urn": {"access_token": "AQV-kit-4", "author_urn": "Acme"},
    },
    good_content=GOOD_CONTENT,
    bad_content={**BAD_CONTENT, "too-long": {"hashtags": ["a" * 1600, "b" * 1600]}},
    render_request=_request("linkedin"),
    transport=LinkedInTransport("POST", re.compile(r"https://api\.linkedin\.com/rest/posts")),
)


def _rows() -> list[Any]:
    rows = []
    for case in (X_CASE, LINKEDIN_CASE):
        for row in checks(case):
            marks = []
            if row.id == "publish/idempotent":
                marks.append(pytest.mark.xfail(strict=True, reason=CROSS_PROCESS_IDEMPOTENCY))
            rows.append(pytest.param(row, marks=marks, id=f"{case.channel.name}:{row.id}"))
    return rows


@pytest.mark.parametrize("row", _rows())
def test_conformance(row: Check) -> None:
    run_check(row)
