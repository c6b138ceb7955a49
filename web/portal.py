"""The partner portal, ``/portal/{tenant}/...``: a partner user's campaigns, their
customisation with a live preview, their decisions, channel accounts and results.

Pages (server-rendered, htmx for the live preview; texts in the ``portal`` catalogues):

* ``GET /portal/{tenant}``: the campaigns offered to the partner (what goes out, on which
  channel, when in the partner's time zone, their state), the decisions the agency made
  on the partner's behalf, and "waiting for you": the fields every waiting campaign needs
  from the partner (a field shared by several campaigns once), a preview of every touch,
  and one button that saves and approves them all;
* ``GET /portal/{tenant}/campaigns/{id}``: customise one campaign: its editable fields with
  their limits, its locked zones (shown, not editable), a live preview of every touch on
  every channel updated as the partner types (``POST .../preview``, htmx), and the
  decisions: approve, ask for changes, decline (the campaign or one touch), auto-approval
  where the campaign allows it (``POST .../decide``);
* ``GET /portal/{tenant}/accounts``: the channel accounts (connect, reconnect, health,
  expiry warnings; secrets never shown back);
* ``GET /portal/{tenant}/results``: the partner's own funnel, leads, spend and return.

Who: a signed-in partner user (``SignedIn``) of the tenant; the partner is the one their
membership names. Anyone else, another tenant, another partner's id: 404, the same page as
an address that does not exist. Every decision goes through
:func:`partnercast.campaigns.decisions.decide` with the request's address and browser, and
the fingerprints of what the page showed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy.engine import Engine as SqlEngine
from sqlmodel import Session, col, select
from starlette.exceptions import HTTPException

from partnercast.campaigns import approval, decisions
from partnercast.campaigns.enrollment import customise, enrollment_spec
from partnercast.campaigns.live_preview import (
    FieldState,
    LivePreview,
    changed_fields,
    live_preview,
    typed_customization,
)
from partnercast.campaigns.models import Campaign, Enrollment
from partnercast.campaigns.rendering import pick_locale
from partnercast.campaigns.send_windows import partner_zone
from partnercast.core import accounts
from partnercast.core.errors import NotFound, UserError
from partnercast.core.secrets import secret_box
from partnercast.core.settings import Settings as EngineSettings
from partnercast.core.tenancy import tenant_session
from partnercast.funnel.leads import Lead
from partnercast.funnel.partner_results import partner_results
from partnercast.plugins.contrast import readable_colour
from partnercast.plugins.manager import default_plugins
from partnercast.tenants.access import Role
from partnercast.tenants.models import Partner, Tenant
from partnercast.web import portal_data as data
from partnercast.web.context import Engine, Now, Settings
from partnercast.web.identity import CsrfProtected, SignedIn, Visitor, tenant_for
from partnercast.web.shell import PAGE_HEADERS, environment, shell_context

router = APIRouter(include_in_schema=False)
DOMAIN = "portal"
MAX_FIELD = 20_000
"""Characters of one typed field the portal reads (every field's own limit is smaller)."""


# --- who and where --------------------------------------------------------------------------


@dataclass
class Place:
    """The signed-in partner user, the tenant and the partner the page is about."""

    visitor: Visitor
    tenant: Tenant
    partner_id: int

    @property
    def tenant_id(self) -> int:
        return self.tenant.id or 0


def place(visitor: Visitor, slug: str, engine: SqlEngine) -> Place:
    """The partner user's place in tenant ``slug``; 404 for a tenant they may not see or
    in which they are nobody's partner user."""
    tenant = tenant_for(visitor, slug, engine)
    assert tenant.id is not None
    partners = sorted(
        grant.partner_id
        for grant in visitor.principal.grants_in(tenant.id)
        if grant.role is Role.PARTNER and grant.partner_id is not None
    )
    if not partners:
        raise HTTPException(404)
    return Place(visitor, tenant, partners[0])


SOFT_BACKGROUND = "#f4f5f7"
"""The lightest background the brand colour is drawn on besides white (the shell's header
and cards, --soft in portal.css): the accent must read on it too."""


def _brand(partner: Partner | None) -> str | None:
    """The partner's brand colour made readable on the shell's backgrounds (plugins/contrast.py)."""
    if partner is None or not partner.primary_color:
        return None
    return readable_colour(partner.primary_color, SOFT_BACKGROUND)


async def form_fields(request: Request) -> dict[str, str]:
    """The posted form's text fields (line ends as \\n, each cut at MAX_FIELD)."""
    form = await request.form()
    return {
        key: value.replace("\r\n", "\n")[:MAX_FIELD]
        for key, value in form.items()
        if isinstance(value, str)
    }


Form = Annotated[dict[str, str], Depends(form_fields)]


def client_of(request: Request) -> decisions.Client:
    return decisions.Client(
        address=request.client.host if request.client else "",
        user_agent=request.headers.get("user-agent", "")[:500],
    )


# --- rendering ------------------------------------------------------------------------------


def _context(
    request: Request, where: Place, engine: SqlEngine, partner: Partner | None
) -> dict[str, Any]:
    values = shell_context(
        request,
        visitor=where.visitor,
        engine=engine,
        domain=DOMAIN,
        tenant=where.tenant,
        brand_colour=_brand(partner),
    )
    values["say"] = problem_text(values["_"])
    values["slug"] = where.tenant.slug
    values["fragment"] = False
    values["fingerprint_of"] = data.combined_fingerprint
    values["zone"] = partner_zone(partner)[0] if partner is not None else None
    return values


def _page(
    request: Request,
    where: Place,
    engine: SqlEngine,
    template: str,
    *,
    partner: Partner | None = None,
    status: int = 200,
    block: str | None = None,
    **values: Any,
) -> HTMLResponse:
    context = {**_context(request, where, engine, partner), **values}
    found = environment().get_template(template)
    if block is None:
        body = found.render(**context)
    else:  # the htmx fragment: one block, with its out-of-band parts
        context["fragment"] = True
        body = "".join(found.blocks[block](found.new_context(context)))
    return HTMLResponse(body, status_code=status, headers=PAGE_HEADERS)


def N_(message: str) -> str:
    """Marks a text for the catalogues (tools/catalogues.py); translated where shown."""
    return message


PROBLEMS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"too long \((?P<n>\d+) characters, at most (?P<max>\d+)\)"),
     N_("too long (%(n)s characters, at most %(max)s)")),
    (re.compile(r"field '.*' is required|is required"), N_("this field is required")),
    (re.compile(r"template code is not allowed.*"),
     N_("write plain text: template code is not allowed")),
    (re.compile(r"merge token (?P<token>.+) is not allowed here \(allowed: (?P<allowed>.*)\)"),
     N_("%(token)s is not allowed here (allowed: %(allowed)s)")),
    (re.compile(r"'.*' is not one of .*"), N_("choose one of the offered values")),
    (re.compile(r"'.*' is not a date.*"), N_("not a date (YYYY-MM-DD)")),
    (re.compile(r"'.*' is not an http\(s\) URL"), N_("not a web address (https://...)")),
    (re.compile(r"the partner must write or edit the post text.*"),
     N_("write the post in your own words: this is the suggested text word for word")),
    (re.compile(r"the post is (?P<n>[\d,]+) characters, (?P<network>.+) allows (?P<max>[\d,]+)"),
     N_("the post is %(n)s characters, %(network)s allows %(max)s")),
    (re.compile(r"the post is empty"), N_("the post is empty")),
    (re.compile(r"the post contains a contact field.*"),
     N_("a post is read by everyone: it cannot hold a contact's name")),
    (re.compile(r"the subject is (?P<n>\d+) characters \(at most (?P<max>\d+)\)"),
     N_("the subject is %(n)s characters (at most %(max)s)")),
    (re.compile(r"the subject is empty"), N_("the subject is empty")),
    (re.compile(r"the partner has no (?P<what>.+): add it to the partner's brand"),
     N_("your brand has no %(what)s yet: ask your partner manager to add it")),
    (re.compile(r"the page title is (?P<n>\d+) characters \(at most (?P<max>\d+)\)"),
     N_("the page title is %(n)s characters (at most %(max)s)")),
    (re.compile(r"cannot (?P<action>.+) an enrollment that is (?P<state>.+)"),
     N_("this is not possible in the campaign's current state")),
    (re.compile(r"this campaign does not allow auto-approval"),
     N_("this campaign does not allow auto-approval")),
    (re.compile(r"the content changed since it was shown.*"),
     N_("the content changed since you saw it: look at it again before deciding")),
]  # fmt: skip


