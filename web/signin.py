"""Sign-in by magic link, sign-out, the tenant switcher, and the shell's static files
(``/static/``): the shell router, mounted by :func:`install`.

* ``GET /sign-in``: the form asking for an email address.
* ``POST /sign-in``: asks for a link. The answer is the same page whether or not the
  address belongs to a user (nothing reveals who has an account); a link is made and
  mailed (after the answer, so that its time tells nothing either) only for a user who
  exists and is not disabled. At most :data:`PER_ADDRESS` requests an hour per address and
  :data:`PER_CLIENT` per client IP (core.ratelimit's buckets, which hold across workers);
  beyond, 429 and a page saying to wait.
* ``GET /sign-in/<token>``: the link's page, with a button; it changes nothing (mail
  scanners open links).
* ``POST /sign-in/<token>``: the button: the link is redeemed once
  (:mod:`partnercast.web.magic_links`), a session opened (:mod:`partnercast.web.sessions`)
  and the visitor sent home. A refused link signs nobody in.
* ``GET /home``: where a signed-in visitor works: the tenant in view (or the first they
  may enter), on the dashboard for staff, in the portal for a partner user;
  ``GET /home/<tenant>``: the switcher's link to another tenant (404 for one not theirs).
* ``POST /sign-out``: revokes the session and clears the cookie.

Every POST checks the CSRF token (:mod:`partnercast.web.csrf`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from fastapi import APIRouter, BackgroundTasks, FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine as SqlEngine

from partnercast.core.errors import UserError
from partnercast.core.ratelimit import acquire
from partnercast.core.settings import Settings
from partnercast.core.tenancy import plain_session
from partnercast.tenants.users import find_user, normalise_email
from partnercast.web import magic_links, mail
from partnercast.web.context import Engine, Now
from partnercast.web.csrf import CsrfProtected, CsrfRefused, ensure_anonymous_cookie
from partnercast.web.i18n import best_locale, gettext_for
from partnercast.web.identity import (
    SignedIn,
    SignInRequired,
    current_visitor,
    home_path,
    sign_in_url,
    tenant_for,
    visible_tenants,
)
from partnercast.web.link_mail import sign_in_message
from partnercast.web.sessions import COOKIE as SESSION_COOKIE
from partnercast.web.sessions import (
    clear_session_cookie,
    find_session,
    is_secure,
    open_session,
    revoke_session,
    set_session_cookie,
    set_tenant_in_view,
)
from partnercast.web.shell import PAGE_HEADERS, render_page

router = APIRouter(include_in_schema=False)

PER_ADDRESS = 5
"""Sign-in links one address may ask for in an hour."""
PER_CLIENT = 30
"""Sign-in links one client IP may ask for in an hour (any addresses)."""
HOUR = 3600.0


def browser_locale(request: Request) -> str:
    """The language of a visitor not signed in: the browser's Accept-Language."""
    return best_locale(accept_language=request.headers.get("accept-language", ""))


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _secure(request: Request) -> bool:
    return is_secure(request, _settings(request))


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _local(path: str) -> str:
    return path if path.startswith("/") and not path.startswith("//") else ""


def _form_page(
    request: Request,
    *,
    status: int = 200,
    sent: bool = False,
    problem: str = "",
    email: str = "",
    next_path: str = "",
    notice: str = "",
) -> Response:
    response = render_page(
        request,
        "shell/sign_in.html",
        visitor=None,
        locale=browser_locale(request),
        status=status,
        sent=sent,
        problem=problem,
        email=email,
        next_path=_local(next_path),
        notice=notice,
    )
    ensure_anonymous_cookie(request, response, secure=_secure(request))
    return response


@router.get("/sign-in")
def sign_in_form(
    request: Request, engine: Engine, now: Now, next: str = "", signed_out: str = ""
) -> Response:
    """The form asking for an address to send a sign-in link to (a visitor already signed
    in goes home)."""
    if current_visitor(request, engine, now) is not None:
        return RedirectResponse(_local(next) or "/home", status_code=303, headers=PAGE_HEADERS)
    _ = gettext_for(browser_locale(request))
    notice = _("You are signed out.") if signed_out else ""
    return _form_page(request, next_path=next, notice=notice)


