"""A database URL the engine cannot use is one line that says why and what to write or
install: no traceback, nothing created on disk, the password never shown."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# Runs the real command line; a name in BLOCK (comma-separated) cannot be imported, as
# when that driver is not installed.
ENTRY = (
    "import os, sys\n"
    "for name in filter(None, os.environ.get('BLOCK', '').split(',')):\n"
    "    sys.modules[name] = None\n"
    "from partnercast.cli import main\n"
    "sys.argv[0] = 'partnercast'\n"
    "main()\n"
)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends: refused


def _run(folder: Path, url: str, *args: str, block: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARTNERCAST_DATABASE")}
    env.update(PARTNERCAST_DATABASE_URL=url, BLOCK=block, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *(args or ("tenants", "list"))],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "╭" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


CASES = [
    # Heroku's and others' scheme: SQLAlchemy has no dialect of that name
    (
        "postgres://ann:s3cret@db.example/crm",
        "",
        ["postgresql+psycopg://", 'pip install ".[postgres]"'],
    ),
    # the default PostgreSQL driver not installed
    ("postgresql://ann:s3cret@db.example/crm", "psycopg", ['pip install ".[postgres]"']),
    ("postgresql+psycopg://ann:s3cret@db.example/crm", "psycopg", ['pip install ".[postgres]"']),
    # a driver the extra does not bring (not installed here)
    (
        "postgresql+psycopg2://ann:s3cret@db.example/crm",
        "psycopg2",
        ["psycopg2 is not installed", "postgresql+psycopg://"],
    ),
    ("mysql://ann:s3cret@db.example/crm", "MySQLdb", ["MySQLdb", "SQLite or PostgreSQL"]),
    ("oracle9://ann:s3cret@db.example/crm", "", ["'oracle9' is not a database"]),
    ("not a url", "", ["not a database URL"]),
]


@pytest.mark.parametrize(("url", "block", "says"), CASES)
def test_a_url_the_engine_cannot_use_is_one_line(
    tmp_path: Path, url: str, block: str, says: list[str]
) -> None:
    line = _one_line(_run(tmp_path, url, block=block))
    assert "database_url" in line
    for words in says:
        assert words in line, line
    assert "s3cret" not in line


def test_an_unreachable_postgresql_is_one_line_naming_where(tmp_path: Path) -> None:
    port = _closed_port()
    url = f"postgresql+psycopg://ann:s3cret@127.0.0.1:{port}/crm"
    for command in (("tenants", "list"), ("db", "upgrade")):
        line = _one_line(_run(tmp_path, url, *command))
        assert f"127.0.0.1:{port}" in line and "cannot connect" in line, line
        assert "refused" in line.lower(), line
        assert "s3cret" not in line


def test_a_mistyped_sqlite_path_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/typo/deeper/partnercast.db"
    line = _one_line(_run(tmp_path, url))
    assert "no SQLite database at" in line and "partnercast db upgrade" in line, line
    assert list(tmp_path.iterdir()) == []
    # a folder where the file should be: also one line, and nothing created
    line = _one_line(_run(tmp_path, f"sqlite:///{tmp_path}"))
    assert "no SQLite database at" in line
    assert list(tmp_path.iterdir()) == []


def test_db_upgrade_creates_the_sqlite_database_it_is_told_to(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/data/partnercast.db"
    upgraded = _run(tmp_path, url, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert (tmp_path / "data" / "partnercast.db").is_file()
    listed = _run(tmp_path, url)
    assert listed.returncode == 0, listed.stderr


def test_a_server_engine_lends_every_lane_of_a_dispatch_a_connection(postgres_server: str) -> None:
    """An email dispatch on PostgreSQL may hold a journal connection per SMTP connection
    (up to 16 an account), the batch opener's and its own session's, beside the worker's
    other jobs: the engine lends that many at once instead of making the 16th lane wait
    for the pool (30 s, then an error)."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from partnercast.core.db import make_engine

    engine = make_engine(postgres_server)
    engine.pool._timeout = 0.5  # type: ignore[attr-defined]  # fail fast if it would wait
    held = []
    try:
        for _ in range(16 + 2 + 4):
            held.append(engine.raw_connection())
    except PoolTimeout:
        pytest.fail(f"the pool lent only {len(held)} connections at once")
    finally:
        for connection in held:
            connection.close()
        engine.dispose()
