"""Signed, expiring tokens for links that act without a login (unsubscribe, later approve).

The tokens are itsdangerous ``URLSafeTimedSerializer`` tokens (HMAC-SHA1 with the
settings' secret key and a per-purpose salt), so a token for one purpose can never be
replayed for another, and itsdangerous checks them (:func:`unsign`).

:func:`sign` makes the same bytes itsdangerous would, without its per-call machinery (a
new signer and a key derivation each time): an unsubscribe link is signed for every
message sent, thousands a second. tests/funnel/test_tracking.py holds it to
itsdangerous' own output.

:func:`recipient_token` is the one token a message carries for its recipient: every
tracked link, the open pixel and the unsubscribe link (one signature a message, not
one per purpose: they travel in the same message, so one token is no weaker).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import zlib
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

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


RECIPIENT_PURPOSE = "track.recipient"


@lru_cache(maxsize=8)
def _recipient_signer(secret: str) -> TimestampSigner:
    return TimestampSigner(secret, salt=f"partnercast.{RECIPIENT_PURPOSE}")


@lru_cache(maxsize=8)
def _recipient_key(secret: str) -> bytes:
    return _recipient_signer(secret).derive_key()


def recipient_token(
    settings: Settings, *, tenant_id: int, dispatch_id: int, contact_id: int
) -> str:
    """The one token a recipient's message carries for its links, pixel and unsubscribe.

    An itsdangerous TimestampSigner token over ``tenant.dispatch.contact``, made here
    with its key derived once (TimestampSigner.sign derives it on every call): it runs
    once per message on the send path. :func:`read_recipient_token` checks it with
    itsdangerous itself; tests/funnel/test_tracking.py holds the two to the same bytes.
    """
    value = f"{tenant_id}.{dispatch_id}.{contact_id}.".encode("ascii")
    value += _b64(int(time.time()).to_bytes(8, "big").lstrip(b"\x00"))
    secret = settings.secret_key.get_secret_value()
    signature = hmac.digest(_recipient_key(secret), value, hashlib.sha1)
    return (value + b"." + _b64(signature)).decode("ascii")


@dataclass(frozen=True)
class RecipientToken:
    tenant_id: int
    dispatch_id: int
    contact_id: int


def read_recipient_token(settings: Settings, token: str, *, max_age_seconds: int) -> RecipientToken:
    """The ids in a valid recipient token, or InvalidToken saying why not."""
    signer = _recipient_signer(settings.secret_key.get_secret_value())
    try:
        value = signer.unsign(token, max_age=max_age_seconds).decode("ascii")
        tenant, dispatch, contact = (int(part) for part in value.split("."))
    except SignatureExpired as error:
        raise InvalidToken("this link has expired") from error
    except (BadSignature, ValueError, UnicodeDecodeError) as error:
        raise InvalidToken("this link is not valid") from error
    return RecipientToken(tenant, dispatch, contact)
