"""Signed, expiring tokens for links that act without a login (unsubscribe, later approve).

itsdangerous does the signing (HMAC with the settings' secret key and a per-purpose salt),
so a token for one purpose can never be replayed for another.
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from partnercast.core.errors import UserError
from partnercast.core.settings import Settings


class InvalidToken(UserError):
    """A link's token is forged, damaged or expired."""


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        settings.secret_key.get_secret_value(), salt=f"partnercast.{purpose}"
    )


def sign(settings: Settings, purpose: str, payload: Any) -> str:
    """A URL-safe token carrying ``payload`` for ``purpose``."""
    return _serializer(settings, purpose).dumps(payload)


def unsign(settings: Settings, purpose: str, token: str, *, max_age_seconds: int) -> Any:
    """The payload of a valid token, or InvalidToken saying why not."""
    try:
        return _serializer(settings, purpose).loads(token, max_age=max_age_seconds)
    except SignatureExpired as error:
        raise InvalidToken("this link has expired") from error
    except BadSignature as error:
        raise InvalidToken("this link is not valid") from error
