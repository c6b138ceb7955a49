"""A local stand-in for the X and LinkedIn APIs: answers like them, posts nowhere.

It serves, on one local port, what the social channels call, shaped as each API's
documentation shows:

* X: ``POST /2/tweets`` -> 201 ``{"data": {"id": ..., "text": ...}}``; ``GET /2/tweets?ids=``
  -> ``{"data": [{"id", "text", "public_metrics"}]}``; ``GET /2/users/me`` -> ``{"data":
  {"id", "name", "username"}}``; ``GET /2/users/:id/tweets`` (``start_time``,
  ``max_results``, ``pagination_token``) -> ``{"data": [{"id", "text", "created_at",
  "entities"}], "meta": {"result_count", "newest_id", "oldest_id", "next_token"}}``, newest
  first. As X does, answers carry each link shortened to ``https://t.co/...`` with
  ``entities.urls[].expanded_url``. The user is the numeric prefix of the OAuth access
  token (as X's tokens are ``<user id>-...``). 401 with X's problem body when the request
  carries no OAuth signature. Base URL (``XAccount.api_base_url``): ``x_base_url``.
* LinkedIn: ``POST /rest/posts`` -> 201 with ``x-restli-id: urn:li:share:...`` and no body;
  ``GET /rest/posts?q=author&author=<urn>`` (``X-RestLi-Method: FINDER``) -> ``{"elements":
  [{"id", "author", "commentary", "createdAt", "lifecycleState", ...}], "paging"}``, newest
  first; ``GET /rest/socialActions/<urn>`` -> ``{"likesSummary", "commentsSummary",
  "target"}``; ``GET /rest/organizationalEntityShareStatistics?q=organizationalEntity&
  organizationalEntity=<org>&shares=List(...)`` -> ``{"elements": [{"totalShareStatistics",
  "share", "organizationalEntity"}], "paging"}``. 401 without a bearer token, 400 without
  the version headers, each with LinkedIn's error body. Base URL
  (``LinkedInAccount.api_base_url``): ``linkedin_base_url``.

Everything it receives is recorded (``requests``); credentials are recorded only as
"present". ``fail_next(path, status)`` makes the next call to a path fail, for demos of
retries; ``drop_after_post(path)`` makes the next post on a path happen and then drops the
connection unanswered (the uncertain case). ``set_metrics(post_id, **counts)`` sets what
the metrics endpoints answer for a post. Start it with ``with SocialStandIn() as
standin:`` or from a shell: ``python -m partnercast.demo.social_standin --port 8790``.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

X_POSTS = "/2/tweets"
X_ME = "/2/users/me"
X_TIMELINE = re.compile(r"^/2/users/(\d+)/tweets$")
LINKEDIN_POSTS = "/rest/posts"
LINKEDIN_SOCIAL_ACTIONS = "/rest/socialActions/"
LINKEDIN_SHARE_STATISTICS = "/rest/organizationalEntityShareStatistics"
_URL = re.compile(r"https?://[^\s]+")
_OAUTH_TOKEN = re.compile(r'oauth_token="([^"]*)"')
X_METRICS = (
    "retweet_count",
    "reply_count",
    "like_count",
    "quote_count",
    "bookmark_count",
    "impression_count",
)


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


@dataclass(frozen=True)
class Post:
    """A post the stand-in holds: who made it, its text as received, when."""

    id: str
    author: str
    text: str
    created_at: datetime


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[Received] = []
        self.tweets: dict[str, str] = {}
        self.x_posts: list[Post] = []
        self.linkedin_posts: list[Post] = []
        self.metrics: dict[str, dict[str, int]] = {}
        self.failures: dict[str, list[Failure]] = {}
        self.drops: set[str] = set()
        self.ids = itertools.count(1_850_000_000_000_000_001)


class SocialStandIn:
    """The stand-in server, in a daemon thread of this process."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._state = _State()
        handler = type("Handler", (_Handler,), {"state": self._state})
        self._host = host
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="social-standin", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_port}"

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

    def x_posts(self) -> list[Post]:
        """The posts made on X, oldest first."""
        with self._state.lock:
            return list(self._state.x_posts)

    def linkedin_posts(self) -> list[Post]:
        """The posts made on LinkedIn, oldest first."""
        with self._state.lock:
            return list(self._state.linkedin_posts)

    def set_metrics(self, post_id: str, **counts: int) -> None:
        """What the metrics endpoints answer for ``post_id`` (X's or LinkedIn's names)."""
        with self._state.lock:
            self._state.metrics.setdefault(post_id, {}).update(counts)

    def drop_after_post(self, path: str) -> None:
        """Make the next POST to ``path`` create its post, then drop the connection."""
        with self._state.lock:
            self._state.drops.add(path)

    def fail_next(
        self,
        path: str,
        status: int,
        *,
        retry_after: int | str | None = None,
        message: str = "",
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next request to ``path`` with ``status`` and that API's error body
        (or ``body``), plus a Retry-After (seconds or an HTTP-date) and other ``headers``."""
        if body is None:
            text = message or f"the stand-in was told to answer {status}"
            body = _error_body(path, status, text)
        headers = dict(headers or {})
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
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
        elif (method, parts.path) == ("GET", X_ME):
            self._x_me()
        elif method == "GET" and (timeline := X_TIMELINE.match(parts.path)):
            self._x_timeline(timeline.group(1), parse_qs(parts.query))
        elif (method, parts.path) == ("POST", LINKEDIN_POSTS):
            self._create_linkedin_post(body)
        elif (method, parts.path) == ("GET", LINKEDIN_POSTS):
            self._linkedin_posts_by_author(parse_qs(parts.query))
        elif method == "GET" and parts.path.startswith(LINKEDIN_SOCIAL_ACTIONS):
            self._linkedin_social_actions(unquote(parts.path[len(LINKEDIN_SOCIAL_ACTIONS) :]))
        elif (method, parts.path) == ("GET", LINKEDIN_SHARE_STATISTICS):
            self._linkedin_share_statistics(parse_qs(parts.query))
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
            self.state.x_posts.append(Post(tweet_id, self._x_user(), text, _now()))
            dropped = self._dropped(X_POSTS)
        if dropped:
            return
        data = {"id": tweet_id, "text": _shortened(text)[0], "edit_history_tweet_ids": [tweet_id]}
        self._json(201, {"data": data})

    def _x_user(self) -> str:
        """The user id X would find: the numeric prefix of the OAuth access token."""
        match = _OAUTH_TOKEN.search(self.headers.get("Authorization", ""))
        token = unquote(match.group(1)) if match else ""
        prefix = token.split("-", 1)[0]
        if prefix.isdigit():
            return prefix
        return str(int(hashlib.sha1(token.encode()).hexdigest()[:12], 16))  # stable per token

    def _x_me(self) -> None:
        if not self.headers.get("Authorization", "").startswith("OAuth "):
            self._json(401, _x_unauthorized())
            return
        user = self._x_user()
        self._json(
            200, {"data": {"id": user, "name": f"Stand-in {user}", "username": f"standin{user}"}}
        )

    def _x_timeline(self, user: str, query: dict[str, list[str]]) -> None:
        if not self.headers.get("Authorization", "").startswith("OAuth "):
            self._json(401, _x_unauthorized())
            return
        start = _x_time(query.get("start_time", [""])[0])
        size = max(5, min(100, int(query.get("max_results", ["10"])[0])))
        offset = int(query.get("pagination_token", ["0"])[0] or 0)
        with self.state.lock:
            posts = [
                p
                for p in reversed(self.state.x_posts)
                if p.author == user and (start is None or p.created_at >= start)
            ]
        page = posts[offset : offset + size]
        data = []
        for post in page:
            text, urls = _shortened(post.text)
            tweet: dict[str, Any] = {
                "id": post.id,
                "text": text,
                "created_at": post.created_at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "edit_history_tweet_ids": [post.id],
            }
            if urls:
                tweet["entities"] = {"urls": urls}
            data.append(tweet)
        meta: dict[str, Any] = {"result_count": len(data)}
        if data:
            meta.update(newest_id=data[0]["id"], oldest_id=data[-1]["id"])
        if offset + size < len(posts):
            meta["next_token"] = str(offset + size)
        self._json(200, {"data": data, "meta": meta} if data else {"meta": meta})

    def _lookup_tweets(self, query: dict[str, list[str]]) -> None:
        if not self.headers.get("Authorization", "").startswith("OAuth "):
            self._json(401, _x_unauthorized())
            return
        ids = [i for value in query.get("ids", []) for i in value.split(",") if i]
        with self.state.lock:
            found = [(i, self.state.tweets[i]) for i in ids if i in self.state.tweets]
            counts = {i: dict(self.state.metrics.get(i, {})) for i, _ in found}
        data = [
            {
                "id": i,
                "text": _shortened(t)[0],
                "edit_history_tweet_ids": [i],
                "public_metrics": {name: counts[i].get(name, 0) for name in X_METRICS},
            }
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
            post = Post(urn, str(body["author"]), str(body["commentary"]), _now())
            self.state.linkedin_posts.append(post)
            dropped = self._dropped(LINKEDIN_POSTS)
        if dropped:
            return
        self.send_response(201)
        self.send_header("x-restli-id", urn)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _linkedin_checked(self, finder: bool = False) -> bool:
        if not self.headers.get("Authorization", "").startswith("Bearer "):
            self._json(401, _linkedin_error(401, "INVALID_ACCESS_TOKEN", "Invalid access token"))
            return False
        if not self.headers.get("LinkedIn-Version"):
            self._json(400, _linkedin_error(400, "VERSION_MISSING", "A version must be present."))
            return False
        if finder and self.headers.get("X-RestLi-Method", "").upper() != "FINDER":
            self._json(400, _linkedin_error(400, "ILLEGAL_ARGUMENT", "Unsupported method"))
            return False
        return True

    def _linkedin_posts_by_author(self, query: dict[str, list[str]]) -> None:
        if not self._linkedin_checked(finder=True):
            return
        if query.get("q") != ["author"] or not query.get("author"):
            self._json(400, _linkedin_error(400, "ILLEGAL_ARGUMENT", "q=author and author"))
            return
        author = query["author"][0]
        start = int(query.get("start", ["0"])[0])
        count = int(query.get("count", ["10"])[0])
        with self.state.lock:
            posts = [p for p in reversed(self.state.linkedin_posts) if p.author == author]
        elements = [
            {
                "id": post.id,
                "author": post.author,
                "commentary": post.text,
                "visibility": "PUBLIC",
                "lifecycleState": "PUBLISHED",
                "createdAt": int(post.created_at.timestamp() * 1000),
                "lastModifiedAt": int(post.created_at.timestamp() * 1000),
                "publishedAt": int(post.created_at.timestamp() * 1000),
                "distribution": {"feedDistribution": "MAIN_FEED"},
                "isReshareDisabledByAuthor": False,
            }
            for post in posts[start : start + count]
        ]
        paging = {"start": start, "count": count, "links": [], "total": len(posts)}
        self._json(200, {"elements": elements, "paging": paging})

    def _linkedin_social_actions(self, urn: str) -> None:
        if not self._linkedin_checked():
            return
        with self.state.lock:
            known = any(p.id == urn for p in self.state.linkedin_posts)
            counts = dict(self.state.metrics.get(urn, {}))
        if not known:
            self._json(404, _linkedin_error(404, "NOT_FOUND", f"no such entity {urn}"))
            return
        likes, comments = counts.get("like_count", 0), counts.get("comment_count", 0)
        self._json(
            200,
            {
                "likesSummary": {
                    "selectedLikes": [],
                    "aggregatedTotalLikes": likes,
                    "likedByCurrentUser": False,
                    "totalLikes": likes,
                },
                "commentsSummary": {
                    "selectedComments": [],
                    "totalFirstLevelComments": comments,
                    "commentsState": "OPEN",
                    "aggregatedTotalComments": comments,
                },
                "target": urn,
                "$URN": f"urn:li:socialActions:{urn}",
            },
        )

    def _linkedin_share_statistics(self, query: dict[str, list[str]]) -> None:
        if not self._linkedin_checked():
            return
        organization = query.get("organizationalEntity", [""])[0]
        if query.get("q") != ["organizationalEntity"] or not organization:
            self._json(400, _linkedin_error(400, "ILLEGAL_ARGUMENT", "organizationalEntity"))
            return
        wanted = {kind: _restli_list(query.get(kind, [""])[0]) for kind in ("shares", "ugcPosts")}
        with self.state.lock:
            posts = {p.id: p for p in self.state.linkedin_posts if p.author == organization}
            counts = {urn: dict(self.state.metrics.get(urn, {})) for urn in posts}
        elements = []
        for kind, urns in wanted.items():
            for urn in urns:
                if urn not in posts:
                    continue
                got = counts[urn]
                stats = {
                    "uniqueImpressionsCount": got.get("impression_count", 0),
                    "shareCount": got.get("share_count", 0),
                    "engagement": 0.0,
                    "clickCount": got.get("click_count", 0),
                    "likeCount": got.get("like_count", 0),
                    "impressionCount": got.get("impression_count", 0),
                    "commentCount": got.get("comment_count", 0),
                }
                key = "share" if kind == "shares" else "ugcPost"
                elements.append(
                    {"totalShareStatistics": stats, key: urn, "organizationalEntity": organization}
                )
        paging = {"start": 0, "count": len(elements), "links": []}
        self._json(200, {"elements": elements, "paging": paging})

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

    def _dropped(self, path: str) -> bool:
        """Under the lock: drop this answer (the post exists, the client never hears)."""
        if path not in self.state.drops:
            return False
        self.state.drops.discard(path)
        self.close_connection = True
        return True

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


def _now() -> datetime:
    return datetime.now(UTC)


def _x_time(value: str) -> datetime | None:
    """X's RFC 3339 ``YYYY-MM-DDTHH:mm:ssZ`` (fractions allowed)."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _shortened(text: str) -> tuple[str, list[dict[str, Any]]]:
    """``text`` with each link as X shows it (``https://t.co/...``), and ``entities.urls``."""
    urls: list[dict[str, Any]] = []
    pieces: list[str] = []
    position = 0
    for match in _URL.finditer(text):
        pieces.append(text[position : match.start()])
        short = "https://t.co/" + hashlib.sha1(match.group(0).encode()).hexdigest()[:10]
        start = len("".join(pieces))
        pieces.append(short)
        display = match.group(0).split("//", 1)[1]
        urls.append(
            {
                "start": start,
                "end": start + len(short),
                "url": short,
                "expanded_url": match.group(0),
                "display_url": display[:25] + ("…" if len(display) > 25 else ""),
            }
        )
        position = match.end()
    pieces.append(text[position:])
    escaped = "".join(pieces).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped, urls


def _restli_list(value: str) -> list[str]:
    """Rest.li ``List(a,b)`` (already percent-decoded once) as its items."""
    if not (value.startswith("List(") and value.endswith(")")):
        return []
    return [unquote(item) for item in value[5:-1].split(",") if item]


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
