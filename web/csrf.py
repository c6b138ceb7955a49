"""Cross-site request forgery: every form and htmx request of the web pages carries a token
bound to the visitor's session.

The token is an HMAC (the settings' signing key) of the session's public id: a page on
another site can make the browser send the cookie (SameSite=Lax stops that for POSTs
already, this is the second lock) but cannot read the page, so it cannot know the token.
Before sign-in (the sign-in form itself) the token is bound instead to a random anonymous
cookie, ``partnercast_csrf``, set by the page that shows the form
(:func:`ensure_anonymous_cookie`).

A template puts ``{{ csrf_field }}`` (the hidden input ``csrf_token``) in each form; the
base layout sends the same token as the ``X-CSRF-Token`` header on every htmx request
(``hx-headers``). A route taking an unsafe method depends on :data:`CsrfProtected`, which
answers 403 (:class:`CsrfRefused`) when the token is missing or wrong, or when the request's
Origin is another site's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from base64 import urlsafe_b64encode
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from markupsafe import Markup, escape

from partnercast.core.settings import Settings
from partnercast.web.sessions import COOKIE as SESSION_COOKIE
from partnercast.web.sessions import split_cookie

ANONYMOUS_COOKIE = "partnercast_csrf"
FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(Exception):
    """The request's CSRF token is missing or wrong (answered 403)."""


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _token(settings: Settings, binding: str) -> str:
    key = hashlib.sha256(("partnercast.csrf:" + settings.signing_secret()).encode()).digest()
    digest = hmac.digest(key, binding.encode("utf-8"), hashlib.sha256)
    return urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _binding(request: Request) -> str | None:
    """What the token is bound to: the session's public id, else the anonymous cookie."""
    parts = split_cookie(request.cookies.get(SESSION_COOKIE))
    if parts is not None:
        return "session:" + parts[0]
    anonymous = getattr(request.state, "csrf_anonymous", None) or request.cookies.get(
        ANONYMOUS_COOKIE
    )
    return "anonymous:" + anonymous if anonymous else None


def csrf_token(request: Request) -> str:
    """The token for this visitor's forms (an anonymous binding is made if there is none:
    the page must then call :func:`ensure_anonymous_cookie` on its response)."""
    binding = _binding(request)
    if binding is None:
        request.state.csrf_anonymous = secrets.token_urlsafe(24)
        binding = "anonymous:" + request.state.csrf_anonymous
    return _token(_settings(request), binding)


def csrf_field(request: Request) -> Markup:
    """The hidden form field carrying the token, for templates: ``{{ csrf_field }}``."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        FIELD, escape(csrf_token(request))
    )


def ensure_anonymous_cookie(request: Request, response: Response, *, secure: bool) -> None:
    """Set the anonymous cookie a token of this page was bound to, if the page made one."""
    made = getattr(request.state, "csrf_anonymous", None)
    if made:
        response.set_cookie(
            ANONYMOUS_COOKIE, made, path="/", httponly=True, samesite="lax", secure=secure
        )


def _same_origin(request: Request, settings: Settings) -> bool:
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    allowed = {f"{request.url.scheme}://{request.url.netloc}"}
    public = urlsplit(settings.public_base_url)
    allowed.add(f"{public.scheme}://{public.netloc}")
    return origin in allowed


async def check_csrf(request: Request) -> None:
    """The dependency behind :data:`CsrfProtected` (safe methods pass)."""
    if request.method in SAFE_METHODS:
        return
    settings = _settings(request)
    binding = _binding(request)
    sent = request.headers.get(HEADER)
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(FIELD)
            sent = value if isinstance(value, str) else None
    if binding is None or not sent or not _same_origin(request, settings):
        raise CsrfRefused()
    if not hmac.compare_digest(sent.encode(), _token(settings, binding).encode()):
        raise CsrfRefused()


CsrfProtected = Annotated[None, Depends(check_csrf)]
"""A route parameter ``_: CsrfProtected`` refuses a POST without the visitor's token."""

__all__ = [
    "ANONYMOUS_COOKIE",
    "FIELD",
    "HEADER",
    "CsrfProtected",
    "CsrfRefused",
    "check_csrf",
    "csrf_field",
    "csrf_token",
    "ensure_anonymous_cookie",
]
