"""The hook specifications: the plugin author's manual.

A plugin is a module or object with functions marked ``@hookimpl`` (from
``partnercast.plugins``) and named like the specs below; it is found through the
``partnercast`` entry-point group. The built-in channels register exactly the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer

    from partnercast.plugins.channel import Channel, Draft, PublishResult

hookspec = pluggy.HookspecMarker("partnercast")


# --- registries -------------------------------------------------------------------------


@hookspec
def register_channels(register: Callable[[type[Channel]], None]) -> None:
    """Register channel classes.

    Called once when the plugin manager loads. Call ``register(ChannelClass)`` for each
    channel the plugin provides; the core validates the class and refuses a duplicate
    name with an error naming both plugins. Returns nothing.
    """


@hookspec
def register_commands(app: typer.Typer) -> None:
    """Add sub-commands to the root ``partnercast`` Typer app.

    Called once when the CLI starts, after the built-in commands are mounted. Use
    ``app.command()`` or ``app.add_typer()``. Returns nothing.
    """


@hookspec
def register_jobs(register: Callable[..., None]) -> None:
    """Register periodic jobs (fetch metrics, refresh tokens, clean up).

    Called once when the plugin manager loads. Call ``register(name, function, every=
    timedelta(...))`` for each job; ``function(now)`` receives the instant it runs for.
    The core's one scheduler service runs them (plugins never import APScheduler); a
    job name is unique across plugins. Returns nothing.
    """


@hookspec
def template_filters() -> dict[str, Callable[..., Any]] | None:
    """Return extra Jinja filters, as a mapping of name to function.

    Called when a rendering environment is built. The filters run inside the sandbox
    on values, never on template code; a name that clashes with a built-in filter is
    refused. All plugins' results are merged.
    """


# --- the publishing lifecycle -----------------------------------------------------------


@hookspec
def before_publish(dispatch: Any, draft: Draft) -> list[str] | None:
    """Veto a publication: return a list of reasons to stop it, or None to let it go.

    Called for every dispatch after its draft is rendered and validated, before the
    channel publishes. Any non-empty list from any plugin stops the dispatch; the
    reasons are recorded on it.
    """


@hookspec
def after_publish(dispatch: Any, result: PublishResult) -> None:
    """Observe a finished publication (sent counts, external ids, failures).

    Called once per dispatch after the channel returns. Exceptions raised here are
    logged and never undo the publication. Returns nothing.
    """


@hookspec
def on_event(event: Any) -> None:
    """Observe an event the engine recorded (sent, bounced, unsubscribed, approved...).

    Called after the event is committed. Returns nothing.
    """
