"""What every resource of the API shares: cursor pagination, ETag and If-Match, and the
Idempotency-Key of a POST.

* Lists answer ``{"data": [...], "next": URL or null}`` in id order; ``next`` carries an
  opaque ``cursor`` (signed, so it cannot be forged or moved to another list) and the
  same filters; ``limit`` is 1 to 200 (default 50).
* A resource that can be changed carries an ``ETag`` (a hash of its representation).
  PATCH needs ``If-Match`` with it: missing, 428; another (the resource changed since
  it was read), 412.
* A POST with ``Idempotency-Key`` does its work once: the key, a fingerprint of the
  request and the answer are kept per token (web/api/models.py); the same key again
  answers the same (with ``Idempotent-Replayed: true``), the same key with another
  request is 422.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Header, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from partnercast.core.errors import UserError
from partnercast.core.scheduler import PeriodicJob
from partnercast.core.signing import sign as sign_token
from partnercast.core.signing import unsign
from partnercast.core.tenancy import system_session, tenant_session
from partnercast.core.timeutil import as_utc
from partnercast.web.api.auth import Caller
from partnercast.web.api.models import IdempotencyKey
from partnercast.web.problems import Problem

log = logging.getLogger(__name__)

CURSOR_PURPOSE = "api.cursor"
CURSOR_AGE = 30 * 86400
MAX_LIMIT = 200

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"How many items (1 to {MAX_LIMIT}).")]
Cursor = Annotated[
    str | None,
    Query(max_length=1000, description="The `next` link's cursor: where the page starts."),
]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        description="Any unique string (a UUID): the same key again does the work once.",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", max_length=200, description="The ETag of the resource read."),
]


# --- pagination ---------------------------------------------------------------------------


def after_id(caller: Caller, request: Request, cursor: str | None) -> int:
    """The id the page starts after (0 for the first page)."""
    if cursor is None:
        return 0
    try:
        payload = unsign(
            caller.settings, CURSOR_PURPOSE, cursor, max_age_seconds=CURSOR_AGE, now=caller.now
        )
    except UserError:
        payload = None
    valid = (
        isinstance(payload, list)
        and len(payload) == 3
        and payload[0] == caller.token_id
        and payload[1] == request.url.path
        and isinstance(payload[2], int)
    )
    if not valid:
        raise Problem(
            400,
            "query.cursor: not a cursor of this list (take it from the `next` link)",
            errors=[("query.cursor", "not a cursor of this list")],
        )
    assert isinstance(payload, list)
    found: int = payload[2]
    return found


def page(
    caller: Caller,
    request: Request,
    items: Sequence[Any],
    ids: Sequence[int],
    limit: int,
) -> dict[str, Any]:
    """``{"data", "next"}`` for up to ``limit + 1`` rows read (the extra one says there
    is a next page)."""
    more = len(items) > limit
    shown = list(items[:limit])
    next_url = None
    if more:
        token = sign_token(
            caller.settings,
            CURSOR_PURPOSE,
            [caller.token_id, request.url.path, ids[limit - 1]],
            now=caller.now,
        )
        next_url = str(request.url.include_query_params(cursor=token))
    return {"data": shown, "next": next_url}


# --- ETag and If-Match --------------------------------------------------------------------


def etag_of(representation: BaseModel) -> str:
    data = json.dumps(jsonable_encoder(representation), sort_keys=True, separators=(",", ":"))
    return '"' + hashlib.sha256(data.encode("utf-8")).hexdigest()[:32] + '"'


def check_if_match(if_match: str | None, current: str) -> None:
    """428 without If-Match; 412 when none of its ETags is the current one."""
    if if_match is None or not if_match.strip():
        raise Problem(
            428,
            "If-Match: send the ETag of the resource you read (GET it first)",
            kind="if-match-required",
            errors=[("header.If-Match", "missing")],
        )
    given = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" not in given and current not in given:
        raise Problem(
            412,
            "If-Match: the resource changed since you read it (GET it again)",
            kind="etag-mismatch",
            errors=[("header.If-Match", "not the current ETag")],
            headers={"ETag": current},
        )


def with_etag(status: int, representation: BaseModel, **headers: str) -> Response:
    answer = json_response(status, representation)
    answer.headers["ETag"] = etag_of(representation)
    for name, value in headers.items():
        answer.headers[name] = value
    return answer


def json_response(status: int, content: Any) -> Response:
    body = json.dumps(jsonable_encoder(content), separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json")


# --- Idempotency-Key ----------------------------------------------------------------------


def fingerprint(request: Request, payload: Any) -> str:
    """What makes two requests the same: the method, the path and the request's content."""
    content = json.dumps(jsonable_encoder(payload), sort_keys=True, separators=(",", ":"))
    text = f"{request.method} {request.url.path}\n{content}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


KEPT_HEADERS = ("etag", "location", "content-type")


KEY_LIFETIME = timedelta(hours=24)
"""How long a key is remembered: the same key after that is a new request (its old row is
replaced when the key comes again, or deleted by :func:`purge_expired_keys` before)."""

PURGE_JOB = "partnercast.api.idempotency_purge"
PURGE_EVERY = timedelta(hours=1)


