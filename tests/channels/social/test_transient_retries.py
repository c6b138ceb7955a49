"""Transient refusals, as each network's docs show them, retried no sooner than asked.

Through the engine's tick against the stand-ins over real HTTP: X's 429 with
``x-rate-limit-reset`` (epoch seconds, X sends no Retry-After) and a 503 with
Retry-After; LinkedIn's 429 with an HTTP-date Retry-After and a 503 with seconds; Google
Ads' 429 ``RESOURCE_EXHAUSTED`` whose ``quotaErrorDetails.retryDelay`` says how long, and
a 503 ``UNAVAILABLE`` with Retry-After. Each dispatch waits at least that long, is not
tried before, then goes out once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from channels.social.test_uncertain_publish import POSTS_DAY, Digital, digital  # noqa: F401

from partnercast.campaigns.dispatching import RETRY_BASE
from partnercast.demo.social_standin import LINKEDIN_POSTS, X_POSTS

WAIT = 1800  # seconds each refusal asks for: longer than the first back-off (5 min)


def _x_429(stage: Digital) -> None:
    reset = str(int(time.time()) + WAIT)
    headers = {"x-rate-limit-limit": "100", "x-rate-limit-remaining": "0"}
    stage.social.fail_next(
        X_POSTS,
        429,
        body={"title": "Too Many Requests", "detail": "Too Many Requests", "status": 429},
        headers={**headers, "x-rate-limit-reset": reset},
    )


def _x_503(stage: Digital) -> None:
    stage.social.fail_next(X_POSTS, 503, retry_after=WAIT, message="Service Unavailable")


def _linkedin_429(stage: Digital) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=WAIT), usegmt=True)
    stage.social.fail_next(
        LINKEDIN_POSTS,
        429,
        retry_after=when,
        body={"status": 429, "code": "TOO_MANY_REQUESTS", "message": "Resource level throttle"},
    )


def _linkedin_503(stage: Digital) -> None:
    stage.social.fail_next(LINKEDIN_POSTS, 503, retry_after=WAIT, message="Service Unavailable")


def _ads_quota(stage: Digital) -> None:
    failure = {
        "@type": "type.googleapis.com/google.ads.googleads.v21.errors.GoogleAdsFailure",
        "errors": [
            {
                "errorCode": {"quotaError": "RESOURCE_TEMPORARILY_EXHAUSTED"},
                "message": "Too many requests. Retry in 1800 seconds.",
                "details": {
                    "quotaErrorDetails": {
                        "rateScope": "ACCOUNT",
                        "rateName": "Requests per service per method",
                        "retryDelay": f"{WAIT}s",
                    }
                },
            }
        ],
        "requestId": "standin",
    }
    body = {
        "error": {
            "code": 429,
            "message": "Resource has been exhausted (e.g. check quota).",
            "status": "RESOURCE_EXHAUSTED",
            "details": [failure],
        }
    }
    stage.ads.fail_next("mutate", 429, body=body)


def _ads_503(stage: Digital) -> None:
    stage.ads.fail_next("mutate", 503, rpc_status="UNAVAILABLE", retry_after=WAIT)


CASES: dict[str, tuple[str, Callable[[Digital], None]]] = {
    "x-429-rate-limit-reset": ("x", _x_429),
    "x-503-retry-after": ("x", _x_503),
    "linkedin-429-http-date": ("linkedin", _linkedin_429),
    "linkedin-503-retry-after": ("linkedin", _linkedin_503),
    "google-ads-429-retry-delay": ("search", _ads_quota),
    "google-ads-503-retry-after": ("search", _ads_503),
}


def _published(stage: Digital, channel: str) -> int:
    if channel == "x":
        return len(stage.social.x_posts())
    if channel == "linkedin":
        return len(stage.social.linkedin_posts())
    return len(stage.ads.campaigns)


@pytest.mark.parametrize("case", list(CASES))
def test_a_transient_refusal_waits_what_the_network_asked_then_goes_once(
    digital: Digital,  # noqa: F811
    case: str,
) -> None:
    channel, refuse = CASES[case]
    refuse(digital)
    digital.tick(POSTS_DAY)

    [waiting] = [d for d in digital.dispatches(channel) if d.state == "pending"]
    assert waiting.last_error.startswith("retrying:"), waiting.last_error
    wait = waiting.scheduled_at.replace(tzinfo=UTC) - POSTS_DAY
    asked = timedelta(seconds=WAIT)
    assert asked - timedelta(seconds=5) <= wait <= asked + RETRY_BASE, (wait, asked)
    done_before = len([d for d in digital.dispatches(channel) if d.state == "done"])
    assert _published(digital, channel) == done_before

    digital.tick(POSTS_DAY + asked - timedelta(seconds=60))  # not yet
    [still] = [d for d in digital.dispatches(channel) if d.id == waiting.id]
    assert still.state == "pending" and still.attempts == 1

    digital.tick(POSTS_DAY + asked + RETRY_BASE + timedelta(seconds=1))
    [after] = [d for d in digital.dispatches(channel) if d.id == waiting.id]
    assert after.state == "done", after.last_error
    done = [d for d in digital.dispatches(channel) if d.state == "done"]
    assert len(done) == done_before + 1
    assert _published(digital, channel) == len(done)  # once: nothing posted twice


def _x_403_duplicate(stage: Digital) -> None:
    stage.social.fail_next(
        X_POSTS,
        403,
        body={
            "detail": "You are not allowed to create a Tweet with duplicate content.",
            "type": "about:blank",
            "title": "Forbidden",
            "status": 403,
        },
    )


def _linkedin_422(stage: Digital) -> None:
    stage.social.fail_next(
        LINKEDIN_POSTS,
        422,
        body={
            "status": 422,
            "code": "UNPROCESSABLE_ENTITY",
            "message": "ERROR :: /commentary :: is too long",
        },
    )


def _ads_invalid(stage: Digital) -> None:
    failure = {
        "@type": "type.googleapis.com/google.ads.googleads.v21.errors.GoogleAdsFailure",
        "errors": [
            {
                "errorCode": {"policyFindingError": "POLICY_FINDING"},
                "message": "The resource has been disapproved since the policy summary includes "
                "policy topics of type PROHIBITED.",
                "location": {"fieldPathElements": [{"fieldName": "mutate_operations"}]},
            }
        ],
    }
    body = {
        "error": {
            "code": 400,
            "message": "Request contains an invalid argument.",
            "status": "INVALID_ARGUMENT",
            "details": [failure],
        }
    }
    stage.ads.fail_next("mutate", 400, body=body)


PERMANENT: dict[str, tuple[str, Callable[[Digital], None], str]] = {
    "x-403-duplicate": ("x", _x_403_duplicate, "duplicate content"),
    "linkedin-422": ("linkedin", _linkedin_422, "is too long"),
    "google-ads-400-policy": ("search", _ads_invalid, "disapproved"),
}


@pytest.mark.parametrize("case", list(PERMANENT))
def test_a_permanent_refusal_fails_the_dispatch_and_opens_one_task(
    digital: Digital,  # noqa: F811
    case: str,
) -> None:
    from sqlmodel import select

    from partnercast.concierge.models import ConciergeTask
    from partnercast.core.tenancy import tenant_session

    channel, refuse, said = PERMANENT[case]
    refuse(digital)
    digital.tick(POSTS_DAY)
    [failed] = [d for d in digital.dispatches(channel) if said in d.last_error]
    assert failed.state == "failed" and failed.attempts == 1
    assert [d for d in digital.dispatches(channel) if d.state == "done"]  # the others went
    digital.tick(POSTS_DAY + timedelta(hours=1))  # nothing retried, no second task
    [again] = [d for d in digital.dispatches(channel) if d.id == failed.id]
    assert again.state == "failed" and again.attempts == 1
    done = [d for d in digital.dispatches(channel) if d.state == "done"]
    assert _published(digital, channel) == len(done)
    with tenant_session(digital.world.engine, digital.world.tenant_id) as session:
        tasks = session.exec(
            select(ConciergeTask).where(ConciergeTask.cause_key == f"dispatch_failed:d{failed.id}")
        ).all()
    [task] = tasks
    assert task.status == "open" and said in f"{task.title} {task.notes}"
