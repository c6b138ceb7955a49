"""The email channel's own settings: how it reaches the engine's SMTP server.

Declared through the ``register_settings`` hook under the namespace ``smtp``, so they come
from the ``[smtp]`` table of ``partnercast.toml`` and from ``PARTNERCAST_SMTP_HOST``,
``PARTNERCAST_SMTP_PORT``... (the environment wins), as they always have. A partner without
an SMTP account of its own sends through this server (``EmailChannel.account_for``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

NAMESPACE = "smtp"


class SmtpSettings(BaseModel):
    """How the email channel reaches its SMTP server. The password never shows in repr."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = 25
    security: Literal["none", "starttls", "ssl"] = "none"
    ca_file: str | None = None  # trust a private relay's CA (TLS is always verified)
    username: str | None = None
    password: SecretStr | None = None
    timeout_seconds: float = 30.0
    messages_per_connection: int = Field(default=500, ge=1)
    connections: int = Field(default=2, ge=1, le=16)  # parallel SMTP connections per worker


__all__ = ["NAMESPACE", "SmtpSettings"]
