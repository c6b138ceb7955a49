"""Building :class:`~partnercast.plugins.settings.PluginConfig` from the engine's settings.

Internal to the plugin framework (the manager calls it): each declared section is
validated by its plugin's model from the raw values ``core.settings.load_settings`` kept
(file tables, ``PARTNERCAST_<NAMESPACE>_<FIELD>`` variables, explicit overrides).
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from partnercast.core.errors import PartnercastError, UserError
from partnercast.plugins.settings import PluginConfig

if TYPE_CHECKING:
    from partnercast.core.settings import Settings

M = TypeVar("M", bound=BaseModel)
NAMESPACE = re.compile(r"[a-z][a-z0-9_]*")
_STRUCTURED = (list, dict, set, tuple, frozenset)


def check_namespace(namespace: str, core_fields: typing.Iterable[str]) -> None:
    """Refuse a namespace that is malformed or would shadow a core setting.

    ``[rate_limits]`` is the core's, and ``secret`` would read ``PARTNERCAST_SECRET_KEY``
    as its field ``key``: both are refused.
    """
    if not NAMESPACE.fullmatch(namespace):
        raise PartnercastError(
            f"settings namespace {namespace!r} must be lower-case letters, digits and _"
        )
    for name in core_fields:
        if name == namespace or name.startswith(f"{namespace}_"):
            raise PartnercastError(
                f"settings namespace {namespace!r} would shadow the core setting {name!r}"
            )


def build_config(
    settings: Settings,
    models: Mapping[str, type[BaseModel]],
    clock: Callable[[], datetime] | None = None,
) -> PluginConfig:
    """Validate every declared section; a bad value is one clear UserError."""
    return PluginConfig(
        environment=settings.environment,
        public_base_url=settings.public_base_url,
        sections={ns: _section(ns, model, settings) for ns, model in models.items()},
        clock=clock,
    )


def _section(namespace: str, model: type[M], settings: Settings) -> M:
    sources = settings.plugin_sources
    if namespace in sources.overrides:
        given = sources.overrides[namespace]
        if isinstance(given, model):
            return given
        values = given.model_dump() if isinstance(given, BaseModel) else dict(given)
        return _validate(namespace, model, values, set(), "settings")
    env_values = _from_environ(namespace, model, sources.environ)
    values = {**sources.file.get(namespace, {}), **env_values}
    return _validate(namespace, model, values, set(env_values), sources.where)


def _validate(
    namespace: str, model: type[M], values: Mapping[str, Any], from_env: set[str], where: str
) -> M:
    try:
        return model.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in (namespace, *first["loc"]))
        blamed = "environment" if first["loc"] and first["loc"][0] in from_env else where
        raise UserError(f"setting {location}: {first['msg']}", where=blamed) from error


def _from_environ(
    namespace: str, model: type[BaseModel], environ: Mapping[str, str]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    prefix = f"PARTNERCAST_{namespace.upper()}_"
    for name, info in model.model_fields.items():
        raw = environ.get(prefix + name.upper())
        if raw is not None:
            values[name] = _decode(raw, info.annotation)
    return values


def _decode(raw: str, annotation: Any) -> Any:
    """Structured fields (lists, dicts, models) come as JSON; everything else as text."""
    if _structured(annotation):
        try:
            return json.loads(raw)
        except ValueError:
            return raw  # the model's validation then says what is wrong
    return raw


def _structured(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_structured(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    if origin is not None:
        return origin in _STRUCTURED or (isinstance(origin, type) and issubclass(origin, Mapping))
    return isinstance(annotation, type) and (
        issubclass(annotation, _STRUCTURED) or issubclass(annotation, BaseModel)
    )