def _allowed(engine: SqlEngine, key: str, per_hour: int, now: datetime) -> bool:
    grant = acquire(engine, key, 1, now, per_hour / HOUR, float(per_hour), tenant_id=None)
    return grant.granted == 1


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@router.post("/sign-in")
def ask_for_link(
    request: Request,
    background: BackgroundTasks,
    engine: Engine,
    now: Now,
    _csrf: CsrfProtected,
    email: str = Form(""),
    next: str = Form(""),
) -> Response:
    """Send a sign-in link to a known address; answer the same for any address."""
    _ = gettext_for(browser_locale(request))
    typed = email.strip()[:254]
    try:
        address = normalise_email(typed)
    except UserError:  # not an address at all
        return _form_page(
            request,
            status=422,
            problem=_("Enter an email address, like name@example.com."),
            email=typed,
            next_path=next,
        )
    client = _client(request)
    if not (
        _allowed(engine, f"signin.client:{_digest(client)}", PER_CLIENT, now)
        and _allowed(engine, f"signin.address:{_digest(address)}", PER_ADDRESS, now)
    ):
        return _form_page(
            request,
            status=429,
            problem=_("Too many sign-in links were asked for. Wait a while and try again."),
            email=typed,
            next_path=next,
        )
    settings = _settings(request)
    with plain_session(engine) as session:
        user = find_user(session, address)
        if user is not None and not user.disabled:
            link = magic_links.issue(
                session, settings, user, now=now, requested_from=client, next_path=_local(next)
            )
            message = sign_in_message(
                settings, to=user.email, name=user.name, locale=user.locale, url=link.url, now=now
            )
            server = mail.smtp_server(request.app.state.host.config.sections)
            background.add_task(mail.send_quietly, server, message)
    return _form_page(request, sent=True, email=typed)


def _link_page(request: Request, token: str, view: magic_links.LinkView) -> Response:
    locale = view.locale if view.usable else browser_locale(request)
    response = render_page(
        request,
        "shell/sign_in_link.html" if view.usable else "shell/link_refused.html",
        visitor=None,
        locale=locale,
        status=200 if view.usable else 410,
        token=token,
        email=view.email,
        invitation=view.purpose == magic_links.INVITATION,
    )
    ensure_anonymous_cookie(request, response, secure=_secure(request))
    return response


@router.get("/sign-in/{token}")
def link_page(request: Request, token: str, engine: Engine, now: Now) -> Response:
    """The page a sign-in link opens: a button to sign in. Reading it changes nothing."""
    view = magic_links.inspect(engine, _settings(request), token, now=now)
    return _link_page(request, token, view)


@router.post("/sign-in/{token}")
def use_link(
    request: Request, token: str, engine: Engine, now: Now, _csrf: CsrfProtected
) -> Response:
    """Sign in with the link (once): a session, its cookie, and home."""
    redeemed = magic_links.redeem(engine, _settings(request), token, now=now)
    if redeemed is None:
        return _link_page(request, token, magic_links.LinkView(usable=False))
    old = find_session(engine, request.cookies.get(SESSION_COOKIE), now=now)
    if old is not None:  # a browser signed in as someone else: that session ends
        revoke_session(engine, old.id, now=now)
    cookie = open_session(
        engine,
        redeemed.user_id,
        now=now,
        ip=_client(request),
        user_agent=request.headers.get("user-agent", ""),
    )
    response = RedirectResponse(
        redeemed.next_path or "/home", status_code=303, headers=PAGE_HEADERS
    )
    set_session_cookie(response, cookie, secure=_secure(request))
    return response


@router.get("/home")
def home(request: Request, visitor: SignedIn, engine: Engine) -> Response:
    """The signed-in visitor's place: the tenant in view, else the first they may enter."""
    tenants = visible_tenants(visitor, engine)
    if not tenants:
        return render_page(request, "shell/no_access.html", visitor=visitor, engine=engine)
    chosen = next((t for t in tenants if t.id == visitor.tenant_in_view), tenants[0])
    return RedirectResponse(home_path(visitor, chosen), status_code=303, headers=PAGE_HEADERS)


@router.get("/home/{slug}")
def switch_tenant(request: Request, slug: str, visitor: SignedIn, engine: Engine) -> Response:
    """The tenant switcher: work in ``slug`` from now on (404 if it is not the visitor's)."""
    tenant = tenant_for(visitor, slug, engine)
    assert tenant.id is not None
    set_tenant_in_view(engine, visitor.session_id, tenant.id)
    return RedirectResponse(home_path(visitor, tenant), status_code=303, headers=PAGE_HEADERS)


@router.post("/sign-out")
def sign_out(request: Request, engine: Engine, now: Now, _csrf: CsrfProtected) -> Response:
    """End the session: its cookie opens nothing any more."""
    found = find_session(engine, request.cookies.get(SESSION_COOKIE), now=now)
    if found is not None:
        revoke_session(engine, found.id, now=now)
    response = RedirectResponse("/sign-in?signed_out=1", status_code=303, headers=PAGE_HEADERS)
    clear_session_cookie(response, secure=_secure(request))
    return response


async def _sign_in_required(request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequired)
    target = sign_in_url(error.next_path)
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target, **PAGE_HEADERS})
    return RedirectResponse(target, status_code=303, headers=PAGE_HEADERS)


async def _csrf_refused(request: Request, error: Exception) -> Response:
    response: HTMLResponse = render_page(
        request, "shell/refused.html", visitor=None, locale=browser_locale(request), status=403
    )
    return response


def install(app: FastAPI) -> None:
    """Mount the shell: its router, /static/, and the answers to 'sign in first' (303) and
    'no CSRF token' (403)."""
    app.include_router(router)
    app.mount("/static", StaticFiles(packages=[("partnercast.web", "static")]), name="static")
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(CsrfRefused, _csrf_refused)


__all__ = ["PER_ADDRESS", "PER_CLIENT", "install", "router"]
