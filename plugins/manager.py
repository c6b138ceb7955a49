"""Loading plugins, and the small typed facade through which the core calls hooks.

:func:`load_plugins` is the one place plugins are loaded: entry points of the
``partnercast`` group (the built-in channels register there too), filtered by the
``PARTNERCAST_PLUGINS`` allow-list and ``PARTNERCAST_DISABLE_PLUGINS`` block-list. A plugin
that fails to import is recorded and skipped; the others still load.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from partnercast.core.errors import PartnercastError, UserError
from partnercast.plugins import hookspecs
from partnercast.plugins.channel import Channel, Draft, PublishResult

log = logging.getLogger(__name__)

GROUP = "partnercast"


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
    function: Callable[[datetime], None]
    every: timedelta
    plugin: str


@dataclass
class Plugins:
    """The loaded plugin manager and what the core asks of it, one method per hook."""

    pm: pluggy.PluginManager
    infos: list[PluginInfo] = field(default_factory=list)
    _channels: dict[str, type[Channel]] | None = None

    def channel_classes(self) -> dict[str, type[Channel]]:
        """Every registered channel class, by name (validated, duplicates refused)."""
        if self._channels is None:
            found: dict[str, type[Channel]] = {}

            def register(channel_class: type[Channel]) -> None:
                _check_channel_class(channel_class)
                if channel_class.name in found:
                    raise PartnercastError(
                        f"two plugins register the channel {channel_class.name!r}: "
                        f"{found[channel_class.name].__module__} and {channel_class.__module__}"
                    )
                found[channel_class.name] = channel_class

            for impl in self.pm.hook.register_channels.get_hookimpls():
                try:
                    impl.function(register=register)
                except PartnercastError:
                    raise  # a duplicate or malformed channel is the installer's to fix
                except Exception as error:  # one broken plugin never hides the others
                    self._report(impl.plugin_name, error)
            self._channels = found
        return self._channels

    def _report(self, plugin_name: str, error: Exception) -> None:
        log.warning("plugin %s failed to register channels: %s", plugin_name, error)
        message = f"{type(error).__name__}: {error}"
        self.infos = [
            PluginInfo(i.name, i.distribution, i.version, message) if i.name == plugin_name else i
            for i in self.infos
        ]

    def channel(self, name: str, settings: Any = None) -> Channel:
        classes = self.channel_classes()
        if name not in classes:
            known = ", ".join(sorted(classes)) or "none"
            raise UserError(f"no channel {name!r} is installed (installed: {known})")
        return classes[name](settings)

    def jobs(self) -> list[Job]:
        """Every periodic job plugins registered (names unique, intervals positive)."""
        found: dict[str, Job] = {}
        for impl in self.pm.hook.register_jobs.get_hookimpls():

            def register(
                name: str,
                function: Callable[[datetime], None],
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

            impl.function(register=register)
        return list(found.values())

    def register_commands(self, app: Any) -> None:
        self.pm.hook.register_commands(app=app)

    def template_filters(self) -> dict[str, Callable[..., Any]]:
        merged: dict[str, Callable[..., Any]] = {}
        for filters in self.pm.hook.template_filters():
            merged.update(filters or {})
        return merged

    def before_publish(self, dispatch: Any, draft: Draft) -> list[str]:
        reasons: list[str] = []
        for vetoes in self.pm.hook.before_publish(dispatch=dispatch, draft=draft):
            reasons.extend(vetoes or [])
        return reasons

    def after_publish(self, dispatch: Any, result: PublishResult) -> None:
        try:
            self.pm.hook.after_publish(dispatch=dispatch, result=result)
        except Exception:  # an observer must never undo a publication
            log.exception("an after_publish hook failed")

    def on_event(self, event: Any) -> None:
        try:
            self.pm.hook.on_event(event=event)
        except Exception:  # an observer must never break the engine
            log.exception("an on_event hook failed")


def _check_channel_class(channel_class: Any) -> None:
    if not (isinstance(channel_class, type) and issubclass(channel_class, Channel)):
        raise PartnercastError(f"{channel_class!r} is not a partnercast Channel subclass")
    for attribute in ("name", "title", "Account"):
        if not hasattr(channel_class, attribute):
            raise PartnercastError(f"channel {channel_class.__name__} has no {attribute!r}")


def _selected(entry: EntryPoint) -> bool:
    allowed = _names("PARTNERCAST_PLUGINS")
    blocked = _names("PARTNERCAST_DISABLE_PLUGINS")
    return (not allowed or entry.name in allowed) and entry.name not in blocked


def _names(variable: str) -> set[str]:
    return {name.strip() for name in os.environ.get(variable, "").split(",") if name.strip()}


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def load_plugins(extra: list[Any] | None = None) -> Plugins:
    """Load every selected entry-point plugin (and ``extra`` objects, for tests)."""
    pm = new_plugin_manager()
    infos: list[PluginInfo] = []
    for entry in entry_points(group=GROUP):
        if not _selected(entry):
            continue
        dist = entry.dist
        dist_name = dist.name if dist else "?"
        dist_version = dist.version if dist else "?"
        try:
            plugin = entry.load()
            pm.register(plugin, name=entry.name)
        except Exception as error:  # a broken plugin is reported, the others still load
            infos.append(
                PluginInfo(entry.name, dist_name, dist_version, f"{type(error).__name__}: {error}")
            )
            log.warning("plugin %s failed to load: %s", entry.name, error)
            continue
        infos.append(PluginInfo(entry.name, dist_name, dist_version))
    for plugin in extra or []:
        pm.register(plugin)
    pm.check_pending()
    return Plugins(pm, infos)


@lru_cache(maxsize=1)
def default_plugins() -> Plugins:
    """The process-wide plugins, loaded on first use (never at import).

    Their ``on_event`` hook is subscribed to the core's event bus, so every committed
    event reaches the plugins.
    """
    from partnercast.core.event_bus import subscribe

    plugins = load_plugins()
    subscribe(plugins.on_event)
    return plugins


def channel_content_models() -> dict[str, Any]:
    """The Content model of every installed channel, by channel name."""
    return {name: cls.Content for name, cls in default_plugins().channel_classes().items()}


def channel_template_suffixes() -> dict[str, str]:
    """Template file suffix of every installed channel, by channel name."""
    return {name: cls.template_suffix for name, cls in default_plugins().channel_classes().items()}
