"""The database: one SQLAlchemy engine per URL, SQLite tuned for a small server, migrations.

SQLite is the embedded default (WAL, foreign keys on, a busy timeout so that writers wait
instead of failing); any other SQLAlchemy URL (PostgreSQL in production) works the same.
The schema is owned by Alembic: :func:`upgrade` applies the migrations in
``core/migrations``.
"""

from __future__ import annotations

import threading
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
)

from partnercast.core import keepers
from partnercast.core.errors import UserError

if TYPE_CHECKING:  # alembic is imported where migrations run: not in every command's start
    from alembic.config import Config

SQLITE_BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_SECONDS = 10
"""How long a PostgreSQL connection attempt may take (unless the URL says
``?connect_timeout=``): an unreachable host is an error in seconds, not minutes."""

POSTGRES_INSTALL = 'pip install ".[postgres]"'
POSTGRES_EXAMPLE = "postgresql+psycopg://user:password@host:5432/dbname"


def make_engine(url: str, *, create: bool = True) -> Engine:
    """Create an engine for ``url``; SQLite files get their folder and sane pragmas.

    With ``create=False`` a SQLite file must already exist: nothing is created on disk (a
    mistyped path is an error, not a new folder and an empty database). A URL the engine
    cannot use (an unknown scheme such as Heroku's ``postgres://``, a driver that is not
    installed) is a :class:`UserError` that says what to write or install; connecting
    is not tried here (see :func:`check_connection`).

    It also arms the check that no event is written before a keeper of the event totals
    is registered (:mod:`partnercast.core.keepers`): every engine is made here.
    """
    keepers.arm()
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise UserError(
            f"not a database URL: {_shown(url)!r} (e.g. sqlite:///partnercast.db or "
            f"{POSTGRES_EXAMPLE})",
            where="database_url",
        ) from error
    if parsed.get_backend_name() != "sqlite":
        server = _create(
            parsed,
            pool_pre_ping=True,
            max_overflow=SERVER_POOL_OVERFLOW,
            connect_args=_connect_args(parsed),
        )
        if server.dialect.driver == "psycopg":
            event.listen(server, "connect", _binary_arrays)
        return server
    if parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database).expanduser()
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.is_file():
            raise UserError(
                f"no SQLite database at {path.resolve()}: check the path, or create it "
                "with `partnercast db upgrade`",
                where="database_url",
            )
    engine = _create(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    event.listen(engine, "commit", _sqlite_end)
    event.listen(engine, "rollback", _sqlite_end)
    return engine


SERVER_POOL_OVERFLOW = 30
"""Connections a process may open beyond the pool's 5 kept ones, on a database server.
SQLAlchemy's default (10) is fewer than one email dispatch can hold at once: a journal
writer per SMTP connection (up to 16 an account), the batch opener, the dispatch's own
session, and beside them the worker's other jobs or the tracker's writers; a 16th lane
would wait 30 s for a connection and fail. Overflow connections are closed when given
back, so an idle process still keeps 5."""


def _create(url: URL, **options: Any) -> Engine:
    """``create_engine``, with an unknown dialect or a missing driver said in one line."""
    backend = url.get_backend_name()
    try:
        return create_engine(url, **options)
    except NoSuchModuleError as error:
        if backend == "postgres":
            raise UserError(
                f"write the URL as {POSTGRES_EXAMPLE} ('postgres://' is not a name "
                f"SQLAlchemy knows), with the driver installed: {POSTGRES_INSTALL}",
                where="database_url",
            ) from error
        raise UserError(
            f"{url.drivername!r} is not a database this engine can use: SQLite "
            f"(sqlite:///partnercast.db) or PostgreSQL ({POSTGRES_EXAMPLE})",
            where="database_url",
        ) from error
    except ImportError as error:
        driver = url.get_driver_name()  # the dialect loaded: its default driver is known
        if backend == "postgresql":
            hint = (
                POSTGRES_INSTALL
                if driver == "psycopg"
                else f"{POSTGRES_INSTALL} and write postgresql+psycopg://..."
            )
            raise UserError(
                f"the PostgreSQL driver {driver} is not installed ({error.name or error}): {hint}",
                where="database_url",
            ) from error
        raise UserError(
            f"the {backend} driver {driver} is not installed ({error.name or error}): install "
            f"it, or use SQLite or PostgreSQL ({POSTGRES_INSTALL})",
            where="database_url",
        ) from error


def _binary_arrays(dbapi_connection: Any, _record: Any) -> None:
    """psycopg sends a Python list in PostgreSQL's binary array format on this connection.

    SQLAlchemy's placeholders let psycopg choose a list's format, and it chooses text: a
    loop in Python that quotes and escapes each item, 1.6 ms for a thousand addresses
    against 0.2 ms in binary. The send path passes such lists with every batch (its
    ledger rows as arrays, the addresses checked against the suppression lists) and with
    every journal note. The statements cast each array parameter to its column's type.
    """
    from psycopg.types.array import ListBinaryDumper

    dbapi_connection.adapters.register_dumper(list, ListBinaryDumper)


def _connect_args(url: URL) -> dict[str, Any]:
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        return {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    return {}


def _shown(url: str) -> str:
    """``url`` with any password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@", 1)[-1] if "@" in url else url


def check_connection(engine: Engine) -> None:
    """Connect once: a database that cannot be reached or opened is a UserError of one
    line (where, and the driver's reason), not a traceback."""
    try:
        with engine.connect():
            pass
    except DBAPIError as error:
        reason = " ".join(str(error.orig).split()) or type(error.orig).__name__
        raise UserError(
            f"cannot connect to the database: {reason}",
            where=engine.url.render_as_string(hide_password=True),
        ) from error


_open_transactions = threading.local()  # per thread: SQLite transactions open, per engine


def _sqlite_begin(connection: Any) -> None:
    """Emit BEGIN ourselves (see _sqlite_pragmas for why we emit it at all): IMMEDIATE.

    IMMEDIATE takes the write lock when the transaction starts, waiting on the busy
    timeout. A plain (deferred) BEGIN that reads first and writes later cannot wait: when
    another process wrote in between, SQLite refuses the upgrade at once with 'database is
    locked' (its snapshot is stale), which a worker, the scheduler and the CLI writing at
    the same time would meet. Transactions are short, so serialising them costs little;
    readers outside a transaction are never blocked (WAL).

    A session opened while the same thread already has one open on this engine (a lookup
    inside a unit of work) begins DEFERRED: IMMEDIATE there would wait on its own
    thread's lock.
    """
    depths: dict[int, int] = _open_transactions.__dict__.setdefault("depths", {})
    key = id(connection.engine)
    depth = depths.get(key, 0)
    connection.exec_driver_sql("BEGIN" if depth else "BEGIN IMMEDIATE")
    depths[key] = depth + 1


def _sqlite_end(connection: Any) -> None:
    depths: dict[int, int] = _open_transactions.__dict__.setdefault("depths", {})
    key = id(connection.engine)
    depths[key] = max(0, depths.get(key, 0) - 1)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling commits when a SAVEPOINT is released, so a
    # nested transaction (one CSV row) would escape the outer rollback. SQLAlchemy's
    # documented fix: switch the driver's handling off and emit BEGIN on "begin".
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the packaged migrations and at ``engine``."""
    from alembic.config import Config

    script_location = resources.files("partnercast.core") / "migrations"
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Apply migrations up to ``revision`` (idempotent)."""
    from alembic import command

    try:
        command.upgrade(alembic_config(engine), revision)
    except (OperationalError, IntegrityError) as error:
        cause = " ".join(str(error.orig).split())
        if isinstance(error, IntegrityError):
            # A new constraint that rows already there break (revision 0025: a delivery
            # whose tenant is not its dispatch's). The run's migrations are one transaction
            # (migrations/env.py): nothing of them stays, the database is where it was.
            cause = f"rows already there break a new constraint ({cause[:300]})"
        raise UserError(
            f"cannot migrate the database: {cause}",
            where=engine.url.render_as_string(hide_password=True),
        ) from error


def current_revision(engine: Engine) -> str | None:
    """The revision(s) the database is at (``0002, 0004`` before branches merge), or None."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    return ", ".join(sorted(heads)) or None


def schema_revision() -> str:
    """The revision this version of the engine needs: its newest migration. Migrations are
    numbered in order (``0016_webhook_replay.py`` is revision ``0016``;
    tests/core/test_schema_revision.py holds that to Alembic's head), so no Alembic import
    is needed to know it when a command starts."""
    versions = resources.files("partnercast.core") / "migrations" / "versions"
    return max(entry.name[:4] for entry in versions.iterdir() if entry.name[:4].isdigit())


def require_schema(engine: Engine) -> None:
    """Fail with a clear message when the database has not been migrated, or was migrated
    by another version of the engine (a command on an older schema would fail on the first
    column it lacks, with a traceback)."""
    where = engine.url.render_as_string(hide_password=True)
    if not inspect(engine).has_table("tenant"):
        raise UserError(
            "the database has no partnercast tables: run `partnercast db upgrade` first",
            where=where,
        )
    needed = schema_revision()
    found: list[str] = []
    if inspect(engine).has_table("alembic_version"):
        with engine.connect() as connection:
            stamped = connection.execute(text("SELECT version_num FROM alembic_version"))
            found = sorted(stamped.scalars())
    if found != [needed]:
        at = ", ".join(found) or "no revision"
        raise UserError(
            f"the database schema is at {at} and this version of partnercast needs {needed}:"
            " back the database up, then run `partnercast db upgrade`",
            where=where,
        )
