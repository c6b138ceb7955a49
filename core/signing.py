"""Signed, expiring tokens for links that act without a login (unsubscribe, later approve).

The tokens are itsdangerous ``URLSafeTimedSerializer`` tokens (HMAC-SHA1 with the
settings' secret key and a per-purpose salt), so a token for one purpose can never be
replayed for another, and itsdangerous checks them (:func:`unsign`).

Keys rotate without breaking the links already sent: the settings' ``secret_key`` signs,
and a token verifies with it or with any of ``previous_secret_keys`` (itsdangerous' key
rotation: a list of keys, the newest last). There is no default key: settings without one
fail when signing or reading, saying how to make one (``Settings.signing_secret``).

:func:`sign` makes the same bytes itsdangerous would, without its per-call machinery (a
new signer and a key derivation each time): an unsubscribe link is signed for every
message sent, thousands a second. tests/funnel/test_tracking.py holds it to
itsdangerous' own output.

:func:`recipient_token` is the one token a message carries for its recipient: every
tracked link, the open pixel and the unsubscribe link (one signature a message, not
one per purpose: they travel in the same message, so one token is no weaker).

Time is a parameter: a token is stamped with the ``now`` its caller passes (the send path's
tick, an HTTP request's arrival) and checked against the ``now`` of whoever reads it, never
against the wall clock. The bytes are itsdangerous' own, so tokens made before (stamped by
itsdangerous with ``time.time()``) read the same. A token stamped after the reader's
``now`` (two clocks a little apart, or a simulated one) is not expired: its age is negative,
and only an age past ``max_age_seconds`` expires a link. The signature alone proves that
the stamp is ours.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import zlib
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from partnercast.core.errors import UserError
from partnercast.core.settings import Settings


class InvalidToken(UserError):
    """A link's token is forged, damaged or expired."""


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return _cached_serializer(settings.verification_secrets(), purpose)


@lru_cache(maxsize=64)
def _cached_serializer(secrets: tuple[str, ...], purpose: str) -> URLSafeTimedSerializer:
    """Signs with ``secrets[0]``, verifies with any (itsdangerous wants the newest last)."""
    return URLSafeTimedSerializer(list(reversed(secrets)), salt=f"partnercast.{purpose}")


@lru_cache(maxsize=64)
def _key(secret: str, purpose: str) -> bytes:
    """The HMAC key itsdangerous derives ("django-concat": SHA-1 of salt, "signer", secret)."""
    return _cached_serializer((secret,), purpose).make_signer().derive_key()


def _b64(data: bytes) -> bytes:
    return urlsafe_b64encode(data).rstrip(b"=")


def _stamp(moment: datetime) -> bytes:
    """itsdangerous' timestamp: whole epoch seconds, big-endian, leading zeros dropped."""
    return _b64(int(moment.timestamp()).to_bytes(8, "big").lstrip(b"\x00"))


def _check_age(stamped: datetime, now: datetime, max_age_seconds: int) -> None:
    """InvalidToken, caused by itsdangerous' SignatureExpired as before, past the age."""
    age = int(now.timestamp()) - int(stamped.timestamp())
    if age > max_age_seconds:
        expired = SignatureExpired(f"Signature age {age} > {max_age_seconds} seconds")
        raise InvalidToken("this link has expired") from expired


def sign(settings: Settings, purpose: str, payload: Any, *, now: datetime) -> str:
    """A URL-safe token carrying ``payload`` for ``purpose`` (itsdangerous' format),
    stamped ``now``."""
    secret = settings.signing_secret()
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    compressed = zlib.compress(data)
    value = b"." + _b64(compressed) if len(compressed) < len(data) - 1 else _b64(data)
    value += b"." + _stamp(now)
    signature = hmac.digest(_key(secret, purpose), value, hashlib.sha1)
    return (value + b"." + _b64(signature)).decode("ascii")


def unsign(
    settings: Settings, purpose: str, token: str, *, max_age_seconds: int, now: datetime
) -> Any:
    """The payload of a valid token not older than ``max_age_seconds`` at ``now``, or
    InvalidToken saying why not."""
    try:
        payload, stamped = _serializer(settings, purpose).loads(token, return_timestamp=True)
    except BadSignature as error:
        raise InvalidToken("this link is not valid") from error
    _check_age(stamped, now, max_age_seconds)
    return payload


RECIPIENT_PURPOSE = "track.recipient"


@lru_cache(maxsize=8)
def _recipient_signer(secrets: tuple[str, ...]) -> TimestampSigner:
    """Signs with ``secrets[0]``, verifies with any (itsdangerous wants the newest last)."""
    return TimestampSigner(list(reversed(secrets)), salt=f"partnercast.{RECIPIENT_PURPOSE}")


@lru_cache(maxsize=8)
def _recipient_key(secret: str) -> bytes:
    return _recipient_signer((secret,)).derive_key()


def recipient_token(
    settings: Settings, *, tenant_id: int, dispatch_id: int, contact_id: int, now: datetime
) -> str:
    """The one token a recipient's message carries for its links, pixel and unsubscribe,
    stamped ``now`` (the instant the message is sent).

    An itsdangerous TimestampSigner token over ``tenant.dispatch.contact``, made here
    with its key derived once (TimestampSigner.sign derives it on every call): it runs
    once per message on the send path. :func:`read_recipient_token` checks it with
    itsdangerous itself; tests/funnel/test_tracking.py holds the two to the same bytes.
    """
    value = f"{tenant_id}.{dispatch_id}.{contact_id}.".encode("ascii")
    value += _stamp(now)
    secret = settings.signing_secret()
    signature = hmac.digest(_recipient_key(secret), value, hashlib.sha1)
    return (value + b"." + _b64(signature)).decode("ascii")


@dataclass(frozen=True)
class RecipientToken:
    tenant_id: int
    dispatch_id: int
    contact_id: int


def read_recipient_token(
    settings: Settings, token: str, *, max_age_seconds: int, now: datetime
) -> RecipientToken:
    """The ids in a valid recipient token not older than ``max_age_seconds`` at ``now``,
    or InvalidToken saying why not."""
    signer = _recipient_signer(settings.verification_secrets())
    try:
        signed, stamped = signer.unsign(token, return_timestamp=True)
        tenant, dispatch, contact = (int(part) for part in signed.decode("ascii").split("."))
    except (BadSignature, ValueError, UnicodeDecodeError) as error:
        raise InvalidToken("this link is not valid") from error
    _check_age(stamped, now, max_age_seconds)
    return RecipientToken(tenant, dispatch, contact)
