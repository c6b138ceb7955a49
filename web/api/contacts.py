"""``/api/v1/contacts``: partners' contacts, their consent, suppression and erasure.

* ``GET /contacts``: filters ``partner_id``, ``external_id``, ``email``, ``consent``;
* ``POST /contacts``: create or update (upsert) one contact, matched by partner and
  ``external_id``, exactly as a ``contacts import`` row (consent recorded, a withdrawal
  suppressed, an erased address refused): 201 created, 200 updated or unchanged;
* ``GET /contacts/{id}``, ``PATCH /contacts/{id}`` (If-Match required);
* ``POST /contacts/imports``: a CSV or .xlsx file (multipart ``file``) for one partner
  (``partner_id``) or with a ``partner`` column: the import's report;
* ``POST /contacts/suppressions``: stop all mail to addresses (for one partner, or for
  every partner: staff only); ``POST /contacts/erasures``: erase addresses from the
  tenant on the person's request (staff only; the funnel's leads too).

A partner token sees and writes its own partner's contacts only.
"""

from __future__ import annotations

import hashlib
import tempfile
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool

from partnercast.core.errors import UserError
from partnercast.funnel.leads import erase_leads
from partnercast.tenants import suppressions
from partnercast.tenants.access import CONTACTS_WRITE, READ
from partnercast.tenants.importing import import_contacts
from partnercast.tenants.models import Contact, Partner
from partnercast.web.api.auth import Authenticated, Caller
from partnercast.web.api.common import ERRORS, MAX_ID, Id, Page
from partnercast.web.api.conventions import (
    Cursor,
    IdempotencyKeyHeader,
    IfMatch,
    Limit,
    after_id,
    check_if_match,
    etag_of,
    fingerprint,
    json_response,
    once,
    page,
    with_etag,
)
from partnercast.web.api.partners import visible_partner
from partnercast.web.api.rows import write_contact
from partnercast.web.problems import Problem

router = APIRouter(prefix="/contacts", tags=["contacts"], responses=ERRORS)

MAX_UPLOAD = 100_000_000
PartnerIdField = Annotated[int, Field(ge=1, le=MAX_ID)]


class ContactOut(BaseModel):
    id: int
    partner_id: int
    external_id: str
    email: str
    first_name: str
    last_name: str
    company: str
    locale: str
    consent: bool
    created_at: datetime
    updated_at: datetime


