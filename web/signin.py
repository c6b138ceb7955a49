"""Sign-in by magic link, sign-out, the tenant switcher's landing, and the shell's static
files (``/static/``): the shell router, mounted by :func:`install`.

(The sign-in routes themselves are completed in the next commit.)
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from partnercast.web.csrf import CsrfRefused, ensure_anonymous_cookie
from partnercast.web.i18n import best_locale
from partnercast.web.identity import SignInRequired, sign_in_url
from partnercast.web.sessions import is_secure
from partnercast.web.shell import PAGE_HEADERS, render_page

router = APIRouter(include_in_schema=False)


def browser_locale(request: Request) -> str:
    """The language of a visitor not signed in: the browser's Accept-Language."""
    return best_locale(accept_language=request.headers.get("accept-language", ""))


def _secure(request: Request) -> bool:
    return is_secure(request, request.app.state.settings)


@router.get("/sign-in")
def sign_in_form(request: Request, next: str = "") -> Response:
    """The form asking for an address to send a sign-in link to."""
    response = render_page(
        request,
        "shell/sign_in.html",
        visitor=None,
        locale=browser_locale(request),
        sent=False,
        problem="",
        email="",
        next_path=next if next.startswith("/") and not next.startswith("//") else "",
    )
    ensure_anonymous_cookie(request, response, secure=_secure(request))
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


__all__ = ["install", "router"]
