"""A local stand-in for the X and LinkedIn APIs: answers like them, posts nowhere.

It serves, on one local port, what the social channels call, shaped as each API's
documentation shows:

* X: ``POST /2/tweets`` -> 201 ``{"data": {"id": ..., "text": ...}}``; ``GET /2/tweets?ids=``
  -> ``{"data": [{"id", "text", "public_metrics"}]}``; 401 with X's problem body when the
  request carries no OAuth signature. Base URL (``XAccount.api_base_url``): ``x_base_url``.
* LinkedIn: ``POST /rest/posts`` -> 201 with ``x-restli-id: urn:li:share:...`` and no body;
  401 without a bearer token, 400 without the version headers, each with LinkedIn's error
  body. Base URL (``LinkedInAccount.api_base_url``): ``linkedin_base_url``.

Everything it receives is recorded (``requests``); credentials are recorded only as
"present". ``fail_next(path, status)`` makes the next call to a path fail, for demos of
retries. Start it with ``with SocialStandIn() as standin:`` or from a shell:
``python -m partnercast.channels.social.standin --port 8790``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

X_POSTS = "/2/tweets"
LINKEDIN_POSTS = "/rest/posts"


@dataclass(frozen=True)
class Received:
    """One request the stand-in answered (the credentials themselves are not kept)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Failure:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Received] = []
        self.tweets: dict[str, str] = {}
        self.failures: dict[str, list[Failure]] = {}
        self.ids = itertools.count(1_850_000_000_000_000_001)


class SocialStandIn:
    """The stand-in server, in a daemon thread of this process."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._state = _State()
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="social-standin", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def x_base_url(self) -> str:
        return self.url

    @property
    def linkedin_base_url(self) -> str:
        return self.url + "/rest"

    @property
    def requests(self) -> list[Received]:
        with self._state.lock:
            return list(self._state.requests)

    def posts(self, path: str) -> list[Received]:
        """The POSTs received on ``path`` (``X_POSTS`` or ``LINKEDIN_POSTS``)."""
        return [r for r in self.requests if r.method == "POST" and r.path == path]

    def fail_next(
        self, path: str, status: int, *, retry_after: int | None = None, message: str = ""
    ) -> None:
        """Answer the next request to ``path`` with ``status`` and that API's error body."""
        body = _error_body(path, status, message or f"the stand-in was told to answer {status}")
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        with self._state.lock:
            self._state.failures.setdefault(path, []).append(Failure(status, body, headers))

    def start(self) -> SocialStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SocialStandIn:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _error_body(path: str, status: int, message: str) -> dict[str, Any]:
    if path.startswith("/rest/"):
        return {"status": status, "serviceErrorCode": 0, "code": "STANDIN", "message": message}
    return {"title": "Stand-in error", "detail": message, "type": "about:blank", "status": status}


class _Handler(BaseHTTPRequestHandler):
    state: _State
    server_version = "partnercast-social-standin/1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: what was received is in ``requests``."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        body = self._body()
        self._record(method, parts.path, parse_qs(parts.query), body)
        failure = self._failure(parts.path)
        if failure is not None:
            self._json(failure.status, failure.body, failure.headers)
        elif (method, parts.path) == ("POST", X_POSTS):
            self._create_tweet(body)
        elif (method, parts.path) == ("GET", X_POSTS):
            self._lookup_tweets(parse_qs(parts.query))
        elif (method, parts.path) == ("POST", LINKEDIN_POSTS):
            self._create_linkedin_post(body)
        else:
            self._json(404, _error_body(parts.path, 404, f"no route {method} {parts.path}"))

    # --- X --------------------------------------------------------------------------------

    def _create_tweet(self, body: Any) -> None:
        if not self.headers.get("Authorization", "").startswith("OAuth "):
            self._json(401, _x_unauthorized())
            return
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str) or not text:
            self._json(400, _x_invalid("text", "The `text` field is required"))
            return
        with self.state.lock:
            tweet_id = str(next(self.state.ids))
            self.state.tweets[tweet_id] = text
        data = {"id": tweet_id, "text": text, "edit_history_tweet_ids": [tweet_id]}
        self._json(201, {"data": data})

    def _lookup_tweets(self, query: dict[str, list[str]]) -> None:
        if not self.headers.get("Authorization", "").startswith("OAuth "):
            self._json(401, _x_unauthorized())
            return
        ids = [i for value in query.get("ids", []) for i in value.split(",") if i]
        with self.state.lock:
            found = [(i, self.state.tweets[i]) for i in ids if i in self.state.tweets]
        metrics = {
            "retweet_count": 0,
            "reply_count": 0,
            "like_count": 0,
            "quote_count": 0,
            "bookmark_count": 0,
            "impression_count": 0,
        }
        data = [
            {"id": i, "text": t, "edit_history_tweet_ids": [i], "public_metrics": metrics}
            for i, t in found
        ]
        self._json(200, {"data": data} if data else {"errors": [{"title": "Not Found Error"}]})

    # --- LinkedIn -------------------------------------------------------------------------

    def _create_linkedin_post(self, body: Any) -> None:
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            self._json(401, _linkedin_error(401, "INVALID_ACCESS_TOKEN", "Invalid access token"))
            return
        if not self.headers.get("LinkedIn-Version"):
            self._json(400, _linkedin_error(400, "VERSION_MISSING", "A version must be present."))
            return
        missing = [
            key
            for key in ("author", "commentary", "visibility", "distribution", "lifecycleState")
            if not isinstance(body, dict) or key not in body
        ]
        if missing:
            message = "".join(
                f"ERROR :: /{key} :: field is required but not found and has no default value\n"
                for key in missing
            )
            self._json(422, {"message": message, "status": 422})
            return
        with self.state.lock:
            urn = f"urn:li:share:{next(self.state.ids)}"
        self.send_response(201)
        self.send_header("x-restli-id", urn)
        self.send_header("Content-Length", "0")
        self.end_headers()

    # --- plumbing -------------------------------------------------------------------------

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode("utf-8", errors="replace")

    def _record(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> None:
        headers = dict(self.headers.items())
        if "Authorization" in headers:
            headers["Authorization"] = headers["Authorization"].split(" ", 1)[0] + " (present)"
        with self.state.lock:
            self.state.requests.append(Received(method, path, query, headers, body))

    def _failure(self, path: str) -> Failure | None:
        with self.state.lock:
            queued = self.state.failures.get(path)
            return queued.pop(0) if queued else None

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _x_unauthorized() -> dict[str, Any]:
    return {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"}


def _x_invalid(parameter: str, message: str) -> dict[str, Any]:
    return {
        "errors": [{"parameters": {parameter: []}, "message": message}],
        "title": "Invalid Request",
        "detail": "One or more parameters to your request was invalid.",
        "type": "https://api.twitter.com/2/problems/invalid-request",
    }


def _linkedin_error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"status": status, "serviceErrorCode": 65600, "code": code, "message": message}


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in in the foreground until interrupted."""
    parser = argparse.ArgumentParser(description="Local stand-in for the X and LinkedIn APIs")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    options = parser.parse_args(argv)
    with SocialStandIn(options.host, options.port) as standin:
        print("Social API stand-in (not X, not LinkedIn: nothing is posted anywhere)")
        print(f"  X:        XAccount(api_base_url={standin.x_base_url!r})")
        print(f"  LinkedIn: LinkedInAccount(api_base_url={standin.linkedin_base_url!r})")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
