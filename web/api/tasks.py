"""``/api/v1/tasks``: concierge tasks (staff tokens; a concierge token covering some
partners sees theirs, plus the tenant's own tasks only when it sees every partner).

* ``GET /tasks`` (filters ``status`` — ``open`` for open and in progress, the default,
  or ``all`` —, ``kind``, ``partner_id``, ``overdue``), ``GET /tasks/{id}``;
* ``POST /tasks``: a task about a partner (kind, due date, title, note);
* ``POST /tasks/{id}/notes``, ``POST /tasks/{id}/start``, ``POST /tasks/{id}/close``
  (``done`` or ``dismissed``): as ``partnercast tasks note/start/done``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select

from partnercast.concierge import tasks as concierge
from partnercast.concierge.models import ConciergeTask
from partnercast.core.bounds import check_instant
from partnercast.core.errors import UserError
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.access import READ, TASKS_WRITE
from partnercast.web.api.auth import Authenticated, Caller
from partnercast.web.api.common import ERRORS, MAX_ID, Id, Page
from partnercast.web.api.conventions import (
    Cursor,
    IdempotencyKeyHeader,
    Limit,
    after_id,
    fingerprint,
    json_response,
    once,
    page,
)
from partnercast.web.api.partners import visible_partner
from partnercast.web.problems import Problem

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=ERRORS)


class TaskOut(BaseModel):
    id: int
    partner_id: int | None
    owner_id: int | None
    kind: str
    title: str
    status: str
    due_at: datetime
    notes: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None


class TaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner_id: Annotated[int, Field(ge=1, le=MAX_ID)]
    kind: str = Field(min_length=1, max_length=40)
    due_at: datetime
    title: str = Field(default="", max_length=300)
    note: str = Field(default="", max_length=4000)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=4000)


class CloseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["done", "dismissed"] = "done"
    note: str = Field(default="", max_length=4000)


def out(task: ConciergeTask) -> TaskOut:
    return TaskOut.model_validate(task, from_attributes=True)


def _staff(caller: Caller) -> None:
    if caller.partner_id is not None:
        raise Problem(403, "concierge tasks are the agency's: a partner token sees none")


def visible_task(
    session: Session, caller: Caller, task_id: int, action: str = READ
) -> ConciergeTask:
    _staff(caller)
    query = select(ConciergeTask).where(ConciergeTask.id == task_id)
    if action != READ:
        query = query.with_for_update()
    task = session.exec(query).first()
    visible = caller.partners(session)
    hidden = task is None or (
        visible is not None and (task.partner_id is None or task.partner_id not in visible)
    )
    if hidden:
        raise Problem(404, f"no task {task_id}")
    assert task is not None
    if action != READ:
        caller.require(action)
    return task


@router.get("", response_model=Page[TaskOut], summary="List tasks")
def list_tasks(
    caller: Authenticated,
    request: Request,
    limit: Limit = 50,
    cursor: Cursor = None,
    status: Literal["open", "in_progress", "done", "dismissed", "all"] = "open",
    kind: Annotated[str | None, Query(max_length=40)] = None,
    partner_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    overdue: bool = False,
) -> Response:
    _staff(caller)
    start = after_id(caller, request, cursor)
    with tenant_session(caller.engine, caller.tenant_id) as session:
        query = select(ConciergeTask).where(col(ConciergeTask.id) > start)
        visible = caller.partners(session)
        if visible is not None:
            query = query.where(col(ConciergeTask.partner_id).in_(visible))
        if status == "open":
            query = query.where(col(ConciergeTask.status).in_(concierge.OPEN_STATUSES))
        elif status != "all":
            query = query.where(ConciergeTask.status == status)
        if kind is not None:
            query = query.where(ConciergeTask.kind == kind.strip().lower().replace("-", "_"))
        if partner_id is not None:
            query = query.where(ConciergeTask.partner_id == partner_id)
        if overdue:
            query = query.where(
                col(ConciergeTask.status).in_(concierge.OPEN_STATUSES),
                col(ConciergeTask.due_at) < caller.now,
            )
        rows = session.exec(query.order_by(col(ConciergeTask.id)).limit(limit + 1)).all()
    items = [out(row) for row in rows]
    return json_response(200, page(caller, request, items, [i.id for i in items], limit))


@router.get("/{task_id}", response_model=TaskOut, summary="One task")
def get_task(caller: Authenticated, task_id: Id) -> Response:
    with tenant_session(caller.engine, caller.tenant_id) as session:
        return json_response(200, out(visible_task(session, caller, task_id)))


@router.post("", response_model=TaskOut, status_code=201, summary="Add a task about a partner")
def add_task(
    caller: Authenticated,
    request: Request,
    body: TaskIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    _staff(caller)
    caller.require(TASKS_WRITE)

    def work(session: Session) -> Response:
        partner = visible_partner(session, caller, body.partner_id)
        try:
            due = check_instant(body.due_at, where="body.due_at")
            task = concierge.add_task(
                session,
                partner,
                kind=body.kind,
                due_at=due,
                title=body.title,
                note=body.note,
                created_by=caller.principal.label,
                now=caller.now,
            )
        except UserError as error:
            where = "body.kind" if error.where == "--kind" else "body.due_at"
            raise Problem(
                422, f"{where}: {error.message}", errors=[(where, error.message)]
            ) from None
        return json_response(201, out(task))

    return once(caller, idempotency_key, fingerprint(request, body), work)


def _act(
    caller: Caller, request: Request, task_id: int, body: BaseModel, key: str | None, act: str
) -> Response:
    _staff(caller)
    caller.require(TASKS_WRITE)

    def work(session: Session) -> Response:
        task = visible_task(session, caller, task_id, TASKS_WRITE)
        author = caller.principal.label
        try:
            if isinstance(body, NoteIn):
                concierge.note_task(session, task, body.text, author=author, now=caller.now)
            elif isinstance(body, CloseIn):
                concierge.close_task(
                    session, task, note=body.note, status=body.status, author=author, now=caller.now
                )
            else:
                concierge.start_task(session, task, author=author, now=caller.now)
        except UserError as error:
            raise Problem(409, str(error), kind="state-conflict") from None
        session.add(task)
        session.flush()
        return json_response(200, out(task))

    return once(caller, key, fingerprint(request, {"act": act, **body.model_dump()}), work)


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")


@router.post(
    "/{task_id}/notes", response_model=TaskOut, summary="Add a note", responses={409: ERRORS[422]}
)
def note(
    caller: Authenticated,
    request: Request,
    task_id: Id,
    body: NoteIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    return _act(caller, request, task_id, body, idempotency_key, "note")


@router.post(
    "/{task_id}/start", response_model=TaskOut, summary="Start it", responses={409: ERRORS[422]}
)
def start(
    caller: Authenticated,
    request: Request,
    task_id: Id,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    return _act(caller, request, task_id, StartIn(), idempotency_key, "start")


@router.post(
    "/{task_id}/close", response_model=TaskOut, summary="Close it", responses={409: ERRORS[422]}
)
def close(
    caller: Authenticated,
    request: Request,
    task_id: Id,
    body: CloseIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    return _act(caller, request, task_id, body, idempotency_key, "close")
