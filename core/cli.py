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

What the consoles print is text, not Rich markup: a partner named ``[/]`` or
``[link=https://…]`` prints as written instead of crashing the command or becoming a
terminal hyperlink, and control characters (a raw ANSI escape in a name) are dropped.
A command that styles its own words passes ``markup=True`` and escapes what it
interpolates (``rich.markup.escape``), or prints a ``rich.text.Text``.

Numbers on the command line are bounded (:func:`bound_numbers`): an integer option fits a
database integer and a number option is finite and at most :data:`MAX_FLOAT_OPTION`, so
``--limit 99999999999999999999`` is a usage error, not an overflow in the database.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console, ConsoleDimensions
from rich.segment import Segment
from rich.text import Text
from typer._click.exceptions import ClickException, UsageError
from typer.core import TyperGroup

from partnercast.core.errors import UserError
from partnercast.core.timeutil import utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from partnercast.core.settings import Settings

# Every command imports this module before it parses its arguments, so at the top it
# imports only typer, rich and the standard library: the database (SQLAlchemy), the
# settings and the bounds (pydantic) are imported by the functions that use them, when a
# command runs (tests/core/test_cli_start.py: no SQLAlchemy for `partnercast --help`).

MAX_DB_INT = 2**31 - 1
"""The largest integer option: core.bounds.MAX_DB_INT, which imports pydantic
(tests/core/test_cli_start.py holds the two equal)."""
MAX_FLOAT_OPTION = 1_000_000_000_000.0
"""The largest number option: core.bounds.MAX_FLOAT_OPTION (held equal the same way)."""

NO_TERMINAL_WIDTH = 200
"""Columns of the CLI's output when it is not a terminal and COLUMNS is not set."""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Control characters but newline and tab: escapes, carriage returns, bells, NULs."""


def plain(text: str) -> str:
    """``text`` without control characters (an ANSI escape in a partner's name), safe to
    print to a terminal."""
    return _CONTROL.sub("", text)


class CliConsole(Console):
    """A rich Console whose width is, in this order: ``COLUMNS`` when set, the terminal's
    when its output is a terminal, else :data:`NO_TERMINAL_WIDTH` (rich's own fallback
    is 80, which cuts every table in a pipe). Decided at each print, not at import, so
    the same console serves a terminal, a pipe and tests that set COLUMNS.

    Strings it prints (table cells and titles too) are text: markup only where a print
    asks for it with ``markup=True``, and never a control character."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        super().__init__(**kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(plain(text), **kwargs)

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        # The last step before the terminal: text a command put in a rich Text (a table
        # cell of user data) never went through render_str.
        return super()._render_buffer(
            segment if segment.control else Segment(plain(segment.text), segment.style)
            for segment in buffer
        )

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
    from partnercast.core.bounds import parse_instant

    try:
        return parse_instant(value)
    except ValueError as error:
        raise UserError(f"{error} (e.g. 2026-12-01T09:00)", where=option) from error


def output_folder(path: Path, *, where: str) -> Path:
    """``path`` as a folder to write into, made with its parents if missing; a UserError
    naming ``where`` when it is a file or cannot be made (checked before any work)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"{path} is a file, not a folder", where=where) from None
    except OSError as error:
        raise UserError(f"cannot make the folder {path}: {error.strerror}", where=where) from None
    return path


_composers: list[Callable[[], None]] = []


def compose_before_open(compose: Callable[[], None]) -> None:
    """Run ``compose`` (idempotent) before every engine :func:`open_engine` opens: the
    composition root hands in what keeps the event totals (core.keepers) without
    importing it before a command runs. Registered once, however often it is handed in."""
    if compose not in _composers:
        _composers.append(compose)


def open_engine(settings: Settings | None = None, *, migrated: bool = True) -> Engine:
    """The engine for the configured database; by default it must already be migrated
    (else a UserError that says to run `partnercast db upgrade`). The caller disposes it:
    a command uses :func:`opened_engine`, which does."""
    from partnercast.core.db import check_connection, make_engine, require_schema
    from partnercast.core.settings import load_settings

    for compose in _composers:
        compose()
    # Nothing is created on disk for a command that needs a migrated database: a mistyped
    # SQLite path is an error, not a new folder and an empty database.
    engine = make_engine((settings or load_settings()).database_url, create=not migrated)
    try:
        check_connection(engine)
        if migrated:
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


def print_error(message: str) -> None:
    """``error: message`` on stderr, the message as text (never markup)."""
    line = Text.assemble(("error:", "bold red"), " ", plain(message))
    err_console.print(line, highlight=False, soft_wrap=True)


def bound_numbers(command: Any) -> None:
    """Bound every number parameter of ``command`` and its sub-commands that has no
    bound of its own: an integer fits a database integer (at most :data:`MAX_DB_INT`,
    at least its negative), a number is finite and at most :data:`MAX_FLOAT_OPTION` in
    size. Typer then refuses a bigger value as a usage error naming the option."""
    for param in getattr(command, "params", ()):
        descriptor = getattr(param, "type_descriptor", None)
        kind = getattr(descriptor, "annotation", None)
        if descriptor is None or kind not in (int, float):
            continue
        info = descriptor.parameter_info
        largest = MAX_DB_INT if kind is int else MAX_FLOAT_OPTION
        if info.max is None or info.max > largest:
            info.max = largest
        if info.min is None or info.min < -largest:
            info.min = -largest
        param._runtime_param = None  # rebuilt with the bounds at its next use
    for sub in getattr(command, "commands", {}).values():
        bound_numbers(sub)


def _first_lower(message: str) -> str:
    """``message`` with its first letter lower-case (click's "Invalid value ..." as
    "invalid value ...", like every other error line), an acronym left as it is."""
    if message[:1].isupper() and not message[1:2].isupper():
        return message[0].lower() + message[1:]
    return message


def click_error(error: ClickException) -> NoReturn:
    """A usage error (a bad option value, an unknown option, a missing argument) as one
    ``error:`` line, and a second one naming the help to read; exits with click's code
    (2 for a usage error). Typer would print the usage and a multi-line box.

    The help a group shows when called with no arguments is passed on unchanged."""
    if error.__class__.__name__ == "NoArgsIsHelpError":  # not an error: the help
        raise error
    message = " ".join(error.format_message().split()).removesuffix(".")
    print_error(_first_lower(message))
    ctx = getattr(error, "ctx", None)
    if isinstance(error, UsageError) and ctx and ctx.command.get_help_option(ctx) is not None:
        hint = f"try '{ctx.command_path} {ctx.help_option_names[0]}'"
        err_console.print(plain(hint), highlight=False, soft_wrap=True)
    raise typer.Exit(error.exit_code) from error


class HandledErrorsGroup(TyperGroup):
    """The root command group: any UserError raised by any sub-command becomes one line,
    a usage error one line and a pointer to the help (:func:`click_error`), and every
    number parameter of every command is bounded (:func:`bound_numbers`).

    Sessions opened by the command have rolled back by the time the error gets here, so
    the database is left as it was.
    """

    def make_context(self, info_name: Any, args: Any, parent: Any = None, **extra: Any) -> Any:
        try:  # the root's own options and arguments (`partnercast --bogus`)
            return super().make_context(info_name, args, parent, **extra)
        except ClickException as error:
            click_error(error)

    # ``ctx`` is typer's vendored click Context, a private module: typed as Any rather
    # than narrowed to typer.Context (its subclass), which would break the override.
    def invoke(self, ctx: Any) -> Any:
        bound_numbers(self)  # before the sub-command parses its arguments
        try:
            return super().invoke(ctx)
        except UserError as error:
            print_error(str(error))
            raise typer.Exit(error.exit_code) from error
        except ClickException as error:  # a sub-command's usage, or an unknown command
            click_error(error)


def fail(message: str, *, code: int = 1) -> None:
    """Print one error line and exit."""
    print_error(message)
    raise typer.Exit(code)


def run_cli(app: typer.Typer, argv: list[str] | None = None) -> Any:
    """Run a Typer app, turning UserError into one line and a non-zero exit code."""
    try:
        return app(args=argv, standalone_mode=True)
    except UserError as error:
        print_error(str(error))
        sys.exit(error.exit_code)
