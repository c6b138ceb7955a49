"""A local stand-in for the Google Ads API and Google's OAuth token endpoint.

For demos and tests, never for production: it answers the three calls the search channel
makes, shaped like Google's documented responses, and records what it received::

    with GoogleAdsStandIn() as standin:
        account = standin.account()          # a SearchAccount pointed at the stand-in
        SearchChannel().publish(draft, account, idempotency_key="k1")
        standin.received                     # [Received(path, headers, body), ...]

- ``POST /token`` (form, ``grant_type=refresh_token``) -> ``{"access_token", "expires_in",
  "token_type"}``; a refresh token ``"revoked"`` gets ``400 invalid_grant``.
- ``POST /<version>/customers/<cid>/googleAds:search`` (``{"query"}``) -> ``{"results":
  [{"campaign": {"resourceName", "campaignBudget"}}]}`` for ``campaign.name = '...'``.
- ``POST /<version>/customers/<cid>/googleAds:searchStream`` (``{"query"}``, GAQL with
  ``campaign.resource_name IN ('...')``) -> a JSON array of one batch ``[{"results":
  [{"campaign": {"resourceName"}, "metrics": {"impressions", "clicks", "costMicros",
  "conversions"}}], "fieldMask", "requestId"}]`` (int64 values as strings, as Google's
  JSON mapping has them); ``set_metrics(resource_name, ...)`` sets the numbers.
- ``POST /<version>/customers/<cid>/googleAds:mutate`` (``{"mutateOperations"}``) ->
  ``{"mutateOperationResponses": [{"campaignBudgetResult": {"resourceName": ...}}, ...]}``,
  temporary (negative) ids replaced by real ones; a campaign name used before gets
  ``400`` with a ``GoogleAdsFailure`` (``campaignError: DUPLICATE_CAMPAIGN_NAME``).

Calls without ``Authorization: Bearer`` and ``developer-token`` get ``401 UNAUTHENTICATED``.
``fail_next(call, status, ...)`` makes the next ``token``, ``search``, ``searchStream`` or
``mutate`` call answer an error shaped like Google's (a ``google.rpc.Status`` body, or
OAuth's ``{"error", "error_description"}`` for the token endpoint), with a Retry-After.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from partnercast.channels.search.models import SearchAccount

RESULT_KEYS = {
    "campaignBudgetOperation": ("campaignBudgetResult", "campaignBudgets"),
    "campaignOperation": ("campaignResult", "campaigns"),
    "adGroupOperation": ("adGroupResult", "adGroups"),
    "adGroupAdOperation": ("adGroupAdResult", "adGroupAds"),
    "adGroupCriterionOperation": ("adGroupCriterionResult", "adGroupCriteria"),
    "campaignCriterionOperation": ("campaignCriterionResult", "campaignCriteria"),
}
_API_PATH = re.compile(r"^/(v\d+)/customers/(\d+)/googleAds:(searchStream|search|mutate)$")
_RESOURCE_IN = re.compile(r"campaign\.resource_name\s+IN\s*\(([^)]*)\)", re.I)
_NAME_QUERY = re.compile(r"campaign\.name\s*=\s*'((?:[^'\\]|\\.)*)'")


@dataclass
class Received:
    """One request the stand-in answered (credentials in headers are kept as "<set>")."""

    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    received: list[Received] = field(default_factory=list)
    campaigns: dict[str, dict[str, str]] = field(default_factory=dict)
    next_id: int = 1000
    tokens: int = 0
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, list[_Failure]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Failure:
    status: int
    body: Any
    headers: dict[str, str]


class GoogleAdsStandIn:
    """The stand-in server, on ``host`` and a free port, answering from a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = _State()
        self._host = host
        self._server = ThreadingHTTPServer((host, port), _handler(self.state))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL to use as ``SearchAccount.api_base``."""
        return f"http://{self._host}:{self._server.server_port}"

    @property
    def oauth_url(self) -> str:
        return f"{self.url}/token"

    @property
    def received(self) -> list[Received]:
        with self.state.lock:
            return list(self.state.received)

    @property
    def campaigns(self) -> dict[str, dict[str, str]]:
        """Created campaigns by name: their resource names (campaign, budget, ...)."""
        with self.state.lock:
            return {name: dict(ids) for name, ids in self.state.campaigns.items()}

    def set_metrics(
        self,
        campaign: str,
        *,
        impressions: int = 0,
        clicks: int = 0,
        cost_micros: int = 0,
        conversions: float = 0.0,
    ) -> None:
        """What searchStream answers for the campaign ``campaign`` (its resource name)."""
        with self.state.lock:
            self.state.metrics[campaign] = {
                "impressions": str(impressions),
                "clicks": str(clicks),
                "costMicros": str(cost_micros),
                "conversions": float(conversions),
            }

    def fail_next(
        self,
        call: str,
        status: int,
        *,
        rpc_status: str = "",
        message: str = "",
        body: Any = None,
        retry_after: int | str | None = None,
    ) -> None:
        """Answer the next ``call`` (token, search, searchStream, mutate) with ``status``.

        The body is Google's error for an API call (``rpc_status`` such as
        ``UNAUTHENTICATED``, ``RESOURCE_EXHAUSTED``, ``UNAVAILABLE``), or ``body`` as given.
        """
        if call not in ("token", "search", "searchStream", "mutate"):
            raise ValueError(f"unknown call {call!r}")
        if body is None:
            body = _error(status, rpc_status or "UNKNOWN", message or f"told to answer {status}")
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        with self.state.lock:
            self.state.failures.setdefault(call, []).append(_Failure(status, body, headers))

    @property
    def tokens_issued(self) -> int:
        """How many access tokens the token endpoint has handed out."""
        with self.state.lock:
            return self.state.tokens

    def account(self, **overrides: Any) -> SearchAccount:
        """A SearchAccount pointed at the stand-in, with placeholder credentials."""
        values: dict[str, Any] = {
            "customer_id": "123-456-7890",
            "developer_token": "standin-developer-token",
            "client_id": "standin-client.apps.example",
            "client_secret": "standin-client-secret",
            "refresh_token": "standin-refresh-token",
            "api_base": self.url,
            "oauth_url": self.oauth_url,
            **overrides,
        }
        return SearchAccount(**values)

    def start(self) -> GoogleAdsStandIn:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="google-ads-standin", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> GoogleAdsStandIn:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "GoogleAdsStandIn/1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet: no stderr noise
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8", "replace")
            headers = {k.lower(): _redacted(k, v) for k, v in self.headers.items()}
            if self.path == "/token":
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                self._record(headers, {k: v for k, v in form.items() if k == "grant_type"})
                if (failure := _next_failure(state, "token")) is not None:
                    self._send(failure.status, failure.body, failure.headers)
                    return
                self._send(*_token(state, form))
                return
            match = _API_PATH.match(self.path)
            try:
                body = json.loads(raw or "{}")
            except ValueError:
                body = None
            self._record(headers, body)
            failure = _next_failure(state, match.group(3)) if match else None
            if failure is not None:
                self._send(failure.status, failure.body, failure.headers)
            elif match is None or not isinstance(body, dict):
                self._send(404, _error(404, "NOT_FOUND", f"no such method {self.path}"))
            elif not self.headers.get("Authorization", "").startswith("Bearer standin-"):
                self._send(401, _error(401, "UNAUTHENTICATED", "missing or invalid token"))
            elif not self.headers.get("developer-token"):
                self._send(401, _error(401, "UNAUTHENTICATED", "missing developer-token"))
            elif match.group(3) == "search":
                self._send(200, _search(state, str(body.get("query", ""))))
            elif match.group(3) == "searchStream":
                self._send(200, _search_stream(state, str(body.get("query", ""))))
            else:
                self._send(*_mutate(state, match.group(2), body.get("mutateOperations") or []))

        def _record(self, headers: dict[str, str], body: Any) -> None:
            with state.lock:
                state.received.append(Received(self.path, headers, body))

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _next_failure(state: _State, call: str) -> _Failure | None:
    with state.lock:
        queued = state.failures.get(call)
        return queued.pop(0) if queued else None


def _redacted(name: str, value: str) -> str:
    return "<set>" if name.lower() in ("authorization", "developer-token") else value


def _token(state: _State, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    if form.get("grant_type") != "refresh_token" or not form.get("refresh_token"):
        return 400, {"error": "unsupported_grant_type"}
    if form.get("refresh_token") == "revoked":
        return 400, {"error": "invalid_grant", "error_description": "Token has been revoked."}
    with state.lock:
        state.tokens += 1
        number = state.tokens
    body = {"access_token": f"standin-access-{number}", "expires_in": 3599}
    return 200, {**body, "token_type": "Bearer", "scope": "https://www.googleapis.com/auth/adwords"}


def _search(state: _State, query: str) -> dict[str, Any]:
    match = _NAME_QUERY.search(query)
    name = re.sub(r"\\(.)", r"\1", match.group(1)) if match else None
    with state.lock:
        found = state.campaigns.get(name) if name is not None else None
    body: dict[str, Any] = {"fieldMask": "campaign.resourceName,campaign.campaignBudget"}
    if found:
        campaign = {"resourceName": found["campaigns"], "campaignBudget": found["campaignBudgets"]}
        body["results"] = [{"campaign": campaign}]
    return body


def _search_stream(state: _State, query: str) -> list[dict[str, Any]]:
    match = _RESOURCE_IN.search(query)
    wanted = re.findall(r"'([^']*)'", match.group(1)) if match else []
    with state.lock:
        known = {ids["campaigns"] for ids in state.campaigns.values()}
        rows = [
            {
                "campaign": {"resourceName": name},
                "metrics": dict(
                    state.metrics.get(name)
                    or {"impressions": "0", "clicks": "0", "costMicros": "0", "conversions": 0.0}
                ),
            }
            for name in wanted
            if name in known
        ]
    mask = "campaign.resourceName,metrics.impressions,metrics.clicks,metrics.costMicros,"
    return [{"results": rows, "fieldMask": mask + "metrics.conversions", "requestId": "standin"}]


def _mutate(state: _State, customer: str, operations: list[Any]) -> tuple[int, dict[str, Any]]:
    with state.lock:
        names: dict[str, str] = {}  # temporary resource name -> real one
        created: dict[str, str] = {}
        responses: list[dict[str, Any]] = []
        campaign_name = ""
        for index, operation in enumerate(operations):
            kind = next(iter(operation), "") if isinstance(operation, dict) else ""
            if kind not in RESULT_KEYS or "create" not in operation[kind]:
                return 400, _failure(index, kind or "operation", "requestError", "UNKNOWN")
            create = operation[kind]["create"]
            result_key, collection = RESULT_KEYS[kind]
            state.next_id += 1
            new_id = str(state.next_id)
            if collection in ("adGroupAds", "adGroupCriteria"):
                parent = names.get(create.get("adGroup", ""), "").rsplit("/", 1)[-1]
                new_id = f"{parent}~{new_id}"
            elif collection == "campaignCriteria":
                parent = names.get(create.get("campaign", ""), "").rsplit("/", 1)[-1]
                new_id = f"{parent}~{new_id}"
            resource = f"customers/{customer}/{collection}/{new_id}"
            if "resourceName" in create:
                names[create["resourceName"]] = resource
            if collection == "campaigns":
                campaign_name = create.get("name", "")
                if campaign_name in state.campaigns:
                    return 400, _failure(
                        index, "campaign_operation", "campaignError", "DUPLICATE_CAMPAIGN_NAME"
                    )
            created.setdefault(collection, resource)
            responses.append({result_key: {"resourceName": resource}})
        if campaign_name:
            state.campaigns[campaign_name] = created
        return 200, {"mutateOperationResponses": responses}


def _error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


def _failure(index: int, field_name: str, error_kind: str, code: str) -> dict[str, Any]:
    body = _error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")
    body["error"]["details"] = [
        {
            "@type": "type.googleapis.com/google.ads.googleads.v21.errors.GoogleAdsFailure",
            "errors": [
                {
                    "errorCode": {error_kind: code},
                    "message": f"stand-in: {code.replace('_', ' ').lower()}",
                    "location": {
                        "fieldPathElements": [
                            {"fieldName": "mutate_operations", "index": index},
                            {"fieldName": field_name},
                        ]
                    },
                }
            ],
            "requestId": "standin",
        }
    ]
    return body
