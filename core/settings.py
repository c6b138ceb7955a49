"""Settings, from the environment (``PARTNERCAST_*``) and an optional TOML config file.

Built by :func:`load_settings`, never at import time. The config file is the one named by
``PARTNERCAST_CONFIG`` or ``./partnercast.toml`` when it exists; environment variables win
over the file. A table of the file that is not a core setting (``[smtp]``) belongs to a
plugin: the core keeps it raw, with the ``PARTNERCAST_*`` variables that are not core
settings (:class:`PluginSources`), and the plugin framework validates each with the model
its plugin declared (``register_settings``; docs/plugins.md, "Settings").
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from partnercast.core.errors import UserError

DEFAULT_CONFIG_FILE = "partnercast.toml"


class PluginSources(BaseModel):
    """Where each plugin's own settings section comes from, kept raw for the plugins.

    ``file`` holds the tables of the config file that are not core settings (``[smtp]``),
    ``environ`` the ``PARTNERCAST_*`` variables that are not core settings, ``overrides``
    the sections a caller of :func:`load_settings` passed (each replaces that section's
    file and environment values). ``partnercast.plugins`` validates them with the model
    each plugin declares (the ``register_settings`` hook); the core knows no plugin.
    """

    file: dict[str, dict[str, Any]] = Field(default_factory=dict)
    environ: dict[str, str] = Field(default_factory=dict)
    overrides: dict[str, Any] = Field(default_factory=dict)
    where: str = "settings"


class Settings(BaseSettings):
    """Everything the engine needs to know about where it runs."""

    model_config = SettingsConfigDict(env_prefix="PARTNERCAST_", extra="forbid")

    database_url: str = "sqlite:///partnercast.db"
    environment: Literal["development", "production"] = "development"
    secret_key: SecretStr = SecretStr("development-only-secret-key-change-me")
    public_base_url: str = "http://127.0.0.1:8025"
    # Fernet keys for secrets at rest (channel accounts): the first encrypts, all decrypt,
    # so a new key goes first and the old ones stay until `partnercast accounts
    # rotate-keys` has re-encrypted everything. Empty: a key derived from secret_key
    # (development only). From the environment as a JSON list.
    encryption_keys: list[SecretStr] = Field(default_factory=list)
    # Provider-wide caps per channel, shared by every tenant and worker (core/ratelimit.py):
    # {"google_ads": {"per_day": 15000}}; from the environment as JSON.
    rate_limits: dict[str, dict[str, int]] = Field(default_factory=dict)
    # Each plugin's own section, raw (they may hold secrets: never printed nor dumped).
    plugin_sources: PluginSources = Field(default_factory=PluginSources, repr=False, exclude=True)

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
    section = data.get("partnercast", data)
    if not isinstance(section, dict):
        raise UserError("[partnercast] must be a table of settings", where=str(path))
    return section


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings: defaults < config file < environment < explicit overrides.

    A table of the config file that is not a core setting (``[smtp]``), and an override
    that is not one (``smtp=...``), is a plugin's section: kept in ``plugin_sources``
    with the ``PARTNERCAST_*`` environment, for the plugin's own settings model.
    """
    path = config_file or Path(os.environ.get("PARTNERCAST_CONFIG", DEFAULT_CONFIG_FILE))
    file_values = _read_config_file(path) if path.exists() else {}
    where = str(path) if file_values else "settings"
    core_file, sections = _split_sections(file_values)
    core_overrides = {k: v for k, v in overrides.items() if k in Settings.model_fields}
    sources = PluginSources(
        file=sections,
        environ=_plugin_environ(),
        overrides={k: v for k, v in overrides.items() if k not in Settings.model_fields},
        where=where,
    )
    try:
        env_values = {k: v for k, v in Settings().model_dump().items() if _set_in_env(k)}
    except ValidationError as error:
        raise UserError(_summarise(error), where="environment") from error
    try:
        settings = Settings(**{**core_file, **env_values, **core_overrides}, plugin_sources=sources)
    except ValidationError as error:
        raise UserError(_summarise(error), where=where) from error
    settings.check_safe()
    return settings


def _split_sections(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Core settings, and the tables that are plugins' sections (unknown scalars stay core,
    where they are refused as unknown settings)."""
    core: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        if key not in Settings.model_fields and isinstance(value, dict):
            sections[key] = value
        else:
            core[key] = value
    return core, sections


def _set_in_env(field: str) -> bool:
    return f"PARTNERCAST_{field.upper()}" in os.environ


def _plugin_environ() -> dict[str, str]:
    core = {f"PARTNERCAST_{name.upper()}" for name in Settings.model_fields}
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith("PARTNERCAST_") and name not in core
    }


def _summarise(error: ValidationError, prefix: str = "") -> str:
    first = error.errors()[0]
    location = prefix + ".".join(str(part) for part in first["loc"])
    return f"setting {location}: {first['msg']}"
