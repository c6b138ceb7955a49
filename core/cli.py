"""What every command shares: consoles, the tenant option, opening the database, errors.

A command body raises :class:`UserError` for a user's mistake; :func:`run_cli` prints it as
one red line on stderr and exits non-zero, with no traceback, after the session that was
open has rolled back (so the database is left as it was).

A command opens the database with :func:`opened_engine`, a tenant's data with
``partnercast.tenants.scope.tenant_scope`` (which uses it: core knows no tenant model).
It reads the clock once, at its start, and passes that instant down: a command whose
outcome depends on the instant takes ``--now`` (:data:`NowOption`, :func:`parse_now`); one
that only stamps what it records reads ``utcnow()`` once.

Output that goes to a pipe, a file or a CI log is as wide as its content needs (up to
:data:`NO_TERMINAL_WIDTH`): rich would give it 80 columns and cut table cells with "…".
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console, ConsoleDimensions
from sqlalchemy.engine import Engine
from typer.core import TyperGroup

from partnercast.core.db import make_engine, require_schema
from partnercast.core.errors import UserError
from partnercast.core.settings import Settings, load_settings
from partnercast.core.timeutil import as_utc, utcnow

NO_TERMINAL_WIDTH = 200
"""Columns of the CLI's output when it is not a terminal and COLUMNS is not set."""


class CliConsole(Console):
    """A rich Console whose width is, in this order: ``COLUMNS`` when set, the terminal's
    when its output is a terminal, else :data:`NO_TERMINAL_WIDTH` (rich's own fallback
    is 80, which cuts every table in a pipe). Decided at each print, not at import, so
    the same console serves a terminal, a pipe and tests that set COLUMNS."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        if self._width is not None or (self._environ.get("COLUMNS") or "").isdigit():
            return size
        isatty = getattr(self.file, "isatty", None)
        try:
            on_terminal = bool(isatty and isatty())
        except ValueError:  # a closed file
            on_terminal = False
        return size if on_terminal else ConsoleDimensions(NO_TERMINAL_WIDTH, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size  # as rich's own setter does


console = CliConsole()
err_console = CliConsole(stderr=True)

_TENANT = typer.Option(
    "--tenant",
    "-t",
    envvar="PARTNERCAST_TENANT",
    help="Slug of the tenant (vendor) to act as.",
    show_default=False,
)
TenantOption = Annotated[str, _TENANT]
OptionalTenant = Annotated[str | None, _TENANT]
"""--tenant where a subcommand may take it from its group (`metrics --tenant T fetch`)."""


NowOption = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="The instant the command acts at (ISO, UTC when no offset); default now.",
        show_default=False,
    ),
]
"""--now: the one instant everything a command does happens at (time is a parameter)."""


def parse_now(value: str | None, *, option: str = "--now") -> datetime:
    """The instant a command acts at: ``value`` (an ISO date or datetime, UTC when it has
    no offset), or the wall clock when it is not given. Commands read the clock here,
    once, and pass the instant down; library code never reads it."""
    if not value:
        return utcnow()
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError as error:
        raise UserError(
            f"{value!r} is not an ISO date or datetime (e.g. 2026-12-01T09:00)", where=option
        ) from error


def open_engine(settings: Settings | None = None, *, migrated: bool = True) -> Engine:
    """The engine for the configured database; by default it must already be migrated
    (else a UserError that says to run `partnercast db upgrade`). The caller disposes it:
    a command uses :func:`opened_engine`, which does."""
    engine = make_engine((settings or load_settings()).database_url)
    if migrated:
        try:
            require_schema(engine)
        except BaseException:
            engine.dispose()
            raise
    return engine


@contextmanager
def opened_engine(settings: Settings | None = None, *, migrated: bool = True) -> Iterator[Engine]:
    """The one way a command opens the database: :func:`open_engine` for the block,
    disposed after it (a tenant's command opens its session with
    ``partnercast.tenants.scope.tenant_scope``, which uses this)."""
    engine = open_engine(settings, migrated=migrated)
    try:
        yield engine
    finally:
        engine.dispose()


class HandledErrorsGroup(TyperGroup):
    """The root command group: any UserError raised by any sub-command becomes one line.

    Sessions opened by the command have rolled back by the time the error gets here, so
    the database is left as it was.
    """

    # ``ctx`` is typer's vendored click Context, a private module: typed as Any rather
    # than narrowed to typer.Context (its subclass), which would break the override.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as error:
            err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from error


def fail(message: str, *, code: int = 1) -> None:
    """Print one error line and exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run_cli(app: typer.Typer, argv: list[str] | None = None) -> Any:
    """Run a Typer app, turning UserError into one line and a non-zero exit code."""
    try:
        return app(args=argv, standalone_mode=True)
    except UserError as error:
        err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
