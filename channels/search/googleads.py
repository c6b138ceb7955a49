"""A small Google Ads API client over REST with ``requests``: token, search, mutate.

Only what the search channel needs. Errors become the plugin contract's types:

- 401 or ``UNAUTHENTICATED``, a refused refresh token -> :class:`AuthError`;
- 429 or ``RESOURCE_EXHAUSTED`` -> :class:`TransientError` with ``retry_after`` from the
  Retry-After header, else from the quota error's ``retryDelay``;
- 5xx, 409 (concurrent modification), timeouts, dropped connections -> :class:`TransientError`;
- anything else (400 with a ``GoogleAdsFailure``, 403, 404) -> :class:`PermanentError`
  with the first error's message and field path.

Secrets never reach a log line or an error message: only URLs and operation counts are
logged, and error texts come from Google's JSON body.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from partnercast.channels.search.models import SearchAccount
from partnercast.plugins import AuthError, ChannelError, PermanentError, TransientError
from partnercast.plugins.http import from_headers, json_object

log = logging.getLogger(__name__)

TOKEN_MARGIN_SECONDS = 60


@dataclass
class _Token:
    value: str
    expires_at: float


class TokenCache:
    """Access tokens per OAuth client and refresh token, until a minute before expiry.

    Shared by every client in the process, so that publishing to one account many times
    asks Google's token endpoint once an hour, not once per call. The key holds a digest
    of the credentials, never the credentials themselves.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}

    @staticmethod
    def key(account: SearchAccount) -> str:
        secrets = "\0".join(
            (
                account.oauth_url,
                account.client_id,
                account.client_secret.get_secret_value(),
                account.refresh_token.get_secret_value(),
            )
        )
        return hashlib.sha256(secrets.encode()).hexdigest()

    def get(self, key: str) -> str | None:
        with self._lock:
            token = self._tokens.get(key)
            if token is None or token.expires_at <= time.monotonic():
                return None
            return token.value

    def put(self, key: str, value: str, lifetime: float) -> None:
        now = time.monotonic()
        with self._lock:
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
            self._tokens[key] = _Token(value, now + max(lifetime - TOKEN_MARGIN_SECONDS, 0))

    def forget(self, key: str) -> None:
        """Drop a token Google refused (revoked early): the next call asks for a new one."""
        with self._lock:
            self._tokens.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


TOKENS = TokenCache()


