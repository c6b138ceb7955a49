"""The conformance kit's fake network for channels that speak HTTP through ``requests``.

The ``responses`` library intercepts every ``requests`` call in the block, so the kit
can make the publish endpoint answer 200, 4xx, 5xx, 429 with Retry-After, time out or
drop the connection, and nothing ever leaves the machine. Install it with the channel's
test extra (``responses>=0.25``).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import responses

from partnercast.plugins.testing_failures import HTTP_FAILURES, Failure

BodyFactory = Callable[[requests.PreparedRequest, int], Any]


def _default_body(_request: requests.PreparedRequest, number: int) -> Any:
    return {"id": f"kit-post-{number}"}


@dataclass
class HttpNetwork:
    """The successful publish calls the fake received, and the posts they made.

    With a ``dedupe_header`` (an Idempotency-Key the real API honours), calls that
    repeat a header value return the first answer again and make no new post, as the
    real API would; without one, every call is a new post.
    """

    dedupe_header: str | None = None
    calls: list[requests.PreparedRequest] = field(default_factory=list)
    answers: dict[str, tuple[int, dict[str, str], str]] = field(default_factory=dict)
    post_count: int = 0

    @property
    def posts(self) -> int:
        return self.post_count

    def answer(
        self, request: requests.PreparedRequest, status: int, body: BodyFactory
    ) -> tuple[int, dict[str, str], str]:
        self.calls.append(request)
        key = request.headers.get(self.dedupe_header, "") if self.dedupe_header else ""
        if key and key in self.answers:
            return self.answers[key]
        self.post_count += 1
        reply = (
            status,
            {"Content-Type": "application/json"},
            json.dumps(body(request, self.post_count)),
        )
        if key:
            self.answers[key] = reply
        return reply


@dataclass
class HttpTransport:
    """Fail or succeed the channel's publish endpoint ``method url`` (url may be a regex).

    ``ok_body(request, number)`` builds the JSON of a successful answer (default
    ``{"id": "kit-post-<n>"}``). ``extra(mock, network)`` registers any other endpoint
    the channel calls (a token exchange, a lookup by client-side id that answers from
    ``network.calls``). ``overrides`` are account settings that point the channel at the
    fake (its base URL, say).
    """

    method: str
    url: str | re.Pattern[str]
    ok_status: int = 200
    ok_body: BodyFactory = _default_body
    dedupe_header: str | None = None
    extra: Callable[[responses.RequestsMock, HttpNetwork], None] | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    failures: tuple[Failure, ...] = HTTP_FAILURES

    def account_overrides(self) -> Mapping[str, Any]:
        return self.overrides

    @contextlib.contextmanager
    def succeeding(self) -> Iterator[HttpNetwork]:
        network = HttpNetwork(self.dedupe_header)
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.add_callback(
                self.method,
                self.url,
                callback=lambda request: network.answer(request, self.ok_status, self.ok_body),
            )
            if self.extra:
                self.extra(mock, network)
            yield network

    @contextlib.contextmanager
    def failing(self, failure: Failure) -> Iterator[None]:
        network = HttpNetwork(self.dedupe_header)
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            mock.add(self._failure_response(failure))
            if self.extra:
                self.extra(mock, network)
            yield

    def _failure_response(self, failure: Failure) -> responses.Response:
        if failure.kind == "timeout":
            body: Any = requests.exceptions.ReadTimeout("kit: the server did not answer in time")
            return responses.Response(self.method, self.url, body=body)
        if failure.kind == "dropped":
            body = requests.exceptions.ConnectionError("kit: the connection was dropped")
            return responses.Response(self.method, self.url, body=body)
        return responses.Response(
            self.method,
            self.url,
            status=failure.status or 500,
            headers=dict(failure.headers),
            json={"error": {"code": failure.status, "message": f"kit: {failure.id}"}},
        )


__all__ = ["HttpNetwork", "HttpTransport"]
