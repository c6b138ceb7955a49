"""Retries: exponential back-off with full jitter, capped, Retry-After a floor.

Bounds are asserted over many draws from a seeded random source, never exact values.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses
from channels.social.test_uncertain_publish import POSTS_DAY, Digital, digital  # noqa: F401

from partnercast.campaigns.dispatching import (
    MAX_ATTEMPTS,
    RETRY_BASE,
    RETRY_CAP,
    RETRY_MIN,
    retry_delay,
)
from partnercast.channels.search.channel import SearchChannel
from partnercast.channels.social.linkedin import LinkedInAccount, LinkedInChannel
from partnercast.plugins import TransientError
from partnercast.plugins.http import from_headers, retry_after_seconds
from partnercast.plugins.testing import simple_request

DRAWS = 400


def _draws(attempts: int, retry_after: float | None = None, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    return [retry_delay(attempts, retry_after, rng).total_seconds() for _ in range(DRAWS)]


@pytest.mark.parametrize("attempts", range(1, MAX_ATTEMPTS + 1))
def test_the_delay_stays_between_the_floor_and_a_doubling_ceiling(attempts: int) -> None:
    ceiling = min(RETRY_BASE * 2 ** (attempts - 1), RETRY_CAP).total_seconds()
    delays = _draws(attempts)
    assert min(delays) >= RETRY_MIN.total_seconds()
    assert max(delays) <= ceiling
    # jitter: spread over the range, not one value (a herd would come back at once)
    assert max(delays) - min(delays) > 0.5 * (ceiling - RETRY_MIN.total_seconds())
    assert len({round(d, 3) for d in delays}) > DRAWS * 0.9


def test_the_ceiling_grows_then_stops_at_the_cap() -> None:
    tops = [max(_draws(attempts)) for attempts in (1, 2, 3, 4)]
    assert tops == sorted(tops) and tops[-1] > 3 * tops[0]
    assert max(_draws(40)) <= RETRY_CAP.total_seconds()
    assert max(_draws(40)) > 0.9 * RETRY_CAP.total_seconds()


@pytest.mark.parametrize("retry_after", [1.0, 120.0, 299.0, 3600.0, 86_400.0])
def test_retry_after_is_a_floor_that_jitter_never_shortens(retry_after: float) -> None:
    for attempts in (1, 3, MAX_ATTEMPTS):
        delays = _draws(attempts, retry_after)
        assert min(delays) >= retry_after
        ceiling = min(RETRY_BASE * 2 ** (attempts - 1), RETRY_CAP).total_seconds()
        assert max(delays) <= max(retry_after, ceiling)


def test_retry_after_in_both_forms() -> None:
    now = datetime(2026, 10, 21, 7, 0, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT", now) == 28 * 60
    assert retry_after_seconds("Wed, 21 Oct 2026 06:00:00 GMT", now) == 0.0  # past: now
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("", now) is None and retry_after_seconds(None, now) is None
    assert retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT", None) is None  # no Date


def test_an_answer_without_a_date_leaves_an_http_date_to_the_back_off() -> None:
    assert from_headers({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None
    assert from_headers({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT", "Date": ANSWERED}) == (
        28 * 60
    )
    assert from_headers({"Retry-After": "30"}) == 30.0


ANSWERED = "Wed, 21 Oct 2026 07:00:00 GMT"  # the answer's own Date: the server's clock


@responses.activate
def test_channels_read_an_http_date_retry_after() -> None:
    responses.add(
        "POST",
        "https://api.linkedin.com/rest/posts",
        status=429,
        headers={"Retry-After": "Wed, 21 Oct 2026 07:10:00 GMT", "Date": ANSWERED},
        json={"status": 429, "code": "TOO_MANY_REQUESTS", "message": "Throttled"},
    )
    account = LinkedInAccount(access_token="AQV-token-12345678", author_urn="urn:li:person:1")
    channel = LinkedInChannel()
    draft = channel.render(simple_request("linkedin", {}, "Hybrid cloud in 45 days."))
    with pytest.raises(TransientError) as raised:
        channel.publish(draft, account, idempotency_key="k")
    assert raised.value.retry_after == 600


def test_google_ads_reads_an_http_date_retry_after() -> None:
    from partnercast.channels.search.googleads import api_error

    response = requests.Response()
    response.status_code = 429
    response.headers["Retry-After"] = "Wed, 21 Oct 2026 07:02:00 GMT"
    response.headers["Date"] = ANSWERED
    error = api_error(429, {"error": {"status": "RESOURCE_EXHAUSTED"}}, response)
    assert isinstance(error, TransientError)
    assert error.retry_after == 120
    assert SearchChannel.supports_metrics()


def test_a_rate_limited_post_waits_at_least_what_x_asked(digital: Digital) -> None:  # noqa: F811
    """429 with Retry-After: 4000 from the X stand-in: the dispatch is due no sooner."""
    digital.social.fail_next("/2/tweets", 429, retry_after=4000)
    digital.tick(POSTS_DAY)
    [limited] = [d for d in digital.dispatches("x") if d.state == "pending"]
    wait = limited.scheduled_at.replace(tzinfo=UTC) - POSTS_DAY
    assert timedelta(seconds=4000) <= wait <= timedelta(seconds=4000) + RETRY_BASE
    assert "rate limit" in limited.last_error
    digital.tick(POSTS_DAY + timedelta(seconds=3900))  # not yet
    assert [d.state for d in digital.dispatches("x") if d.id == limited.id] == ["pending"]
    digital.tick(POSTS_DAY + timedelta(seconds=4000) + RETRY_BASE)
    done = [d for d in digital.dispatches("x") if d.state == "done"]
    assert limited.id in {d.id for d in done}
    assert len(digital.social.x_posts()) == len(done)
