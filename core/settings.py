"""Settings, from the environment (``PARTNERCAST_*``) and an optional TOML config file.

Built by :func:`load_settings`, never at import time. The config file is the one named by
``PARTNERCAST_CONFIG`` or ``./partnercast.toml`` when it exists; environment variables win
over the file.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from partnercast.core.errors import UserError

DEFAULT_CONFIG_FILE = "partnercast.toml"


class SmtpSettings(BaseSettings):
    """How the email channel reaches its SMTP server."""

    model_config = SettingsConfigDict(env_prefix="PARTNERCAST_SMTP_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = 25
    security: Literal["none", "starttls", "ssl"] = "none"
    ca_file: str | None = None  # trust a private relay's CA (TLS is always verified)
    username: str | None = None
    password: SecretStr | None = None
    timeout_seconds: float = 30.0
    messages_per_connection: int = Field(default=500, ge=1)
    connections: int = Field(default=2, ge=1, le=16)  # parallel SMTP connections per worker


class Settings(BaseSettings):
    """Everything the engine needs to know about where it runs."""

    model_config = SettingsConfigDict(env_prefix="PARTNERCAST_", extra="forbid")

    database_url: str = "sqlite:///partnercast.db"
    environment: Literal["development", "production"] = "development"
    secret_key: SecretStr = SecretStr("development-only-secret-key-change-me")
    public_base_url: str = "http://127.0.0.1:8025"
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    # Fernet keys for secrets at rest (channel accounts): the first encrypts, all decrypt,
    # so a new key goes first and the old ones stay until `partnercast accounts
    # rotate-keys` has re-encrypted everything. Empty: a key derived from secret_key
    # (development only). From the environment as a JSON list.
    encryption_keys: list[SecretStr] = Field(default_factory=list)
    # Provider-wide caps per channel, shared by every tenant and worker (core/ratelimit.py):
    # {"google_ads": {"per_day": 15000}}; from the environment as JSON.
    rate_limits: dict[str, dict[str, int]] = Field(default_factory=dict)

    def check_safe(self) -> None:
        """Refuse the development secret, and derived encryption keys, outside development."""
        if self.environment != "production":
            return
        if self.secret_key.get_secret_value().startswith("development-only"):
            raise UserError(
                "set PARTNERCAST_SECRET_KEY: the development key is not allowed in production"
            )
        if not self.encryption_keys:
            raise UserError(
                "set PARTNERCAST_ENCRYPTION_KEYS (a JSON list of Fernet keys): "
                "keys derived from the secret key are for development only"
            )


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"invalid TOML: {error}", where=str(path)) from error
    return data.get("partnercast", data)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings: defaults < config file < environment < explicit overrides."""
    path = config_file or Path(os.environ.get("PARTNERCAST_CONFIG", DEFAULT_CONFIG_FILE))
    file_values = _read_config_file(path) if path.exists() else {}
    where = str(path) if file_values else "settings"
    smtp_file = file_values.pop("smtp", {})
    try:
        env_values = {k: v for k, v in Settings().model_dump().items() if _set_in_env(k)}
    except ValidationError as error:
        raise UserError(_summarise(error), where="environment") from error
    try:
        smtp = SmtpSettings(**{**smtp_file, **_env_smtp()})
    except ValidationError as error:
        raise UserError(_summarise(error, prefix="smtp."), where=where) from error
    try:
        settings = Settings(**{**file_values, **env_values, "smtp": smtp, **overrides})
    except ValidationError as error:
        raise UserError(_summarise(error), where=where) from error
    settings.check_safe()
    return settings


def _set_in_env(field: str) -> bool:
    return f"PARTNERCAST_{field.upper()}" in os.environ


def _env_smtp() -> dict[str, Any]:
    return SmtpSettings().model_dump(exclude_unset=True)


def _summarise(error: ValidationError, prefix: str = "") -> str:
    first = error.errors()[0]
    location = prefix + ".".join(str(part) for part in first["loc"])
    return f"setting {location}: {first['msg']}"
