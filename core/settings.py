"""Settings, from the environment (``PARTNERCAST_*``), an optional TOML config file and the
key file.

Built by :func:`load_settings`, never at import time. The config file is the one named by
``PARTNERCAST_CONFIG`` or ``./partnercast.toml`` when it exists; environment variables win
over the file, which wins over the key file (``partnercast-keys.toml`` beside the config
file, written owner-only by ``partnercast init``: :mod:`partnercast.core.keys`).

Secure by default: there is no default key. Unless its caller says the keys are not needed
(``require_keys=False``: ``init``, ``db upgrade``, which make them), :func:`load_settings`
refuses, in one line that says how to make them, settings without a real signing key
(at least 32 characters, not a published one) and a valid Fernet encryption key.

A table of the file that is not a core setting (``[smtp]``) belongs to a plugin: the core
keeps it raw, with the ``PARTNERCAST_*`` variables that are not core settings
(:class:`PluginSources`), and the plugin framework validates each with the model its
plugin declared (``register_settings``; docs/plugins.md, "Settings").
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal, get_origin

from pydantic import BaseModel, Field, PrivateAttr, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from partnercast.core.errors import UserError
from partnercast.core.keys import (
    HOW_TO_MAKE_KEYS,
    KEY_FIELDS,
    check_fernet_keys,
    check_secret_key,
    key_file_path,
    read_key_file,
)

DEFAULT_CONFIG_FILE = "partnercast.toml"
DEFAULT_DELIVERY_WINDOW = 32
"""Settings.delivery_window's default, chosen from measurements (docs/performance.md)."""
DEFAULT_DELIVERY_AHEAD = 1
"""Settings.delivery_ahead's default, chosen from measurements (docs/performance.md)."""


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
    # Signs the links that act without a login; no default (`partnercast init` makes it).
    secret_key: SecretStr | None = Field(default=None, repr=False)
    # Signing keys of before a rotation: they no longer sign, but links they signed still
    # verify until they expire. From the environment as a JSON list.
    previous_secret_keys: list[SecretStr] = Field(default_factory=list, repr=False)
    public_base_url: str = "http://127.0.0.1:8025"
    # Fernet keys for secrets at rest (channel accounts, CRM webhook secrets): the first
    # encrypts, all decrypt, so a new key goes first and the old ones stay until
    # `partnercast accounts rotate-keys` has re-encrypted everything. From the environment
    # as a JSON list.
    encryption_keys: list[SecretStr] = Field(default_factory=list, repr=False)
    # Provider-wide caps per channel, shared by every tenant and worker (core/ratelimit.py):
    # {"google_ads": {"per_day": 15000}}; from the environment as JSON.
    rate_limits: dict[str, dict[str, int]] = Field(default_factory=dict)
    # Messages an SMTP connection notes in flight at once (core/journal.py): one database
    # statement a window instead of one a message; a crash repeats at most this many a
    # connection, each with its own Message-ID and flagged uncertain (1: one at a time).
    delivery_window: int = Field(default=DEFAULT_DELIVERY_WINDOW, ge=1, le=1000)
    # Windows a connection notes ahead of the one it sends (core/journal.py): 1 overlaps a
    # note's round trip and commit with the sending, and doubles the bound above (two
    # windows a connection per crash); 0 is one window at a time.
    delivery_ahead: int = Field(default=DEFAULT_DELIVERY_AHEAD, ge=0, le=1)
    # Outgoing webhooks may go to loopback, private and link-local addresses (a receiver on
    # the same host or network, on premises). Off by default: a tenant's webhook could
    # otherwise make the server call its own network (the database, a cloud's metadata
    # service) and show it the answers (core/webhook_outbox.py). Not named webhook_*: that
    # prefix stays free for a plugin's [webhook] section (plugins/sections.py).
    private_webhook_receivers: bool = False
    # Each REST API token's own limit (a token bucket in the database, core/ratelimit.py):
    # this many requests at once, refilled at api_rate_per_second; over it, 429.
    api_rate_burst: int = Field(default=120, ge=1, le=1_000_000)
    api_rate_per_second: float = Field(default=20.0, gt=0, le=100_000)
    # Each plugin's own section, raw (they may hold secrets: never printed nor dumped).
    plugin_sources: PluginSources = Field(default_factory=PluginSources, repr=False, exclude=True)

    # Where the keys were read from, for the one-line errors about them (not a setting).
    _keys_from: str = PrivateAttr(default="settings")

    @property
    def keys_from(self) -> str:
        """Where the keys come from: the key file's path, the config file's, "environment"
        or "settings" (a caller's overrides)."""
        return self._keys_from

    def check_keys(self) -> None:
        """Refuse missing, published, short or malformed keys, in one line (keys not shown)."""
        if self.secret_key is None:
            raise UserError(f"no secret key configured: {HOW_TO_MAKE_KEYS}")
        check_secret_key(self.secret_key.get_secret_value(), self.keys_from)
        for previous in self.previous_secret_keys:
            check_secret_key(previous.get_secret_value(), f"{self.keys_from}: previous key")
        if not self.encryption_keys:
            raise UserError(f"no encryption key configured: {HOW_TO_MAKE_KEYS}")
        check_fernet_keys([key.get_secret_value() for key in self.encryption_keys], self.keys_from)

    def signing_secret(self) -> str:
        """The key that signs (UserError, saying how to make one, when there is none)."""
        if self.secret_key is None:
            raise UserError(f"no secret key configured: {HOW_TO_MAKE_KEYS}")
        return self.secret_key.get_secret_value()

    def verification_secrets(self) -> tuple[str, ...]:
        """Every key a signature may verify with: the signing key first, then older ones."""
        previous = (key.get_secret_value() for key in self.previous_secret_keys)
        return (self.signing_secret(), *previous)


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


