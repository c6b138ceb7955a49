"""RFC 9457 problem details: every error of the REST API is one ``application/problem+json``
document.

``{"type", "title", "status", "detail"}`` and, for a mistake in the request, ``errors``:
each ``{"field", "reason"}`` (``field`` a dotted path such as ``body.email`` or
``query.limit``). ``detail`` is one line, as the CLI's errors are: the first field and
its reason, or a :class:`~partnercast.core.errors.UserError`'s ``where: message``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from partnercast.core.errors import NotFound, UserError

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://partnercast.dev/problems/"

TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
}


class FieldError(BaseModel):
    field: str = Field(description="Where: a dotted path such as body.email or query.limit.")
    reason: str


class ProblemDocument(BaseModel):
    """An RFC 9457 problem details document."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str = Field(description="One line: what went wrong, and where.")
    errors: list[FieldError] | None = None


class Problem(Exception):
    """Raised anywhere in the API: answered as a problem document with ``status``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        errors: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.errors = list(errors)
        self.headers = dict(headers or {})


def problem_response(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    errors: Sequence[tuple[str, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    title = TITLES.get(status, "Error")
    document: dict[str, Any] = {
        "type": TYPE_BASE + (kind or title.lower().replace(" ", "-")),
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        document["errors"] = [{"field": where, "reason": why} for where, why in errors]
    answer_headers = {"Content-Type": MEDIA_TYPE, "Cache-Control": "no-store"}
    answer_headers.update(headers or {})
    return Response(json.dumps(document), status_code=status, headers=answer_headers)


def validation_errors(error: RequestValidationError) -> list[tuple[str, str]]:
    """Pydantic's errors as (field, reason): ``body.email``, ``query.limit``."""
    found = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ())]
        if location and location[0] == "body" and len(location) == 1:
            where = "body"
        else:
            where = ".".join(location) or "request"
        reason = str(item.get("msg", "not valid"))
        found.append((where, reason.removeprefix("Value error, ")))
    return found


async def _on_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, Problem)
    return problem_response(
        error.status, error.detail, kind=error.kind, errors=error.errors, headers=error.headers
    )


async def _on_http(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    status = error.status_code
    if status == 404:
        detail = f"nothing at {request.url.path}"
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    else:
        detail = str(error.detail) if error.detail else TITLES.get(status, "error")
    return problem_response(status, detail, headers=getattr(error, "headers", None) or None)


async def _on_validation(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors = validation_errors(error) or [("request", "not valid")]
    where, why = errors[0]
    return problem_response(422, f"{where}: {why}", kind="validation", errors=errors)


async def _on_user_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, UserError)
    if isinstance(error, NotFound):
        return problem_response(404, str(error))
    errors = [(error.where or "body", error.message)]
    return problem_response(422, str(error), kind="invalid", errors=errors)


async def _on_anything(request: Request, error: Exception) -> Response:
    log.exception("API request %s %s failed", request.method, request.url.path)
    return problem_response(500, "the server failed on this request; it is logged")


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as a problem document."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(HTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(UserError, _on_user_error)
    app.add_exception_handler(Exception, _on_anything)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "model": ProblemDocument,
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}},
        "description": TITLES[status],
    }
    for status in (400, 401, 403, 404, 422, 429)
}
"""The error answers every API route may give, for its OpenAPI description."""
PROBLEM_RESPONSES[429]["headers"] = {
    "Retry-After": {
        "description": "Seconds until the token may ask again.",
        "schema": {"type": "integer"},
    }
}
PROBLEM_RESPONSES[401]["headers"] = {
    "WWW-Authenticate": {"description": 'Bearer realm="partnercast"', "schema": {"type": "string"}}
}
