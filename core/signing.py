"""Signed, expiring tokens for links that act without a login (unsubscribe, later approve).

The tokens are itsdangerous ``URLSafeTimedSerializer`` tokens (HMAC-SHA1 with the
settings' secret key and a per-purpose salt), so a token for one purpose can never be
replayed for another, and itsdangerous checks them (:func:`unsign`).

:func:`sign` makes the same bytes itsdangerous would, without its per-call machinery (a
new signer and a key derivation each time): an unsubscribe link is signed for every
message sent, thousands a second. tests/funnel/test_tracking.py holds it to
itsdangerous' own output.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import zlib
from base64 import urlsafe_b64encode
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from partnercast.core.errors import UserError
from partnercast.core.settings import Settings


class InvalidToken(UserError):
    """A link's token is forged, damaged or expired."""


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return _cached_serializer(settings.secret_key.get_secret_value(), purpose)


@lru_cache(maxsize=64)
def _cached_serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"partnercast.{purpose}")


@lru_cache(maxsize=64)
def _key(secret: str, purpose: str) -> bytes:
    """The HMAC key itsdangerous derives ("django-concat": SHA-1 of salt, "signer", secret)."""
    return _cached_serializer(secret, purpose).make_signer().derive_key()


def _b64(data: bytes) -> bytes:
    return urlsafe_b64encode(data).rstrip(b"=")


def sign(settings: Settings, purpose: str, payload: Any) -> str:
    """A URL-safe token carrying ``payload`` for ``purpose`` (itsdangerous' format)."""
    secret = settings.secret_key.get_secret_value()
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    compressed = zlib.compress(data)
    value = b"." + _b64(compressed) if len(compressed) < len(data) - 1 else _b64(data)
    stamp = int(time.time())
    value += b"." + _b64(stamp.to_bytes(8, "big").lstrip(b"\x00"))
    signature = hmac.digest(_key(secret, purpose), value, hashlib.sha1)
    return (value + b"." + _b64(signature)).decode("ascii")


def unsign(settings: Settings, purpose: str, token: str, *, max_age_seconds: int) -> Any:
    """The payload of a valid token, or InvalidToken saying why not."""
    try:
        return _serializer(settings, purpose).loads(token, max_age=max_age_seconds)
    except SignatureExpired as error:
        raise InvalidToken("this link has expired") from error
    except BadSignature as error:
        raise InvalidToken("this link is not valid") from error
