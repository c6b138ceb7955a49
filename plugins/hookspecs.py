"""The hook specifications: the plugin author's manual.

A plugin is a module or object with functions marked ``@hookimpl`` (from
``partnercast.plugins``) and named like the specs below; third-party plugins are found
through the ``partnercast`` entry-point group, the built-in channels are registered by
the engine itself (see ``partnercast.plugins.manager``), and both implement the very same
hooks. A hook implementation may take fewer arguments than its spec names.

The core calls hooks only through the typed facade in ``partnercast.plugins.manager``
(one method per hook); an exception raised by one plugin's hook is reported and never
stops the other plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer

    from partnercast.plugins.channel import Draft, PublishResult
    from partnercast.plugins.hooktypes import (
        DispatchInfo,
        EventInfo,
        RegisterChannel,
        RegisterJob,
        RegisterSettings,
    )
    from partnercast.plugins.host import Host
    from partnercast.plugins.web import RegisterRouter

hookspec = pluggy.HookspecMarker("partnercast")


# --- registries -------------------------------------------------------------------------


@hookspec
def register_channels(register: RegisterChannel) -> None:
    """Register channel classes.

    Called once, the first time the engine asks for its channels. Call
    ``register(ChannelClass)`` for each :class:`~partnercast.plugins.Channel` subclass the
    plugin provides; the core checks the class and refuses a second channel of the same
    name with an error naming both modules. Returns nothing. An exception raised here is
    reported against this plugin (``partnercast plugins``); the other plugins still load.
    """


@hookspec
def register_settings(register: RegisterSettings) -> None:
    """Declare the plugin's own settings: a namespace and a pydantic model.

    Called once, the first time the engine builds the plugins' configuration. Call
    ``register(namespace, SettingsModel)``; the values then come from the
    ``[<namespace>]`` table of ``partnercast.toml`` and from the environment variables
    ``PARTNERCAST_<NAMESPACE>_<FIELD>`` (which win over the file), are validated by the
    model when a channel is built, and reach it as
    ``self.settings.section(namespace, SettingsModel)``. Mark secrets ``SecretStr``: they
    are never printed. A namespace is lower-case, unique across plugins, and may not
    shadow a core setting. Returns nothing.
    """


@hookspec
def register_commands(app: typer.Typer) -> None:
    """Add sub-commands to the root ``partnercast`` Typer app.

    Called once when the CLI starts, after the built-in commands are mounted. Use
    ``app.command()`` or ``app.add_typer()``. Returns nothing.
    """


@hookspec
def register_jobs(register: RegisterJob) -> None:
    """Register periodic jobs (fetch metrics, refresh tokens, clean up).

    Called once when the worker starts its scheduler. Call ``register(name, function,
    every=timedelta(...))`` for each job; ``function(now)`` receives the instant it runs
    for. The core's one scheduler service runs them (plugins never import APScheduler);
    a job name is unique across plugins and the interval positive, or the core refuses
    it. Returns nothing.
    """


@hookspec
def template_filters() -> Mapping[str, Callable[..., object]] | None:
    """Return extra Jinja filters, as a mapping of name to function, or None.

    Called each time a rendering environment is built. The filters run inside the
    sandbox on values, never on template code; a name that clashes with a built-in
    filter is refused. Every plugin's result is used: the mappings are merged.
    """


# --- the publishing lifecycle -----------------------------------------------------------


@hookspec
def before_publish(dispatch: DispatchInfo, draft: Draft) -> list[str] | None:
    """Veto a publication: return a list of reasons to stop it, or None to let it go.

    Called for every dispatch after its draft is rendered and passed the channel's
    ``validate``, before the channel publishes, with a snapshot of the dispatch and the
    draft. Every plugin is asked (not first-result-wins): any non-empty list from any
    plugin stops the dispatch, which fails with all the reasons recorded on it.
    """


@hookspec
def after_publish(dispatch: DispatchInfo, result: PublishResult) -> None:
    """Observe a finished publication (sent counts, external ids).

    Called once per dispatch that ended ``done``, after its state is committed, with a
    snapshot of the dispatch and what the channel returned. Exceptions raised here are
    logged and never undo the publication. Returns nothing.
    """


@hookspec
def on_event(event: EventInfo) -> None:
    """Observe an event the engine recorded (sent, bounced, unsubscribed, approved...).

    Called after the transaction that recorded the event commits (an event rolled back
    is never announced), with a snapshot of it. Exceptions raised here are logged and
    never break the engine. Returns nothing.
    """


# --- the web (helper A: register_routes) ------------------------------------------------


@hookspec
def register_routes(register: RegisterRouter, host: Host) -> None:
    """Mount HTTP routes on the engine's one FastAPI application.

    Called once per application, when ``partnercast serve`` (or a test) builds it. Build a
    ``fastapi.APIRouter`` and call ``register(router)``; paths are the plugin's to choose
    and must not clash with the engine's (``/u/``, ``/t/``, ``/crm/``, ``/partner/``,
    ``/healthz``) or another plugin's. ``host`` (:class:`partnercast.plugins.host.Host`) is
    the engine as the routes may use it: tokens, tenants, live pages, delivery feedback.
    Routes that touch the engine are plain ``def`` functions and take ``now`` once per
    request. Returns nothing; an exception is reported and that plugin's routes are left
    out, the others are mounted.
    """