def problem_text(_: Any) -> Any:
    """A checker's or channel's English problem, in the page's language where the portal
    knows it (the rest is shown as it is)."""

    def say(problem: str) -> str:
        for pattern, message in PROBLEMS:
            found = pattern.search(problem)
            if found:
                return str(_(message, **found.groupdict()))
        return problem

    return say


# --- home -----------------------------------------------------------------------------------


@dataclass
class Waiting:
    """The home page's "waiting for you" form: the fields every waiting campaign needs
    (a shared field once) and each campaign's live preview."""

    fields: list[FieldState]
    previews: list[tuple[data.Offer, LivePreview]]

    @property
    def ok(self) -> bool:
        return all(preview.ok for _, preview in self.previews) and not any(
            f.problems for f in self.fields
        )


def _needs_partner(field: FieldState, saved: Mapping[str, Any]) -> bool:
    """A field the partner should look at before approving: required, or without a
    default (their signature), and not saved yet."""
    return field.name not in saved and (field.required or not field.default)


def _waiting(
    session: Session,
    settings: EngineSettings,
    home: data.Home,
    typed: Mapping[str, str] | None,
) -> Waiting:
    fields: dict[str, FieldState] = {}
    previews = []
    for offer in home.offers:
        if not offer.waiting:
            continue
        locale = pick_locale("", offer.spec, home.partner.languages)
        saved = offer.enrollment.customization
        mine = None
        if typed is not None:
            mine = changed_fields(offer.spec, saved, typed, locale)
        preview = live_preview(session, settings, offer.enrollment, mine, locale=locale)
        previews.append((offer, preview))
        for field in preview.fields:
            if not _needs_partner(field, saved):
                continue
            known = fields.get(field.name)
            if known is None or (field.problems and not known.problems):
                fields[field.name] = field
    return Waiting(list(fields.values()), previews)


