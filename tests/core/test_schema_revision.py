"""A command on a database another version of the engine migrated says so in one line."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import text
from typer.testing import CliRunner

from partnercast.core.db import alembic_config, make_engine, schema_revision, upgrade


def test_the_revision_a_command_needs_is_alembics_head(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert ScriptDirectory.from_config(alembic_config(engine)).get_heads() == [schema_revision()]


def test_an_older_schema_is_one_line_until_db_upgrade(tmp_path: Path, monkeypatch) -> None:
    from partnercast.cli import build_app

    url = f"sqlite:///{tmp_path / 'old.db'}"
    monkeypatch.setenv("PARTNERCAST_DATABASE_URL", url)
    engine = make_engine(url)
    upgrade(engine, "0014")  # as the previous release left it
    engine.dispose()
    app, runner = build_app(), CliRunner()
    refused = runner.invoke(app, ["tenants", "list"])
    assert refused.exit_code == 1, refused.output
    assert "the database schema is at 0014" in refused.output
    assert f"needs {schema_revision()}" in refused.output and "db upgrade" in refused.output
    assert "Traceback" not in refused.output
    assert refused.exception is None or isinstance(refused.exception, SystemExit)
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert runner.invoke(app, ["tenants", "list"]).exit_code == 0
    with make_engine(url).connect() as connection:
        stored = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert stored == schema_revision()
