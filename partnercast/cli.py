"""The ``partnercast`` command: the composition root that mounts every folder's commands.

Each folder owns its commands (tenants/cli.py, campaigns/cli.py, ...); this module only
assembles them, then lets plugins add theirs through the ``register_commands`` hook.
"""

from __future__ import annotations

import typer

from partnercast import __version__
from partnercast.core.cli import HandledErrorsGroup, console, open_engine, run_cli
from partnercast.core.db import current_revision, upgrade

app = typer.Typer(
    name="partnercast",
    help="Through-channel campaigns: build once, let partners customise and approve, run cycles.",
    cls=HandledErrorsGroup,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@app.command()
def version() -> None:
    """Print the installed version."""
    console.print(f"partnercast {__version__}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the latest schema (safe to run again)."""
    engine = open_engine(migrated=False)
    upgrade(engine)
    url = engine.url.render_as_string(hide_password=True)
    console.print(f"database at revision {current_revision(engine)}: {url}")


def _mount_subcommands() -> None:
    from partnercast.campaigns.cli import register as register_campaign_commands
    from partnercast.tenants.cli import register as register_tenant_commands

    register_tenant_commands(app)
    register_campaign_commands(app)


def build_app() -> typer.Typer:
    """The root app with every folder's commands mounted (idempotent)."""
    if not getattr(app, "_partnercast_mounted", False):
        _mount_subcommands()
        app._partnercast_mounted = True  # type: ignore[attr-defined]
    return app


def main() -> None:
    """Console-script entry point."""
    run_cli(build_app())