@router.get("/portal/{slug}")
def home_page(
    request: Request, slug: str, visitor: SignedIn, engine: Engine, settings: Settings, now: Now
) -> Response:
    where = place(visitor, slug, engine)
    with tenant_session(engine, where.tenant_id) as session:
        home = data.home(session, where.partner_id)
        waiting = _waiting(session, settings, home, None)
        return _page(
            request, where, engine, "portal/home.html", partner=home.partner, home=home,
            waiting=waiting, now=now, section="home",
        )  # fmt: skip


@router.post("/portal/{slug}/preview")
def home_preview(
    request: Request,
    slug: str,
    visitor: SignedIn,
    engine: Engine,
    settings: Settings,
    form: Form,
    _csrf: CsrfProtected,
) -> Response:
    """htmx: the waiting campaigns' previews and each field's problems, as typed."""
    where = place(visitor, slug, engine)
    with tenant_session(engine, where.tenant_id) as session:
        home = data.home(session, where.partner_id)
        waiting = _waiting(session, settings, home, form)
        return _page(
            request, where, engine, "portal/home.html", partner=home.partner, home=home,
            waiting=waiting, block="live",
        )  # fmt: skip


@router.post("/portal/{slug}/approve-all")
def approve_all(
    request: Request,
    slug: str,
    visitor: SignedIn,
    engine: Engine,
    settings: Settings,
    now: Now,
    form: Form,
    _csrf: CsrfProtected,
) -> Response:
    """Save what the partner typed in every waiting campaign and approve each, with the
    fingerprints of what the page showed; nothing is saved when any campaign has a
    problem or changed since the page was shown."""
    where = place(visitor, slug, engine)
    try:
        with tenant_session(engine, where.tenant_id) as session:
            home = data.home(session, where.partner_id)
            waiting = _waiting(session, settings, home, form)
            changed = [
                offer
                for offer, preview in waiting.previews
                if form.get(f"shown-{offer.id}") != approval.fingerprint(offer.enrollment)
                or form.get(f"content-{offer.id}") != data.combined_fingerprint(preview)
            ]
            if changed:
                raise Again(409, "changed")
            if not waiting.ok:
                raise Again(422)
            for offer, preview in waiting.previews:
                try:
                    _save_and_decide(
                        session, offer.enrollment, where, request, now, preview,
                        decisions.APPROVE,
                    )  # fmt: skip
                except decisions.ContentChanged as error:
                    raise Again(409, "changed") from error
                except UserError as error:
                    raise Again(422, str(error)) from error
    except Again as again:  # nothing was saved: the page again, saying why
        with tenant_session(engine, where.tenant_id) as session:
            home = data.home(session, where.partner_id)
            waiting = _waiting(session, settings, home, form)
            return _page(
                request, where, engine, "portal/home.html", partner=home.partner, home=home,
                waiting=waiting, now=now, section="home", status=again.status,
                refused=again.status == 409, message=again.message,
            )  # fmt: skip
    return RedirectResponse(f"/portal/{slug}?done=approved", status_code=303, headers=PAGE_HEADERS)


