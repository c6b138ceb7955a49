"""Both social channels through the plugin framework's conformance kit.

``publish/idempotent`` publishes the same key from two channel instances (a retry in
another process) and wants one post. Neither X nor LinkedIn takes an idempotency key:
the second instance is asked ``find_published`` first, as the engine does, and finds the
first post by the account's recent posts (X: ``/2/users/me`` and the user's timeline;
LinkedIn: the Posts API finder by author), which the fakes below answer from the posts
they received, in the documented shapes.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
    run_conformance,
    simple_request,
)
from partnercast.plugins.testing_http import HttpNetwork

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
    bodies: list[dict[str, Any]] = field(default_factory=list)


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


@dataclass
class LinkedInTransport(HttpTransport):
    """The kit's HTTP fake, answering as LinkedIn does: a post is 201 with its id in
    x-restli-id; the finder by author lists the author's posts, newest first."""

    calls: list[requests.PreparedRequest] = field(default_factory=list)

    @contextlib.contextmanager
    def succeeding(self) -> Iterator[_Network]:
        network = _Network()

        def answer(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
            network.posts += 1
            network.bodies.append({**json.loads(request.body or "{}"), "createdAt": _now_ms()})
            return 201, {"x-restli-id": f"urn:li:share:{network.posts}"}, ""

        def finder(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
            author = parse_qs(urlsplit(request.url or "").query).get("author", [""])[0]
            elements = [
                {"id": f"urn:li:share:{number}", "lifecycleState": "PUBLISHED", **body}
                for number, body in enumerate(network.bodies, start=1)
                if body.get("author") == author
            ]
            page = {"elements": elements[::-1], "paging": {"start": 0, "count": 50, "links": []}}
            return 200, {"Content-Type": "application/json"}, json.dumps(page)

        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.add_callback(self.method, self.url, callback=answer)
            mock.add_callback("GET", self.url, callback=finder)
            yield network


def _x_timeline(mock: responses.RequestsMock, network: HttpNetwork) -> None:
    """X's ``GET /2/users/me`` and ``GET /2/users/:id/tweets``, from the posts received."""
    me = {"data": {"id": "1234", "name": "Kit", "username": "kit"}}
    mock.add("GET", "https://api.twitter.com/2/users/me", json=me)

    def timeline(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        tweets = [
            {
                "id": str(number),
                "text": json.loads(call.body or "{}").get("text", ""),
                "edit_history_tweet_ids": [str(number)],
            }
            for number, call in enumerate(network.calls, start=1)
        ][::-1]
        meta = {"result_count": len(tweets)}
        body = {"data": tweets, "meta": meta} if tweets else {"meta": meta}
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    mock.add_callback("GET", "https://api.twitter.com/2/users/1234/tweets", callback=timeline)


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
        extra=_x_timeline,
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
            rows.append(pytest.param(row, id=f"{case.channel.name}:{row.id}"))
    return rows


@pytest.mark.parametrize("row", _rows())
def test_conformance(row: Check) -> None:
    run_check(row)


class _BlindX(XChannel):
    """Says "no such post" without asking: the kit must catch the second post."""

    def find_published(self, draft, account, *, idempotency_key, since=None):  # type: ignore[no-untyped-def]
        return []


class _ShrugX(XChannel):
    """Cannot tell: the engine would fail the dispatch, so the kit must say so."""

    def find_published(self, draft, account, *, idempotency_key, since=None):  # type: ignore[no-untyped-def]
        return None


def test_the_kit_catches_a_lookup_that_lies_or_cannot_tell() -> None:
    blind = run_conformance(replace(X_CASE, channel=_BlindX))
    assert "2 posts" in blind["publish/idempotent"]
    assert "lookup/finds-what-another-instance-posted" in blind
    shrug = run_conformance(replace(X_CASE, channel=_ShrugX))
    assert "cannot tell" in shrug["publish/idempotent"]
    assert "cannot tell" in shrug["lookup/finds-what-another-instance-posted"]
    assert "lookup/nothing-before-publish" not in shrug