class GoogleAdsClient:
    """Calls the Google Ads API for one account, with the process's cached access token."""

    def __init__(
        self,
        account: SearchAccount,
        session: requests.Session | None = None,
        tokens: TokenCache | None = None,
    ) -> None:
        self.account = account
        self.session = session or requests.Session()
        self.tokens = TOKENS if tokens is None else tokens
        self._key = TokenCache.key(account)

    # --- OAuth ----------------------------------------------------------------------------

    def access_token(self) -> str:
        """An access token from the refresh-token grant (cached until near expiry)."""
        cached = self.tokens.get(self._key)
        if cached is not None:
            return cached
        account = self.account
        log.debug("refreshing a Google access token at %s", account.oauth_url)
        try:
            response = self.session.post(
                account.oauth_url,
                data={
                    "grant_type": "refresh_token",
                    "client_id": account.client_id,
                    "client_secret": account.client_secret.get_secret_value(),
                    "refresh_token": account.refresh_token.get_secret_value(),
                },
                timeout=account.timeout_seconds,
            )
        except requests.Timeout as error:
            raise TransientError("the Google token endpoint did not answer in time") from error
        except requests.RequestException as error:
            reason = _kind(error)
            raise TransientError(f"cannot reach the Google token endpoint: {reason}") from error
        body = json_object(response)
        if response.status_code == 200 and isinstance(body.get("access_token"), str):
            self.tokens.put(self._key, body["access_token"], float(body.get("expires_in") or 3600))
            return str(body["access_token"])
        status = response.status_code
        code = str(body.get("error") or "")  # OAuth's code: invalid_grant, invalid_client...
        where = f"{status} {code}".strip()
        reason = str(body.get("error_description") or code or f"HTTP {status}")
        if status == 429 or status >= 500:
            raise TransientError(
                f"the Google token endpoint answered {where}: {reason}",
                retry_after=_retry_after(response),
            )
        # invalid_grant (revoked or expired refresh token), invalid_client, 401...
        raise AuthError(f"Google refused the OAuth credentials ({where}): {reason}")

    # --- the API --------------------------------------------------------------------------

    def search(self, query: str) -> list[dict[str, Any]]:
        """Rows of a GAQL query (``googleAds:search``; one page is enough for our lookups)."""
        body = self._post("googleAds:search", {"query": query})
        rows = body.get("results") or []
        return [row for row in rows if isinstance(row, dict)]

    def search_stream(self, query: str) -> list[dict[str, Any]]:
        """Every row of a GAQL query (``googleAds:searchStream``: a JSON array of batches,
        each ``{"results": [...], "fieldMask", "requestId"}``), the batches joined."""
        batches = self._call("googleAds:searchStream", {"query": query})
        if isinstance(batches, dict):  # a single batch object
            batches = [batches]
        rows: list[dict[str, Any]] = []
        for batch in batches if isinstance(batches, list) else []:
            if isinstance(batch, dict):
                rows.extend(row for row in batch.get("results") or [] if isinstance(row, dict))
        return rows

    def mutate(self, operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run ``operations`` atomically (``googleAds:mutate``); their responses in order."""
        body = self._post(
            "googleAds:mutate", {"mutateOperations": operations, "partialFailure": False}
        )
        results = body.get("mutateOperationResponses") or []
        return [item for item in results if isinstance(item, dict)]

    def _url(self, method: str) -> str:
        account = self.account
        return f"{account.api_base}/{account.api_version}/customers/{account.customer_id}/{method}"

    def _headers(self) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.access_token()}",
            "developer-token": self.account.developer_token.get_secret_value(),
            "Content-Type": "application/json",
        }
        if self.account.login_customer_id:
            headers["login-customer-id"] = self.account.login_customer_id
        return headers

    def _post(self, method: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        body = self._call(method, payload)
        return body if isinstance(body, dict) else {}

    def _call(self, method: str, payload: Mapping[str, Any]) -> Any:
        url = self._url(method)
        headers = self._headers()
        log.debug("POST %s (%d operations)", url, len(payload.get("mutateOperations", [])))
        try:
            response = self.session.post(
                url, json=payload, headers=headers, timeout=self.account.timeout_seconds
            )
        except requests.Timeout as error:
            raise TransientError(f"Google Ads did not answer {method} in time") from error
        except requests.RequestException as error:
            raise TransientError(f"cannot reach Google Ads: {_kind(error)}") from error
        if response.ok:
            try:
                return response.json()
            except ValueError:
                return {}
        refused = api_error(response.status_code, json_object(response), response)
        if isinstance(refused, AuthError):
            self.tokens.forget(self._key)
        raise refused


def api_error(
    status: int, body: Mapping[str, Any], response: requests.Response | None = None
) -> ChannelError:
    """The contract error for a failed Google Ads call (see the module docstring)."""
    given = body.get("error")
    error: Mapping[str, Any] = given if isinstance(given, dict) else {}
    state = str(error.get("status") or "")
    failure = first_failure(error)
    message = failure.message if failure else str(error.get("message") or f"HTTP {status}")
    where = f" (at {failure.path})" if failure and failure.path else ""
    code = f" [{failure.code}]" if failure and failure.code else ""
    text = f"Google Ads {status} {state}".rstrip() + f": {message}{code}{where}"
    if status == 401 or state == "UNAUTHENTICATED":
        return AuthError(text)
    if status == 429 or state == "RESOURCE_EXHAUSTED" or (failure and failure.quota):
        delay = failure.retry_delay if failure else None
        return TransientError(text, retry_after=_retry_after(response) or delay)
    if status >= 500 or status == 409 or state in ("UNAVAILABLE", "ABORTED", "DEADLINE_EXCEEDED"):
        return TransientError(text, retry_after=_retry_after(response))
    return PermanentError(text)


@dataclass(frozen=True)
class Failure:
    """The first error of a GoogleAdsFailure: its message, code and field path."""

    message: str
    code: str
    path: str
    quota: bool
    retry_delay: float | None


def first_failure(error: Mapping[str, Any]) -> Failure | None:
    for detail in error.get("details") or []:
        if not isinstance(detail, dict) or "GoogleAdsFailure" not in str(detail.get("@type")):
            continue
        for item in detail.get("errors") or []:
            if not isinstance(item, dict):
                continue
            given = item.get("errorCode")
            codes: Mapping[str, Any] = given if isinstance(given, dict) else {}
            code = ".".join(f"{k}.{v}" for k, v in codes.items())
            elements = (item.get("location") or {}).get("fieldPathElements") or []
            path = ".".join(
                f"{e.get('fieldName')}[{e['index']}]" if "index" in e else str(e.get("fieldName"))
                for e in elements
                if isinstance(e, dict)
            )
            quota = (item.get("details") or {}).get("quotaErrorDetails") or {}
            return Failure(
                message=str(item.get("message") or ""),
                code=code,
                path=path,
                quota="quotaError" in codes,
                retry_delay=_seconds(quota.get("retryDelay")),
            )
    return None


def is_duplicate_name(error: ChannelError) -> bool:
    """A racing publish created the campaign first (CampaignError.DUPLICATE_CAMPAIGN_NAME)."""
    return isinstance(error, PermanentError) and "DUPLICATE_CAMPAIGN_NAME" in str(error)


def _retry_after(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    return from_headers(response.headers)


def _seconds(value: Any) -> float | None:
    """A protobuf Duration in JSON ("30s", "1.5s") as seconds."""
    if isinstance(value, str) and value.endswith("s"):
        try:
            return float(value[:-1])
        except ValueError:
            return None
    return None


def _kind(error: Exception) -> str:
    """The exception's class, not its text: a URL in the text could carry a query secret."""
    return type(error).__name__
