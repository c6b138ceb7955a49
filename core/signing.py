"""Signed, expiring tokens for links that act without a login (unsubscribe, later approve).

itsdangerous does the signing (HMAC with the settings' secret key and a per-purpose salt),
so a token for one purpose can never be replayed for another.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from partnercast.core.errors import UserError
from partnercast.core.settings import Settings


class InvalidToken(UserError):
    """A link's token is forged, damaged or expired."""


class _KeyOnceSigner(TimestampSigner):
    """itsdangerous' TimestampSigner, deriving its key once instead of on every signature
    (one SHA-1 of salt and secret a call): unsubscribe links are signed per message."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        if secret_key is not None:
            return super().derive_key(secret_key)
        derived: bytes | None = self.__dict__.get("_derived")
        if derived is None:
            derived = self.__dict__["_derived"] = super().derive_key()
        return derived


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return _cached_serializer(settings.secret_key.get_secret_value(), purpose)


@lru_cache(maxsize=64)
def _cached_serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"partnercast.{purpose}", signer=_KeyOnceSigner)


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