class ContactFields(BaseModel):
    """A contact's fields; one left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(default=None, min_length=3, max_length=254)
    consent: bool | None = None
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    company: str | None = Field(default=None, max_length=200)
    locale: str | None = Field(default=None, max_length=16)
    consent_date: datetime | None = Field(
        default=None, description="When the person gave (or withdrew) consent."
    )
    consent_text: str | None = Field(default=None, max_length=2000)
    consent_source: str | None = Field(default=None, max_length=300)


class ContactIn(ContactFields):
    """A contact to create or update, matched by its partner and ``external_id``."""

    partner_id: PartnerIdField
    external_id: str = Field(min_length=1, max_length=100)
    email: str = Field(min_length=3, max_length=254)
    consent: bool


class Addresses(BaseModel):
    model_config = ConfigDict(extra="forbid")

    emails: list[Annotated[str, Field(min_length=1, max_length=254)]] = Field(
        min_length=1, max_length=1000
    )


class SuppressionIn(Addresses):
    partner_id: PartnerIdField | None = Field(
        default=None, description="Stop this partner's mail only (default: every partner's)."
    )
    reason: str = Field(default="manual", min_length=1, max_length=40)


class SuppressionOut(BaseModel):
    suppressed: int = Field(description="Addresses newly suppressed.")
    already: int = Field(description="Addresses that already were.")


class ErasureOut(BaseModel):
    email: str
    contacts: int
    suppressions: int
    consent_records: int
    leads: int
    erased_before: bool


class Rejected(BaseModel):
    line: int
    reason: str


class ImportOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    withdrawn: int
    rejected: list[Rejected]
    notes: list[str]


def out(contact: Contact) -> ContactOut:
    return ContactOut.model_validate(contact, from_attributes=True)


def _session(caller: Caller) -> Any:
    from partnercast.core.tenancy import tenant_session

    return tenant_session(caller.engine, caller.tenant_id)


def visible_contact(
    session: Session, caller: Caller, contact_id: int, action: str = READ
) -> Contact:
    query = select(Contact).where(Contact.id == contact_id)
    if action != READ:
        query = query.with_for_update()
    contact = session.exec(query).first()
    if contact is None or not caller.sees_partner(session, contact.partner_id):
        raise Problem(404, f"no contact {contact_id}")
    if action != READ:
        caller.require(action)
        if not caller.sees_partner(session, contact.partner_id, action):
            raise Problem(403, f"this token may not change contact {contact_id}")
    return contact


@router.get("", response_model=Page[ContactOut], summary="List contacts")
def list_contacts(
    caller: Authenticated,
    request: Request,
    limit: Limit = 50,
    cursor: Cursor = None,
    partner_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    external_id: Annotated[str | None, Query(max_length=100)] = None,
    email: Annotated[str | None, Query(max_length=254)] = None,
    consent: bool | None = None,
) -> Response:
    start = after_id(caller, request, cursor)
    with _session(caller) as session:
        query = select(Contact).where(col(Contact.id) > start)
        visible = caller.partners(session)
        if visible is not None:
            query = query.where(col(Contact.partner_id).in_(visible))
        if partner_id is not None:
            query = query.where(Contact.partner_id == partner_id)
        if external_id is not None:
            query = query.where(Contact.external_id == external_id)
        if email is not None:
            query = query.where(Contact.email == suppressions.normalise_email(email))
        if consent is not None:
            query = query.where(Contact.consent == consent)
        rows = session.exec(query.order_by(col(Contact.id)).limit(limit + 1)).all()
    items = [out(row) for row in rows]
    return json_response(200, page(caller, request, items, [i.id for i in items], limit))


@router.post(
    "",
    response_model=ContactOut,
    status_code=201,
    summary="Create or update a contact (by partner and external_id)",
    responses={200: {"model": ContactOut, "description": "Updated or unchanged"}},
)
def upsert_contact(
    caller: Authenticated,
    request: Request,
    body: ContactIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    caller.require(CONTACTS_WRITE)

    def work(session: Session) -> Response:
        partner = visible_partner(session, caller, body.partner_id, CONTACTS_WRITE)
        fields = body.model_dump(exclude_none=True, exclude={"partner_id"})
        outcome = write_contact(session, partner.external_id, fields, now=caller.now)
        contact = session.exec(
            select(Contact).where(
                Contact.partner_id == partner.id, Contact.external_id == body.external_id
            )
        ).one()
        status = 201 if outcome == "created" else 200
        location = f"{str(request.url.replace(query='')).rstrip('/')}/{contact.id}"
        return with_etag(status, out(contact), Location=location)

    return once(caller, idempotency_key, fingerprint(request, body), work)


@router.get("/{contact_id}", response_model=ContactOut, summary="One contact")
def get_contact(caller: Authenticated, contact_id: Id) -> Response:
    with _session(caller) as session:
        contact = visible_contact(session, caller, contact_id)
    return with_etag(200, out(contact))


@router.patch(
    "/{contact_id}",
    response_model=ContactOut,
    summary="Change a contact (If-Match required)",
    responses={412: ERRORS[422], 428: ERRORS[422]},
)
def patch_contact(
    caller: Authenticated,
    contact_id: Id,
    body: ContactFields,
    if_match: IfMatch = None,
) -> Response:
    caller.require(CONTACTS_WRITE)
    with _session(caller) as session:
        contact = visible_contact(session, caller, contact_id, CONTACTS_WRITE)
        check_if_match(if_match, etag_of(out(contact)))
        if not contact.email:
            raise Problem(422, f"contact {contact_id} was erased: it cannot be changed")
        partner = session.exec(select(Partner).where(Partner.id == contact.partner_id)).one()
        fields: dict[str, Any] = {
            "external_id": contact.external_id,
            "email": contact.email,
            "consent": contact.consent,
            **body.model_dump(exclude_unset=True, exclude_none=True),
        }
        write_contact(session, partner.external_id, fields, now=caller.now)
        session.refresh(contact)
        return with_etag(200, out(contact))


@router.post(
    "/imports",
    response_model=ImportOut,
    summary="Import a CSV or .xlsx file of contacts (the report of `contacts import`)",
)
async def import_file(
    caller: Authenticated,
    request: Request,
    file: Annotated[UploadFile, File(description="The CSV or .xlsx file.")],
    partner_id: Annotated[
        int | None,
        Form(ge=1, le=MAX_ID, description="The partner (else each row's partner column)."),
    ] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    caller.require(CONTACTS_WRITE)
    content = await file.read(MAX_UPLOAD + 1)
    if len(content) > MAX_UPLOAD:
        raise Problem(413, f"file: over {MAX_UPLOAD} bytes")
    name = FilePath(file.filename or "contacts.csv").name or "contacts.csv"
    suffix = ".xlsx" if name.lower().endswith((".xlsx", ".xlsm")) else ".csv"
    digest = hashlib.sha256(content).hexdigest()

    def work(session: Session) -> Response:
        named = None
        if partner_id is not None:
            named = visible_partner(session, caller, partner_id, CONTACTS_WRITE).external_id
        elif caller.partners(session, CONTACTS_WRITE) is not None:
            raise Problem(
                422,
                "partner_id: required for a token that does not see every partner",
                errors=[("form.partner_id", "required")],
            )
        with tempfile.TemporaryDirectory(prefix="partnercast-api-") as folder:
            path = FilePath(folder) / f"{FilePath(name).stem[:80] or 'contacts'}{suffix}"
            path.write_bytes(content)
            try:
                report = import_contacts(session, path, named, now=caller.now)
            except UserError as error:
                raise Problem(
                    422, f"file: {error.message}", errors=[("file", error.message)]
                ) from None
        result = ImportOut(
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            withdrawn=report.withdrawn,
            rejected=[Rejected(line=r.line, reason=r.reason) for r in report.rejected],
            notes=report.notes,
        )
        return json_response(200, result)

    payload = {"file": digest, "partner_id": partner_id}
    answer: Response = await run_in_threadpool(
        once, caller, idempotency_key, fingerprint(request, payload), work
    )
    return answer


@router.post(
    "/suppressions",
    response_model=SuppressionOut,
    summary="Stop all mail to addresses (a withdrawal of consent is recorded)",
)
def suppress(
    caller: Authenticated,
    request: Request,
    body: SuppressionIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    caller.require(CONTACTS_WRITE)

    def work(session: Session) -> Response:
        partner_id = body.partner_id
        if partner_id is not None:
            visible_partner(session, caller, partner_id, CONTACTS_WRITE)
        elif caller.partners(session, CONTACTS_WRITE) is not None:
            raise Problem(
                422,
                "partner_id: required for a token that does not see every partner",
                errors=[("body.partner_id", "required")],
            )
        added = suppressions.suppress_by_command(
            session, body.emails, partner_id=partner_id, reason=body.reason, now=caller.now
        )
        distinct = len({suppressions.normalise_email(e) for e in body.emails})
        return json_response(200, SuppressionOut(suppressed=added, already=distinct - added))

    return once(caller, idempotency_key, fingerprint(request, body), work)


@router.post(
    "/erasures",
    response_model=list[ErasureOut],
    summary="Erase addresses from the tenant on the person's request",
)
def erase(
    caller: Authenticated,
    request: Request,
    body: Addresses,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    caller.require(CONTACTS_WRITE)

    def work(session: Session) -> Response:
        if caller.partners(session, CONTACTS_WRITE) is not None:
            raise Problem(403, "erasing an address reaches every partner: staff tokens only")
        results = []
        for email in body.emails:
            done = suppressions.erase(
                session, email, now=caller.now, source="api", also={"leads": erase_leads}
            )
            results.append(
                ErasureOut(
                    email=suppressions.normalise_email(email),
                    contacts=done.contacts,
                    suppressions=done.suppressions,
                    consent_records=done.consent_records,
                    leads=dict(done.others).get("leads", 0),
                    erased_before=done.already,
                )
            )
        return json_response(200, results)

    return once(caller, idempotency_key, fingerprint(request, body), work)
