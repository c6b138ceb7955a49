"""Shared fixtures: a migrated database per test, two tenants, and the real CLI."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from support.world import World, build_world
from typer.testing import CliRunner, Result

from partnercast.core.db import make_engine, upgrade
from partnercast.core.keys import generate_keys
from partnercast.core.tenancy import plain_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.funnel.rollups import install as keep_rollups
from partnercast.tenants.models import Tenant
from partnercast.web.outgoing_events import install as report_to_webhooks

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"

CLOCK_SHIFT_VARIABLE = "PARTNERCAST_TEST_CLOCK_SHIFT"
"""Set it to a number of days (``730``, or ``+730d``) to run the whole suite with the wall
clock moved that far ahead: CI runs it two years ahead, so that no test and no code path
can depend on today's date. time-machine moves this process's clock, and the CLI and worker
processes the tests start move theirs at start-up (tests/support/clock_shift/
sitecustomize.py, put on their PYTHONPATH). Monotonic time, sleeps and waits are left
alone (libfaketime cannot do both: with monotonic time moved, waits with a timeout hang;
without, Python's time.sleep fails)."""


def _shift_days(value: str) -> int:
    digits = value.strip().lstrip("+").removesuffix("d")
    if not digits.isdigit():
        raise pytest.UsageError(f"{CLOCK_SHIFT_VARIABLE}={value!r}: expected days, e.g. 730")
    return int(digits)


TEST_KEYS = generate_keys()
"""Real keys for the suite (new each run), as `partnercast init` makes them: there is no
default key, so every command and process the tests start signs and decrypts with these
(PARTNERCAST_SECRET_KEY and PARTNERCAST_ENCRYPTION_KEYS, set for the whole session).
Tests of what happens without keys remove them (tests/core/test_keys.py)."""


def _set_test_keys() -> None:
    os.environ["PARTNERCAST_SECRET_KEY"] = TEST_KEYS.secret_key
    os.environ["PARTNERCAST_ENCRYPTION_KEYS"] = json.dumps(TEST_KEYS.encryption_keys)
    # The suite's webhook receivers listen on loopback, as an on-premises one would; the
    # tests of the default (public receivers only) remove it (tests/web/test_webhook_targets.py).
    os.environ["PARTNERCAST_PRIVATE_WEBHOOK_RECEIVERS"] = "true"


def pytest_configure(config: pytest.Config) -> None:
    _set_test_keys()
    shift = os.environ.get(CLOCK_SHIFT_VARIABLE)
    if not shift:
        return
    import time_machine

    days = _shift_days(shift)
    time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True).start()
    time.time_ns()  # it ticks from its first reading (see clock_shift/sitecustomize.py)
    shim = str(Path(__file__).resolve().parent / "support" / "clock_shift")
    os.environ["TEST_CLOCK_SHIFT_DAYS"] = str(days)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [shim, os.environ.get("PYTHONPATH")]))


def pytest_report_header() -> str | None:
    if os.environ.get(CLOCK_SHIFT_VARIABLE):
        moved = datetime.now(UTC).isoformat(timespec="seconds")
        return f"clock moved {os.environ[CLOCK_SHIFT_VARIABLE]} days ahead: it is {moved} here"
    return None


@pytest.fixture(autouse=True, scope="session")
def composed_engine() -> None:
    """The suite composes the engine as the CLI does: the funnel's rollups follow every
    event a test records, through tick(now), a web request or a direct write; and what
    happens is written for the tenants' outgoing webhooks."""
    keep_rollups()
    report_to_webhooks()


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite file, also exported so that CLI commands use it."""
    url = f"sqlite:///{tmp_path / 'partnercast.db'}"
    monkeypatch.setenv("PARTNERCAST_DATABASE_URL", url)
    monkeypatch.delenv("PARTNERCAST_TENANT", raising=False)
    monkeypatch.chdir(tmp_path)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated engine on the fresh database."""
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def make_tenant(engine: Engine, slug: str, name: str | None = None) -> int:
    with plain_session(engine) as session:
        tenant = Tenant(
            slug=slug,
            name=name or slug.title(),
            brand={"legal_name": f"{slug.title()} Inc.", "postal_address": "1 Main St"},
            created_at=utcnow(),
        )
        session.add(tenant)
    assert tenant.id is not None
    return tenant.id


POSTGRES_URL_VARIABLE = "PARTNERCAST_TEST_POSTGRES_URL"


def _postgres_admin_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a reachable PostgreSQL server, or a skip that says why there is none."""
    url = _postgres_admin_url()
    if not url:
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set: no PostgreSQL to test against")
    probe = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with probe.connect() as connection:
            connection.execute(text("select 1"))
    except OperationalError as error:
        pytest.skip(f"PostgreSQL at {POSTGRES_URL_VARIABLE} does not answer: {error.orig}")
    finally:
        probe.dispose()
    yield url


@pytest.fixture
def postgres_engine(postgres_server: str) -> Iterator[Engine]:
    """A migrated engine on a brand-new PostgreSQL database, dropped afterwards."""
    name = f"partnercast_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_server).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def any_engine(request: pytest.FixtureRequest, database_url: str) -> Iterator[Engine]:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "postgres":
        yield request.getfixturevalue("postgres_engine")
        return
    yield request.getfixturevalue("engine")


@pytest.fixture
def tenant_a(engine: Engine) -> int:
    return make_tenant(engine, "vendor-a")


@pytest.fixture
def tenant_b(engine: Engine) -> int:
    return make_tenant(engine, "vendor-b")


@dataclass
class Cli:
    """Runs the real ``partnercast`` command in-process."""

    runner: CliRunner

    def __call__(self, *args: str, expect: int | None = 0) -> Result:
        from partnercast.cli import build_app

        result = self.runner.invoke(build_app(), list(args), catch_exceptions=False)
        if expect is not None and result.exit_code != expect:
            raise AssertionError(
                f"partnercast {' '.join(args)} exited {result.exit_code}, expected {expect}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result


@pytest.fixture
def cli(database_url: str) -> Cli:
    return Cli(CliRunner())


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) in this process; read back what it received."""
    with SmtpSink() as running:
        yield running


@pytest.fixture
def world(engine: Engine, tmp_path: Path, sink: SmtpSink) -> World:
    """One vendor, six partners, the sample email campaign, all enrolled."""
    return build_world(engine, tmp_path / "world", sink.port)
