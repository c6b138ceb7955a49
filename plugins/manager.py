"""Loading plugins, and the small typed facade through which the core calls hooks.

:func:`load_plugins` is the one place plugins are loaded, lazily (never at import): the
built-in plugins first, registered explicitly by module name (:data:`DEFAULT_PLUGINS`, as
datasette does), then every entry point of the ``partnercast`` group (third parties), then
``check_pending()``. ``PARTNERCAST_PLUGINS=a,b`` is an allow-list of entry points: it
selects external plugins and can never switch a built-in off by accident;
``PARTNERCAST_DISABLE_PLUGINS=c,d`` is a block-list of names, built-ins included (naming
one is on purpose). A plugin that fails to import is reported and skipped; the others load.

:class:`Plugins` is the facade: one method per hook, typed against the engine's own
classes. The lifecycle hooks get frozen snapshots (:class:`DispatchInfo`,
:class:`EventInfo`) built here from the core's rows. An exception from a registry hook is
reported against its plugin, one from an observer (``after_publish``, ``on_event``) is
logged, and one from ``before_publish`` vetoes the dispatch (a crashed check never lets a
publication through).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, entry_points, version
from types import MappingProxyType
from typing import TYPE_CHECKING

import pluggy

from partnercast.core.errors import PartnercastError, UserError
from partnercast.plugins import hookspecs
from partnercast.plugins.hooktypes import DispatchInfo, EventInfo, JobFunction

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter
    from pydantic import BaseModel

    from partnercast.core.models import Dispatch, Event
    from partnercast.core.settings import Settings
    from partnercast.plugins.channel import Channel, Draft, PublishResult
    from partnercast.plugins.host import Host
    from partnercast.plugins.settings import PluginConfig

# The CLI loads the plugins to list their commands in `partnercast --help`: the database
# models, the settings and everything pydantic-based (the Channel contract, the settings
# sections) are imported where they are used, not with this module.

log = logging.getLogger(__name__)

GROUP = "partnercast"
DISTRIBUTION = "partnercast"
DEFAULT_PLUGINS: tuple[tuple[str, str], ...] = (
    ("email", "partnercast.channels.email"),
    ("microsite", "partnercast.channels.microsite"),
    ("social", "partnercast.channels.social"),
    ("search", "partnercast.channels.search"),
)
"""The built-in plugins, (name, module): registered by the engine itself, not through
entry points, so that an allow-list of external plugins cannot drop them. They are
imported by name at load time only (the plugin framework never imports a channel)."""


@dataclass(frozen=True)
class PluginInfo:
    """What `partnercast plugins` shows about one loaded or failed plugin."""

    name: str
    distribution: str
    version: str
    error: str = ""


@dataclass(frozen=True)
class Job:
    """A periodic job a plugin registered; the core's scheduler runs ``function(now)``."""

    name: str
    function: JobFunction
    every: timedelta
    plugin: str