def _save_and_decide(
    session: Session,
    enrollment: Enrollment,
    where: Place,
    request: Request,
    now: datetime,
    preview: LivePreview,
    decision: str,
    *,
    touch_key: str | None = None,
    note: str = "",
) -> None:
    """Store the previewed customisation (if it changed) and record ``decision`` on it."""
    changed = {
        name: value
        for name, value in preview.candidate.items()
        if enrollment.customization.get(name) != value
    }
    removed = [name for name in enrollment.customization if name not in preview.candidate]
    if changed or removed:
        kept = {k: v for k, v in enrollment.customization.items() if k not in removed}
        enrollment.customization = kept
        customise(session, enrollment, changed, actor=where.visitor.principal.label[:64], now=now)
    shown = preview.touch(touch_key) if touch_key else None
    decisions.decide(
        session,
        enrollment,
        decision,
        principal=where.visitor.principal,
        now=now,
        touch_key=touch_key,
        note=note,
        client=client_of(request),
        shown_fingerprint=approval.fingerprint(enrollment),
        shown_content_fingerprint=(
            shown.fingerprint if shown is not None else data.combined_fingerprint(preview)
        ),
    )


# --- one campaign -----------------------------------------------------------------------------


def _campaign(session: Session, enrollment: Enrollment) -> Campaign:
    campaign = session.get(Campaign, enrollment.campaign_id)
    if campaign is None:
        raise HTTPException(404)
    return campaign


def _enrollment(session: Session, where: Place, enrollment_id: int) -> Enrollment:
    try:
        return data.enrollment_of(session, where.partner_id, enrollment_id)
    except NotFound:
        raise HTTPException(404) from None


def _locale(spec_locales: list[str], asked: str | None, fallback: str) -> str:
    return asked if asked in spec_locales else fallback


def _campaign_page(
    request: Request,
    where: Place,
    engine: SqlEngine,
    session: Session,
    settings: EngineSettings,
    enrollment: Enrollment,
    *,
    typed: Mapping[str, str] | None,
    locale: str | None,
    block: str | None = None,
    status: int = 200,
    message: str = "",
) -> HTMLResponse:
    spec = enrollment_spec(session, enrollment)
    partner = data.partner_row(session, where.partner_id)
    chosen = _locale(spec.locales, locale, pick_locale("", spec, partner.languages))
    mine = changed_fields(spec, enrollment.customization, typed, chosen) if typed else None
    preview = live_preview(session, settings, enrollment, mine, locale=chosen)
    return _page(
        request, where, engine, "portal/campaign.html", partner=partner, block=block,
        status=status, enrollment=enrollment, campaign=_campaign(session, enrollment),
        spec=spec, preview=preview, records=data.decisions_of(session, enrollment),
        content=data.combined_fingerprint(preview), message=message, section="home",
    )  # fmt: skip


