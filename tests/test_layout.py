"""The package installs as one `partnercast` package and its schema matches its models."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from partnercast.models import metadata


def test_only_partnercast_is_importable_at_top_level(tmp_path) -> None:
    code = (
        "import importlib.util as u;"
        "print([n for n in ('core','plugins','channels','campaigns','tenants') if u.find_spec(n)])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
    assert importlib.util.find_spec("partnercast.core") is not None
    assert importlib.util.find_spec("partnercast.channels.email") is not None


def test_the_migrations_have_one_head() -> None:
    from alembic.script import ScriptDirectory

    from partnercast.core.db import alembic_config, make_engine

    script = ScriptDirectory.from_config(alembic_config(make_engine("sqlite://")))
    heads = script.get_heads()
    assert len(heads) == 1, f"the migrations have {len(heads)} heads: {heads}"


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_db_upgrade_command_is_idempotent(cli) -> None:
    first = cli("db", "upgrade")
    second = cli("db", "upgrade")
    assert re.search(r"database at revision \d{4}:", first.stdout)  # one head, applied
    assert first.stdout == second.stdout  # the second run finds nothing left to apply


def test_unmigrated_database_gives_one_clear_line(cli) -> None:
    result = cli("partners", "list", "--tenant", "x", expect=1)
    assert "partnercast db upgrade" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_on_a_taken_port_is_one_clear_line(cli, engine) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--port", str(port), expect=1)
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_folder_with_code_is_a_package_the_wheel_ships() -> None:
    """pyproject.toml lists the packages by hand (they are mapped from top-level folders):
    a sub-package missing from the list is left out of a real install (web/api/ was, and
    `pip install .` then failed to serve), while an editable install hides it."""
    import tomllib
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    setup = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {folder: package for package, folder in setup["package-dir"].items()}
    del folders["examples"]  # data, and an example plugin that is a project of its own
    needed = set()
    for folder, package in folders.items():
        for init in (repo / folder).rglob("__init__.py"):
            inner = init.parent.relative_to(repo / folder).parts
            needed.add(".".join((package, *inner)))
    missing = sorted(needed - set(setup["packages"]))
    assert not missing, f"add to [tool.setuptools] packages: {missing}"


def test_each_models_module_alone_resolves_its_foreign_keys() -> None:
    """A command imports only the models it uses (the CLI starts lazily): a table whose
    foreign key names a table no imported model defines fails at its first flush
    ('could not find table person'), as `approve` did. Each models module above core,
    imported alone with what it imports, must define every table its keys name (core's
    models name tables of the layers above it, which it may not import: every command
    that writes them imports those)."""
    modules = [
        "partnercast.tenants.models",
        "partnercast.tenants.access_models",
        "partnercast.campaigns.models",
        "partnercast.concierge.models",
        "partnercast.funnel.models",
        "partnercast.funnel.leads",
    ]
    probe = (
        "import importlib, sys\n"
        "from sqlmodel import SQLModel\n"
        "importlib.import_module(sys.argv[1])\n"
        "tables = SQLModel.metadata.tables\n"
        "keys = [key for table in tables.values() for key in table.foreign_keys]\n"
        "named = {key.target_fullname.split('.')[0] for key in keys}\n"
        "print(sorted(named - set(tables)))\n"
    )
    for module in modules:
        done = subprocess.run(
            [sys.executable, "-c", probe, module], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == "[]", f"{module} alone lacks tables {done.stdout.strip()}"
