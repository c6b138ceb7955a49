"""A small world built through the real CLI, for the tests of user mistakes and the CLI
fuzz test: a tenant, the sample segments, partners and contacts, the sample campaign
loaded and enrolled, a cycle started. Each test works on a copy of its database file."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner, Result

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CAMPAIGN = EXAMPLES / "campaigns" / "cloud-security"
TENANT = ("--tenant", "northwind")


def run(*args: str) -> Result:
    """``partnercast ARGS`` in-process; an exception is kept in the result, not raised."""
    from partnercast.cli import build_app

    return CliRunner().invoke(build_app(), list(args))


def dump(database: Path) -> list[str]:
    """Every row of the SQLite database, as SQL: equal dumps, equal data."""
    with sqlite3.connect(database) as connection:
        return list(connection.iterdump())


@contextmanager
def cli_world(folder: Path) -> Iterator[Path]:
    """Build the world's database in ``folder`` through the CLI; yields its path, with
    PARTNERCAST_DATABASE_URL pointing at it until the block ends."""
    database = folder / "world.db"
    saved = dict(os.environ)
    os.environ.update(
        PARTNERCAST_DATABASE_URL=f"sqlite:///{database}", COLUMNS="200", PARTNERCAST_TENANT=""
    )
    steps: list[tuple[str, ...]] = [
        ("db", "upgrade"),
        ("tenants", "create", "northwind", "--name", "Northwind Cloud", "--legal-name",
         "Northwind Cloud Inc.", "--postal-address", "500 Harbor Drive, Seattle"),
        ("segments", "load", str(EXAMPLES / "tenants" / "segments.yaml"), *TENANT),
        ("partners", "import", str(EXAMPLES / "tenants" / "partners.csv"), *TENANT),
        ("contacts", "import", "P1001", str(EXAMPLES / "tenants" / "contacts.csv"), *TENANT),
        ("campaign", "load", str(CAMPAIGN), *TENANT, "--now", "2026-11-20T09:00"),
        ("enroll", "cloud-security", *TENANT, "--now", "2026-11-20T10:00"),
        ("cycle", "start", "cloud-security", *TENANT, "--at", "2026-12-01T09:00"),
    ]  # fmt: skip
    try:
        for step in steps:
            result = run(*step)
            assert result.exit_code == 0, (step, result.output)
        yield database
    finally:
        os.environ.clear()
        os.environ.update(saved)