@router.get("/portal/{slug}/campaigns/{enrollment_id}")
def campaign_page(
    request: Request,
    slug: str,
    enrollment_id: int,
    visitor: SignedIn,
    engine: Engine,
    settings: Settings,
    locale: str | None = None,
) -> Response:
    where = place(visitor, slug, engine)
    with tenant_session(engine, where.tenant_id) as session:
        enrollment = _enrollment(session, where, enrollment_id)
        return _campaign_page(
            request, where, engine, session, settings, enrollment, typed=None, locale=locale
        )


@router.post("/portal/{slug}/campaigns/{enrollment_id}/preview")
def campaign_preview(
    request: Request,
    slug: str,
    enrollment_id: int,
    visitor: SignedIn,
    engine: Engine,
    settings: Settings,
    form: Form,
    _csrf: CsrfProtected,
) -> Response:
    """htmx: every touch rendered from what the partner typed, and each field's problems."""
    where = place(visitor, slug, engine)
    with tenant_session(engine, where.tenant_id) as session:
        enrollment = _enrollment(session, where, enrollment_id)
        return _campaign_page(
            request, where, engine, session, settings, enrollment, typed=form,
            locale=form.get("locale"), block="live",
        )  # fmt: skip


ACTS = {
    "approve": decisions.APPROVE,
    "decline": decisions.DECLINE,
    "request_changes": decisions.REQUEST_CHANGES,
    "auto_approve": decisions.AUTO_APPROVE,
    "auto_approve_off": decisions.AUTO_APPROVE_OFF,
}


@router.post("/portal/{slug}/campaigns/{enrollment_id}/decide")
def campaign_decide(
    request: Request,
    slug: str,
    enrollment_id: int,
    visitor: SignedIn,
    engine: Engine,
    settings: Settings,
    now: Now,
    form: Form,
    _csrf: CsrfProtected,
) -> Response:
    """Save (``act=save``) or decide: ``act`` is a decision, or ``decision@touch``."""
    where = place(visitor, slug, engine)
    act = form.get("act", "")
    if act != "save" and act.partition("@")[0] not in ACTS:
        raise HTTPException(404)
    locale = form.get("locale", "")
    try:
        with tenant_session(engine, where.tenant_id) as session:
            enrollment = _enrollment(session, where, enrollment_id)
            spec = enrollment_spec(session, enrollment)
            locale = _locale(spec.locales, locale, spec.default_locale)
            done = _decide_here(session, settings, enrollment, where, request, now, form, locale)
    except Again as again:  # nothing was saved (the transaction rolled back): say why
        with tenant_session(engine, where.tenant_id) as session:
            enrollment = _enrollment(session, where, enrollment_id)
            return _campaign_page(
                request, where, engine, session, settings, enrollment, typed=form,
                locale=locale, status=again.status, message=again.message,
            )  # fmt: skip
    target = f"/portal/{slug}/campaigns/{enrollment_id}?locale={locale}&done={done}"
    return RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)


class Again(Exception):
    """Show the page again (nothing saved) with this status and message."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _decide_here(
    session: Session,
    settings: EngineSettings,
    enrollment: Enrollment,
    where: Place,
    request: Request,
    now: datetime,
    form: Mapping[str, str],
    locale: str,
) -> str:
    """Apply the form's ``act`` in ``session``; what was done, or :class:`Again`."""
    act = form.get("act", "")
    decision, _, touch_key = act.partition("@")
    spec = enrollment_spec(session, enrollment)
    mine = changed_fields(spec, enrollment.customization, form, locale)
    preview = live_preview(session, settings, enrollment, mine, locale=locale)
    if any(field.problems for field in preview.fields):
        raise Again(422)
    if form.get("shown") != approval.fingerprint(enrollment):
        raise Again(409, "changed")
    if act == "save":
        if mine:
            values = typed_customization(spec, enrollment.customization, mine, locale)
            try:
                customise(
                    session, enrollment, values, actor=where.visitor.principal.label[:64], now=now
                )
            except UserError as error:
                raise Again(422, str(error)) from error
        return "saved"
    shown_touch = preview.touch(touch_key) if touch_key else None
    if touch_key and shown_touch is None:
        raise HTTPException(404)
    expected = (
        shown_touch.fingerprint if shown_touch is not None else data.combined_fingerprint(preview)
    )
    if form.get(f"content@{touch_key}" if touch_key else "content") != expected:
        raise Again(409, "changed")
    if ACTS[decision] == decisions.APPROVE and not touch_key and not preview.ok:
        raise Again(422)
    try:
        _save_and_decide(
            session, enrollment, where, request, now, preview, ACTS[decision],
            touch_key=touch_key or None, note=form.get("note", "")[:2000],
        )  # fmt: skip
    except decisions.ContentChanged as error:
        raise Again(409, "changed") from error
    except UserError as error:
        raise Again(422, str(error)) from error
    return decision