def once(
    caller: Caller,
    key: str | None,
    request_fingerprint: str,
    work: Callable[[Session], Response],
) -> Response:
    """Run ``work`` in a tenant session, once per Idempotency-Key.

    The key's row is the transaction's first write, before the work: a second request
    with the key waits for the first to commit (or roll back), then replays its answer.
    ``work`` raises (a Problem, a UserError) to refuse: the transaction and the key go.
    """
    if key is not None and not key.strip():
        raise Problem(
            422,
            "Idempotency-Key: empty (send a unique string, such as a UUID)",
            errors=[("header.Idempotency-Key", "empty")],
        )
    with tenant_session(caller.engine, caller.tenant_id) as session:
        if key is None:
            return work(session)
        row = IdempotencyKey(
            token_id=caller.token_id,
            key=key,
            fingerprint=request_fingerprint,
            created_at=caller.now,
        )
        claimed = _claim(session, row)
        while not claimed:
            found = _found(session, caller, key)
            if found is None:  # expired and purged since the claim: the key is free again
                claimed = _claim(session, row)
            elif as_utc(found.created_at) > caller.now - KEY_LIFETIME:
                return _replay(found, request_fingerprint)
            else:  # False: another request replaced it first; its row is found next
                claimed = _forget(session, found, row)
        answer = work(session)
        row.status = answer.status_code
        row.body = bytes(answer.body).decode("utf-8")
        row.headers = {
            name: value for name, value in answer.headers.items() if name in KEPT_HEADERS
        }
        session.add(row)
        return answer


def _claim(session: Session, row: IdempotencyKey) -> bool:
    """Insert the key's row (waiting for a concurrent one); False when it is there."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    return True


def _found(session: Session, caller: Caller, key: str) -> IdempotencyKey | None:
    return session.exec(
        select(IdempotencyKey).where(
            IdempotencyKey.token_id == caller.token_id, IdempotencyKey.key == key
        )
    ).first()


def _forget(session: Session, expired: IdempotencyKey, row: IdempotencyKey) -> bool:
    """Replace a key older than :data:`KEY_LIFETIME` by ``row``; False when another
    request replaced it first."""
    with session.begin_nested():
        session.delete(expired)
        session.flush()
    return _claim(session, row)


def _replay(found: IdempotencyKey, request_fingerprint: str) -> Response:
    if found.fingerprint != request_fingerprint:
        raise Problem(
            422,
            "Idempotency-Key: already used with another request (use a new key per request)",
            kind="idempotency-key-reused",
            errors=[("header.Idempotency-Key", "already used with another request")],
        )
    headers = dict(found.headers)
    headers["Idempotent-Replayed"] = "true"
    return Response(found.body, status_code=found.status, headers=headers)


def purge_expired_keys(engine: Engine, now: datetime) -> int:
    """Delete every tenant's Idempotency-Key rows older than :data:`KEY_LIFETIME` at
    ``now`` (their keys are new requests already); returns how many went."""
    cutoff = now - KEY_LIFETIME
    with system_session(engine, reason="expired Idempotency-Keys of every tenant") as session:
        result = session.execute(
            delete(IdempotencyKey).where(col(IdempotencyKey.created_at) <= cutoff)
        )
        return int(getattr(result, "rowcount", 0) or 0)


def idempotency_purge_job(engine: Engine, every: timedelta = PURGE_EVERY) -> PeriodicJob:
    """The worker's periodic purge of expired Idempotency-Keys (one worker a slot): without
    it a key that never comes again keeps its row, and its stored answer, for ever."""

    def run(now: datetime) -> None:
        purged = purge_expired_keys(engine, now)
        log.info("idempotency keys: %d expired purged at %s", purged, as_utc(now).isoformat())

    return PeriodicJob(PURGE_JOB, run, every)


# --- The conventions in the OpenAPI document -------------------------------------------------

ETAG_HEADER = {
    "description": "The representation's entity tag: send it as If-Match to change it.",
    "schema": {"type": "string"},
}
REPLAYED_HEADER = {
    "description": (
        "`true` when this is the stored answer of an earlier request with the same "
        "Idempotency-Key (within 24 hours): the work was not done again."
    ),
    "schema": {"type": "string", "enum": ["true"]},
}
ETAG_POSTS = frozenset(
    {
        ("post", "/partners"),
        ("post", "/contacts"),
        ("post", "/enrollments/{enrollment_id}/submissions"),
    }
)
"""POSTs that answer with the resource and its ETag (the GETs and PATCHes of a resource
that can be changed are found by their path)."""


def describe_conventions(document: dict[str, Any]) -> dict[str, Any]:
    """Add the response headers the routes send to the OpenAPI ``document`` (in place):
    ``ETag`` on the GET and PATCH answers of every resource that has a PATCH (and the POSTs
    of :data:`ETAG_POSTS`), ``Idempotent-Replayed`` on the answers of every POST that takes
    an ``Idempotency-Key``. (``Retry-After`` on 429 and ``WWW-Authenticate`` on 401 are
    in web/problems.py's responses; ``Idempotency-Key`` and ``If-Match`` are the routes'
    own header parameters.)"""
    for path, operations in document.get("paths", {}).items():
        changeable = "patch" in operations
        for method, operation in operations.items():
            etag = (changeable and method in ("get", "patch")) or (method, path) in ETAG_POSTS
            keyed = method == "post" and any(
                parameter.get("in") == "header" and parameter.get("name") == "Idempotency-Key"
                for parameter in operation.get("parameters", [])
            )
            for status, answer in operation.get("responses", {}).items():
                if not str(status).startswith("2"):
                    continue
                headers = answer.setdefault("headers", {})
                if etag:
                    headers["ETag"] = ETAG_HEADER
                if keyed:
                    headers["Idempotent-Replayed"] = REPLAYED_HEADER
                if not headers:
                    del answer["headers"]
    return document
