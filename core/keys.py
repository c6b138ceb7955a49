"""The key file: the signing key and the encryption keys, made at set-up, owner-only.

``partnercast init`` (and ``partnercast db upgrade`` when no key is configured) writes
``partnercast-keys.toml`` beside the config file (``PARTNERCAST_KEY_FILE`` names another),
mode 0600, created exclusively so that an existing file is never overwritten by accident;
:func:`partnercast.core.settings.load_settings` reads it under the config file and the
environment. Nothing here prints or logs a key.

Rotation (:func:`rotate_key_file`): a new signing key signs from then on and the old one
moves to ``previous_secret_keys``, which still verify the links already sent; a new
encryption key goes first and the old ones stay to decrypt until ``partnercast accounts
rotate-keys`` has re-encrypted every stored secret.

Upgrading (:func:`upgrade_keys`, docs/upgrading.md): versions before the key file derived
the Fernet key from ``secret_key`` when no encryption key was set, so a deployment that set
only a secret key has secrets sealed with that derived key. ``init`` then writes a new
encryption key first and the derived one after it (decrypt-only) and leaves the signing key
where it is configured, so those secrets still open until ``accounts rotate-keys``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from partnercast.core.errors import UserError

KEY_FILE_NAME = "partnercast-keys.toml"
KEY_FILE_VARIABLE = "PARTNERCAST_KEY_FILE"
KEY_FIELDS = ("secret_key", "previous_secret_keys", "encryption_keys")
MIN_SECRET_LENGTH = 32
PUBLISHED_KEYS = frozenset({"development-only-secret-key-change-me"})
"""Keys that have been published (in this project's source): never a real key."""

HOW_TO_MAKE_KEYS = (
    "run `partnercast init` to generate the keys (or set PARTNERCAST_SECRET_KEY and "
    "PARTNERCAST_ENCRYPTION_KEYS)"
)


@dataclass
class KeyMaterial:
    """The keys one deployment uses. Its repr shows no key."""

    secret_key: str
    encryption_keys: list[str]
    previous_secret_keys: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return (
            f"KeyMaterial(secret_key=****, previous_secret_keys={len(self.previous_secret_keys)}, "
            f"encryption_keys={len(self.encryption_keys)})"
        )


def generate_keys() -> KeyMaterial:
    """A fresh signing key (256 random bits) and a fresh Fernet key."""
    return KeyMaterial(secrets.token_urlsafe(32), [Fernet.generate_key().decode("ascii")])


def legacy_encryption_key(secret_key: str) -> str:
    """The Fernet key versions before the key file derived from ``secret_key`` when no
    encryption key was configured (decrypt-only now: see :func:`upgrade_keys`)."""
    digest = hashlib.sha256(b"partnercast-secrets:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def upgrade_keys(secret_key: str) -> KeyMaterial:
    """Keys for a deployment upgraded from a version that derived its encryption key from
    ``secret_key``: a new Fernet key encrypts, the derived one still decrypts what it
    sealed. No signing key: the configured one stays where it is (an empty ``secret_key``
    is left out of the key file)."""
    return KeyMaterial(
        "", [Fernet.generate_key().decode("ascii"), legacy_encryption_key(secret_key)]
    )


def key_file_path(config_file: Path) -> Path:
    """Where the key file is: ``PARTNERCAST_KEY_FILE``, else beside the config file."""
    named = os.environ.get(KEY_FILE_VARIABLE)
    return Path(named) if named else config_file.parent / KEY_FILE_NAME


def read_key_file(path: Path) -> dict[str, Any]:
    """The settings in the key file (only the key fields), or UserError in one line."""
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise UserError(
            f"the key file can be read by others: `chmod 600 {path}` (and think about "
            "whether the keys have leaked)",
            where=str(path),
        )
    try:
        with path.open("rb") as handle:
            values = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"invalid TOML: {error}", where=str(path)) from error
    except OSError as error:
        raise UserError(f"cannot read the key file: {error.strerror}", where=str(path)) from error
    unknown = sorted(set(values) - set(KEY_FIELDS))
    if unknown:
        raise UserError(
            f"a key file holds only {', '.join(KEY_FIELDS)}, not {', '.join(unknown)}",
            where=str(path),
        )
    return values


def _render(keys: KeyMaterial) -> str:
    def quoted(values: list[str]) -> str:
        return "[" + ", ".join(f'"{value}"' for value in values) + "]"

    signing = (
        f'secret_key = "{keys.secret_key}"\n'
        if keys.secret_key
        else "# secret_key: configured where it was before (environment or config file).\n"
    )
    return (
        "# partnercast keys: keep this file secret (owner-only) and back it up with the\n"
        "# database. secret_key signs links; previous_secret_keys still verify links signed\n"
        "# before a rotation; the first of encryption_keys encrypts stored secrets, all decrypt.\n"
        f"{signing}"
        f"previous_secret_keys = {quoted(keys.previous_secret_keys)}\n"
        f"encryption_keys = {quoted(keys.encryption_keys)}\n"
    )


def write_key_file(path: Path, keys: KeyMaterial, *, replace: bool = False) -> None:
    """Write ``keys`` to ``path``, readable and writable by the owner only.

    A new file is created exclusively (an existing one is a UserError); with ``replace``
    the file is written beside it and renamed over it, so that it is never half-written.
    """
    text = _render(keys).encode("utf-8")
    target = path.with_name(path.name + ".new") if replace else path
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        if replace:
            target.unlink(missing_ok=True)
        descriptor = os.open(target, flags, 0o600)
    except FileExistsError as error:
        raise UserError(
            "a key file is already there: it is never overwritten", where=str(path)
        ) from error
    except OSError as error:
        raise UserError(f"cannot write the key file: {error.strerror}", where=str(path)) from error
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    if replace:
        os.replace(target, path)


def rotate_key_file(path: Path) -> KeyMaterial:
    """New keys first in the key file at ``path``; the old ones kept to verify and decrypt."""
    if not path.exists():
        raise UserError(f"no key file to rotate: {HOW_TO_MAKE_KEYS}", where=str(path))
    values = read_key_file(path)
    current = str(values.get("secret_key") or "")
    previous = [str(key) for key in values.get("previous_secret_keys") or []]
    encryption = [str(key) for key in values.get("encryption_keys") or []]
    fresh = generate_keys()
    rotated = KeyMaterial(
        fresh.secret_key,
        fresh.encryption_keys + encryption,
        ([current] if current else []) + previous,
    )
    write_key_file(path, rotated, replace=True)
    return rotated


def check_secret_key(value: str, where: str) -> None:
    """Refuse a published or short signing key."""
    if value in PUBLISHED_KEYS or value.startswith("development-only"):
        raise UserError(
            f"the secret key is the development key published in partnercast's source: "
            f"{HOW_TO_MAKE_KEYS}",
            where=where,
        )
    if len(value) < MIN_SECRET_LENGTH:
        raise UserError(
            f"the secret key is shorter than {MIN_SECRET_LENGTH} characters: {HOW_TO_MAKE_KEYS}",
            where=where,
        )


def check_fernet_keys(values: list[str], where: str) -> None:
    """Refuse an encryption key that is not a Fernet key (without showing it)."""
    for position, value in enumerate(values, start=1):
        try:
            Fernet(value.encode("utf-8"))
        except (ValueError, TypeError) as error:
            raise UserError(
                f"encryption key {position} is not a Fernet key (32 url-safe base64 bytes; "
                "`partnercast init --rotate` makes one)",
                where=where,
            ) from error