@dataclass
class Plugins:
    """The loaded plugin manager and what the core asks of it, one method per hook."""

    pm: pluggy.PluginManager
    infos: list[PluginInfo] = field(default_factory=list)
    _channels: dict[str, type[Channel]] | None = None
    _settings_models: dict[str, type[BaseModel]] | None = None

    # --- registries ---------------------------------------------------------------------

    def channel_classes(self) -> dict[str, type[Channel]]:
        """Every registered channel class, by name (validated, duplicates refused)."""
        if self._channels is None:
            found: dict[str, type[Channel]] = {}

            def register(channel_class: type[Channel], /) -> None:
                _check_channel_class(channel_class)
                if channel_class.name in found:
                    raise PartnercastError(
                        f"two plugins register the channel {channel_class.name!r}: "
                        f"{found[channel_class.name].__module__} and {channel_class.__module__}"
                    )
                found[channel_class.name] = channel_class

            for impl in self.pm.hook.register_channels.get_hookimpls():
                self._call_registry(impl, register, "register channels")
            self._channels = found
        return self._channels

    def settings_models(self) -> dict[str, type[BaseModel]]:
        """Every plugin's settings model, by namespace (checked, duplicates refused)."""
        if self._settings_models is None:
            from pydantic import BaseModel

            from partnercast.core.settings import Settings
            from partnercast.plugins.sections import check_namespace

            found: dict[str, type[BaseModel]] = {}
            owners: dict[str, str] = {}

            for impl in self.pm.hook.register_settings.get_hookimpls():

                def register(
                    namespace: str, model: type[BaseModel], /, _plugin: str = impl.plugin_name
                ) -> None:
                    check_namespace(namespace, Settings.model_fields)
                    if not (isinstance(model, type) and issubclass(model, BaseModel)):
                        raise PartnercastError(
                            f"settings {namespace!r} of {_plugin}: {model!r} is not a "
                            "pydantic model"
                        )
                    if namespace in found:
                        raise PartnercastError(
                            f"two plugins register the settings {namespace!r}: "
                            f"{owners[namespace]} and {_plugin}"
                        )
                    found[namespace], owners[namespace] = model, _plugin

                self._call_registry(impl, register, "register settings")
            self._settings_models = found
        return self._settings_models

    def _call_registry(
        self, impl: pluggy.HookImpl, register: Callable[..., None], what: str
    ) -> None:
        try:
            impl.function(register=register)
        except PartnercastError:
            raise  # a duplicate or malformed registration is the installer's to fix
        except Exception as error:  # one broken plugin never hides the others
            self._report(impl.plugin_name, error, what)

    def _report(self, plugin_name: str, error: Exception, what: str) -> None:
        log.warning("plugin %s failed to %s: %s", plugin_name, what, error)
        message = f"{type(error).__name__}: {error}"
        self.infos = [
            PluginInfo(i.name, i.distribution, i.version, message) if i.name == plugin_name else i
            for i in self.infos
        ]

    def config(
        self, settings: Settings, *, clock: Callable[[], datetime] | None = None
    ) -> PluginConfig:
        """What channels are built with: the engine's public settings, every plugin's
        section, validated (a bad value is one UserError naming ``<namespace>.<field>``),
        and the caller's ``clock``."""
        from partnercast.plugins.sections import build_config

        return build_config(settings, self.settings_models(), clock)

    def channel(
        self,
        name: str,
        settings: Settings | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> Channel:
        """A new instance of the channel ``name``, built with the plugins' config and the
        caller's clock (a run's lease clock: what the channel stamps is the run's time)."""
        classes = self.channel_classes()
        if name not in classes:
            known = ", ".join(sorted(classes)) or "none"
            raise UserError(f"no channel {name!r} is installed (installed: {known})")
        config = self.config(settings, clock=clock) if settings is not None else None
        return classes[name](config)

    def jobs(self) -> list[Job]:
        """Every periodic job plugins registered (names unique, intervals positive)."""
        found: dict[str, Job] = {}
        for impl in self.pm.hook.register_jobs.get_hookimpls():

            def register(
                name: str,
                function: JobFunction,
                /,
                *,
                every: timedelta,
                _plugin: str = impl.plugin_name,
            ) -> None:
                if name in found:
                    raise PartnercastError(
                        f"two plugins register the job {name!r}: {found[name].plugin} and {_plugin}"
                    )
                if every <= timedelta(0):
                    raise PartnercastError(f"job {name!r} must run every positive interval")
                found[name] = Job(name, function, every, _plugin)

            self._call_registry(impl, register, "register jobs")
        return list(found.values())

    def register_commands(self, app: typer.Typer) -> None:
        self.pm.hook.register_commands(app=app)

    def template_filters(self) -> dict[str, Callable[..., object]]:
        merged: dict[str, Callable[..., object]] = {}
        results: list[Mapping[str, Callable[..., object]] | None] = self.pm.hook.template_filters()
        for filters in results:
            merged.update(filters or {})
        return merged

    # --- the publishing lifecycle -------------------------------------------------------

    def before_publish(self, dispatch: Dispatch, draft: Draft) -> list[str]:
        """Every plugin's reasons to stop the dispatch (empty: let it go)."""
        try:
            results: list[list[str] | None] = self.pm.hook.before_publish(
                dispatch=dispatch_info(dispatch), draft=draft
            )
        except Exception as error:  # a crashed check never lets a publication through
            log.exception("a before_publish hook failed")
            return [f"a before_publish plugin failed: {type(error).__name__}: {error}"]
        return [reason for vetoes in results for reason in vetoes or []]

    def after_publish(self, dispatch: Dispatch, result: PublishResult) -> None:
        try:
            self.pm.hook.after_publish(dispatch=dispatch_info(dispatch), result=result)
        except Exception:  # an observer must never undo a publication
            log.exception("an after_publish hook failed")

    def on_event(self, event: Event) -> None:
        try:
            self.pm.hook.on_event(event=event_info(event))
        except Exception:  # an observer must never break the engine
            log.exception("an on_event hook failed")

    # --- the web (helper A: register_routes) --------------------------------------------

    def routers(self, host: Host) -> list[APIRouter]:
        """Every router plugins registered for an application whose engine is ``host``; a
        plugin whose hook fails is reported and left out, the others' routes still mount."""
        found: list[APIRouter] = []
        for impl in self.pm.hook.register_routes.get_hookimpls():
            mine: list[APIRouter] = []
            given = {"register": mine.append, "host": host}
            try:
                impl.function(**{name: given[name] for name in impl.argnames})
            except Exception as error:  # one broken plugin never takes the others' pages
                self._report(impl.plugin_name, error, "register routes")
                continue
            found.extend(mine)
        return found


def dispatch_info(dispatch: Dispatch) -> DispatchInfo:
    """The plugins' snapshot of a dispatch row (which must have been flushed)."""
    return DispatchInfo(
        id=_row_id(dispatch.id, "dispatch"),
        tenant_id=dispatch.tenant_id,
        partner_id=dispatch.partner_id,
        channel=dispatch.channel,
        idempotency_key=dispatch.idempotency_key,
        state=dispatch.state,
        scheduled_at=dispatch.scheduled_at,
        attempts=dispatch.attempts,
        external_ids=tuple(dispatch.external_ids),
        sent_count=dispatch.sent_count,
        suppressed_count=dispatch.suppressed_count,
        failed_count=dispatch.failed_count,
    )


def event_info(event: Event) -> EventInfo:
    """The plugins' snapshot of a committed event row."""
    return EventInfo(
        id=_row_id(event.id, "event"),
        tenant_id=event.tenant_id,
        kind=event.kind,
        occurred_at=event.occurred_at,
        source=event.source,
        value=event.value,
        partner_id=event.partner_id,
        campaign_id=event.campaign_id,
        enrollment_id=event.enrollment_id,
        dispatch_id=event.dispatch_id,
        contact_id=event.contact_id,
        data=MappingProxyType(dict(event.data)),
    )


def _row_id(row_id: int | None, what: str) -> int:
    if row_id is None:
        raise PartnercastError(f"a {what} reaches the plugins before it has an id")
    return row_id


def _check_channel_class(channel_class: object) -> None:
    from partnercast.plugins.channel import Channel

    if not (isinstance(channel_class, type) and issubclass(channel_class, Channel)):
        raise PartnercastError(f"{channel_class!r} is not a partnercast Channel subclass")
    for attribute in ("name", "title", "Account"):
        if not hasattr(channel_class, attribute):
            raise PartnercastError(f"channel {channel_class.__name__} has no {attribute!r}")


def _names(variable: str) -> set[str]:
    return {name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()}


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(
    extra: Sequence[object] = (),
    *,
    defaults: Sequence[tuple[str, str]] = DEFAULT_PLUGINS,
) -> Plugins:
    """Load the built-ins (``defaults``), the selected entry points, and ``extra`` objects
    (throwaway plugins in tests); then check every hook implementation against its spec."""
    pm = new_plugin_manager()
    blocked = _names("PARTNERCAST_DISABLE_PLUGINS")
    infos = [_load_default(pm, name, module) for name, module in defaults if name not in blocked]
    infos += _load_entry_points(pm, blocked)
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    return Plugins(pm, infos)


def _load_default(pm: pluggy.PluginManager, name: str, module: str) -> PluginInfo:
    own_version = _own_version()
    try:
        pm.register(importlib.import_module(module), name=name)
    except Exception as error:  # a broken plugin is reported, the others still load
        log.warning("plugin %s failed to load: %s", name, error)
        return PluginInfo(name, DISTRIBUTION, own_version, f"{type(error).__name__}: {error}")
    return PluginInfo(name, DISTRIBUTION, own_version)


def _load_entry_points(pm: pluggy.PluginManager, blocked: set[str]) -> list[PluginInfo]:
    allowed = _names("PARTNERCAST_PLUGINS")
    infos: list[PluginInfo] = []
    for entry in entry_points(group=GROUP):
        if (allowed and entry.name not in allowed) or entry.name in blocked:
            continue
        if pm.has_plugin(entry.name):
            continue  # a built-in, already registered by name
        dist = entry.dist
        dist_name, dist_version = (dist.name, dist.version) if dist else ("?", "?")
        try:
            pm.register(entry.load(), name=entry.name)
        except Exception as error:  # a broken plugin is reported, the others still load
            log.warning("plugin %s failed to load: %s", entry.name, error)
            message = f"{type(error).__name__}: {error}"
            infos.append(PluginInfo(entry.name, dist_name, dist_version, message))
            continue
        infos.append(PluginInfo(entry.name, dist_name, dist_version))
    return infos


def _own_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "?"


@lru_cache(maxsize=1)
def default_plugins() -> Plugins:
    """The process-wide plugins, loaded on first use (never at import).

    Their ``on_event`` hook is subscribed to the core's event bus, so every committed
    event reaches the plugins; when no plugin implements it nothing is subscribed, and
    whoever records events in bulk (the tracker's writer) need not make an Event object
    of each one for nobody (a tenth of ``partnercast serve``'s CPU under a click storm).
    """
    from partnercast.core.event_bus import subscribe

    plugins = load_plugins()
    if plugins.pm.hook.on_event.get_hookimpls():
        subscribe(plugins.on_event)
    return plugins


def channel_content_models() -> dict[str, type[BaseModel]]:
    """The Content model of every installed channel, by channel name."""
    return {name: cls.Content for name, cls in default_plugins().channel_classes().items()}


def channel_template_suffixes() -> dict[str, str]:
    """Template file suffix of every installed channel, by channel name."""
    return {name: cls.template_suffix for name, cls in default_plugins().channel_classes().items()}


def installed_channels() -> dict[str, type[Channel]]:
    """Every installed channel class, by name (the process-wide plugins')."""
    return dict(default_plugins().channel_classes())
