"""Secrets at rest: Fernet encryption with key rotation (MultiFernet).

The first key of ``Settings.encryption_keys`` encrypts, every key decrypts; rotation
puts a new key first (``partnercast init --rotate``), re-encrypts (``rotate``: ``partnercast
accounts rotate-keys``), then drops the old key. There is no default and no derived key:
settings without an encryption key fail here saying how to make one (``partnercast init``).
On an upgrade, ``init`` writes the key earlier versions derived from the secret key into the
key file after a new one (:func:`partnercast.core.keys.upgrade_keys`): a configured key
like any other, decrypt-only until ``accounts rotate-keys`` makes it unneeded.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from partnercast.core.errors import UserError
from partnercast.core.keys import HOW_TO_MAKE_KEYS

NOT_DECRYPTED = (
    "a stored secret cannot be decrypted with the configured encryption keys "
    "(keep the key it was sealed with in encryption_keys, after the new one)"
)


class SecretsError(UserError):
    """A stored secret cannot be decrypted with any configured key (one line, no key)."""


class SecretBox:
    """Encrypts and decrypts small JSON objects of secrets. Never shows its keys."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise UserError(f"no encryption key configured: {HOW_TO_MAKE_KEYS}")
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
            raise SecretsError(NOT_DECRYPTED) from error

    def rotate(self, token: str) -> str:
        """The same secrets, encrypted with the first key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as error:
            raise SecretsError(NOT_DECRYPTED) from error


def secret_box(settings: Any) -> SecretBox:
    """The box for the settings' encryption keys (UserError when there are none)."""
    return SecretBox([key.get_secret_value() for key in settings.encryption_keys])