# --- channel accounts ---------------------------------------------------------------------


def _channels(settings: EngineSettings) -> dict[str, tuple[str, type[BaseModel]]]:
    """The channels a partner connects an account to: those whose Account has fields."""
    found = {}
    for name, channel in default_plugins().channel_classes().items():
        model = channel.Account
        if model is not None and model.model_fields:
            found[name] = (channel.title, model)
    return found


@router.get("/portal/{slug}/accounts")
def accounts_page(
    request: Request, slug: str, visitor: SignedIn, engine: Engine, settings: Settings, now: Now
) -> Response:
    where = place(visitor, slug, engine)
    with tenant_session(engine, where.tenant_id) as session:
        partner = data.partner_row(session, where.partner_id)
        found = data.connections(session, where.partner_id, _channels(settings), now)
    return _page(
        request, where, engine, "portal/accounts.html", partner=partner, connections=found,
        now=now, section="accounts", message=request.query_params.get("error", ""),
    )  # fmt: skip


@router.post("/portal/{slug}/accounts/{channel}")
def connect_account(
    request: Request,
    slug: str,
    channel: str,
    visitor: SignedIn,
    engine: Engine,
    settings: Settings,
    now: Now,
    form: Form,
    _csrf: CsrfProtected,
) -> Response:
    where = place(visitor, slug, engine)
    channels = _channels(settings)
    if channel not in channels:
        raise HTTPException(404)
    title, model = channels[channel]
    box = secret_box(settings)
    with tenant_session(engine, where.tenant_id) as session:
        values = data.account_values(session, where.partner_id, channel, model, form, box)
        try:
            account = accounts.validate_account(model, values, title)
        except UserError as error:
            partner = data.partner_row(session, where.partner_id)
            found = data.connections(session, where.partner_id, channels, now)
            return _page(
                request, where, engine, "portal/accounts.html", partner=partner,
                connections=found, now=now, section="accounts", status=422,
                failed=channel, message=str(error),
            )  # fmt: skip
        accounts.connect_account(
            session, partner_id=where.partner_id, channel=channel, account=account, box=box,
            now=now,
        )  # fmt: skip
        data.resume_held(session, where.partner_id, channel, now)
    return RedirectResponse(
        f"/portal/{slug}/accounts?connected={channel}", status_code=303, headers=PAGE_HEADERS
    )


# --- results ------------------------------------------------------------------------------


@router.get("/portal/{slug}/results")
def results_page(
    request: Request, slug: str, visitor: SignedIn, engine: Engine, now: Now
) -> Response:
    where = place(visitor, slug, engine)
    with tenant_session(engine, where.tenant_id) as session:
        partner = data.partner_row(session, where.partner_id)
        results = partner_results(session, where.partner_id, partner.external_id)
        leads = session.exec(
            select(Lead)
            .where(Lead.partner_id == where.partner_id)
            .order_by(col(Lead.created_at).desc(), col(Lead.id).desc())
            .limit(50)
        ).all()
        return _page(
            request, where, engine, "portal/results.html", partner=partner, results=results,
            leads=list(leads), now=now, section="results",
        )  # fmt: skip


def install(app: FastAPI) -> None:
    """Mount the portal's pages."""
    app.include_router(router)