def config_file_path() -> Path:
    """The config file: ``PARTNERCAST_CONFIG``, else ``./partnercast.toml`` (may not exist)."""
    return Path(os.environ.get("PARTNERCAST_CONFIG", DEFAULT_CONFIG_FILE))


def load_settings(
    config_file: Path | None = None, *, require_keys: bool = True, **overrides: Any
) -> Settings:
    """Build settings: defaults < key file < config file < environment < explicit overrides.

    With ``require_keys`` (the default) settings without real keys are a UserError that
    says how to make them (:meth:`Settings.check_keys`).

    A table of the config file that is not a core setting (``[smtp]``), and an override
    that is not one (``smtp=...``), is a plugin's section: kept in ``plugin_sources``
    with the ``PARTNERCAST_*`` environment, for the plugin's own settings model.
    """
    path = config_file or config_file_path()
    file_values = _read_config_file(path) if path.exists() else {}
    where = str(path) if file_values else "settings"
    key_path = key_file_path(path)
    key_values = read_key_file(key_path) if key_path.exists() else {}
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
    except SettingsError as error:  # a list or table setting whose value is not JSON
        raise UserError(_not_json(error), where="environment") from None
    keys_from = _keys_source(key_values, core_file, env_values, core_overrides, where, key_path)
    try:
        settings = Settings(
            **{**key_values, **core_file, **env_values, **core_overrides}, plugin_sources=sources
        )
    except ValidationError as error:
        raise UserError(_summarise(error), where=where) from error
    settings._keys_from = keys_from
    if require_keys:
        settings.check_keys()
    return settings


def _keys_source(
    key_file: dict[str, Any],
    config: dict[str, Any],
    environ: dict[str, Any],
    overrides: dict[str, Any],
    config_where: str,
    key_path: Path,
) -> str:
    """Where the signing key comes from, as errors name it."""
    for values, name in ((overrides, "settings"), (environ, "environment"), (config, config_where)):
        if any(field in values for field in KEY_FIELDS):
            return name
    return str(key_path) if key_file else "settings"


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
    core.add("PARTNERCAST_KEY_FILE")
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith("PARTNERCAST_") and name not in core
    }


def _not_json(error: SettingsError) -> str:
    """pydantic-settings' error for a variable that is not JSON, as one line that names the
    variable and what it takes, never its value (it may be a key)."""
    found = re.search(r'field "(\w+)"', str(error))
    if found is None or found.group(1) not in Settings.model_fields:
        return "a PARTNERCAST_* variable is not valid JSON"
    name = found.group(1)
    origin = get_origin(Settings.model_fields[name].annotation)
    shapes: dict[object, str] = {list: 'a JSON list, e.g. ["..."]', dict: "a JSON object, e.g. {}"}
    shape = shapes.get(origin, "JSON")
    return f"PARTNERCAST_{name.upper()} must be {shape}"


def _summarise(error: ValidationError, prefix: str = "") -> str:
    first = error.errors()[0]
    location = prefix + ".".join(str(part) for part in first["loc"])
    return f"setting {location}: {first['msg']}"
