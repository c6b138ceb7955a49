"""Secrets at rest: Fernet encryption with key rotation (MultiFernet).

The first key of ``Settings.encryption_keys`` encrypts, every key decrypts; rotation
puts a new key first, re-encrypts (``rotate``), then drops the old key. With no keys
configured a key is derived from ``secret_key``, which ``Settings.check_safe`` refuses
outside development.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from partnercast.core.errors import PartnercastError, UserError


class SecretsError(PartnercastError):
    """A stored secret cannot be decrypted with any configured key."""


class SecretBox:
    """Encrypts and decrypts small JSON objects of secrets. Never shows its keys."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise UserError("no encryption key configured", where="encryption_keys")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError as error:
            raise UserError(
                "an encryption key is not a Fernet key (32 url-safe base64 bytes; "
                "make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)",
                where="encryption_keys",
            ) from error

    def __repr__(self) -> str:
        return "SecretBox(****)"

    def seal(self, values: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode()

    def open(self, token: str) -> dict[str, Any]:
        if not token:
            return {}
        try:
            return dict(json.loads(self._fernet.decrypt(token.encode())))
        except InvalidToken as error:
            raise SecretsError(
                "a stored secret cannot be decrypted with the configured encryption keys"
            ) from error

    def rotate(self, token: str) -> str:
        """The same secrets, encrypted with the first key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as error:
            raise SecretsError(
                "a stored secret cannot be decrypted with the configured encryption keys"
            ) from error


def derived_key(secret_key: str) -> str:
    """A Fernet key derived from the secret key (development only)."""
    digest = hashlib.sha256(b"partnercast-secrets:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def secret_box(settings: Any) -> SecretBox:
    """The box for ``settings`` (configured keys, else the development key)."""
    keys = [key.get_secret_value() for key in settings.encryption_keys]
    return SecretBox(keys or [derived_key(settings.secret_key.get_secret_value())])
