"""A command's start-up imports no database layer: `partnercast --help`, a command's
--help and everything a command does before it runs import typer, rich and the command
modules, not SQLAlchemy, SQLModel or the models (those cost most of a second of CPU per
command line, issue 16). Speed itself is measured by bench/cli_startup.py; these tests
hold the behaviour that makes it fast, in a fresh interpreter each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "partnercast.core.models", "partnercast.core.db")

PROBE = """
import json, runpy, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["partnercast", *json.loads(sys.argv[1])]
try:
    runpy.run_module("partnercast", run_name="__main__")
except SystemExit as done:
    code = done.code
else:
    code = 0
loaded = sorted(m for m in sys.modules if m in heavy or m.split(".")[0] in heavy)
sys.stderr.write("\\nPROBE " + json.dumps({"code": code, "loaded": loaded}) + "\\n")
"""


def _start(*words: str, heavy: tuple[str, ...] = HEAVY) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(words), json.dumps(heavy)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("PROBE "))
    result = json.loads(line.removeprefix("PROBE "))
    result["stdout"] = done.stdout
    return result


@pytest.mark.parametrize(
    "words",
    [
        ("--help",),
        ("tasks", "--help"),
        ("status", "--help"),
        ("preview", "--help"),
        ("partners", "--help"),
        ("metrics", "--help"),
        ("partners", "readiness", "--help"),
        ("feedback", "--help"),  # a plugin's command: the plugins load without the models
    ],
)
def test_help_imports_no_database_layer(words: tuple[str, ...]) -> None:
    result = _start(*words)
    assert result["code"] in (0, None), result
    assert "Usage: " in result["stdout"]
    assert result["loaded"] == [], f"partnercast {' '.join(words)} imported {result['loaded']}"


def test_a_command_opens_the_engine_composed(database_url: str, engine: object) -> None:
    """The funnel's rollups keeper and the outgoing webhooks' are installed before a
    command's first engine opens (no longer when the command line is read, so that --help
    imports no funnel)."""
    probe = (
        "from partnercast import cli\n"
        "from partnercast.core import cli as core_cli, keepers\n"
        "cli.build_app('tasks')\n"
        "before = keepers.registered()\n"
        "with core_cli.opened_engine():\n"
        "    pass\n"
        "print(','.join(before) or '-', ','.join(keepers.registered()))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["-", "funnel.rollups,partnercast.outgoing-webhooks"]


def test_the_help_copies_of_constants_equal_their_sources() -> None:
    """What the CLI spells out to stay light is what the features use."""
    from partnercast.concierge import readiness
    from partnercast.concierge.cli import READINESS_KEYS
    from partnercast.core import bounds
    from partnercast.core import cli as core_cli
    from partnercast.funnel import metrics, spend
    from partnercast.funnel.names import GROUPINGS, SPEND_KINDS

    assert core_cli.MAX_DB_INT == bounds.MAX_DB_INT
    assert core_cli.MAX_FLOAT_OPTION == bounds.MAX_FLOAT_OPTION
    assert READINESS_KEYS == readiness.KEYS
    assert metrics.GROUPINGS == GROUPINGS and spend.KINDS == SPEND_KINDS


def test_root_help_loads_the_plugins_without_pydantic() -> None:
    """`partnercast --help` loads every plugin to list its commands; the Channel contract and
    the settings sections (pydantic) are imported only when a plugin asks for them."""
    result = _start("--help", heavy=("pydantic",))
    assert result["code"] in (0, None), result
    assert "feedback" in result["stdout"]  # the email plugin's command is listed
    assert result["loaded"] == []


def test_the_plugin_api_names_stay_importable() -> None:
    """What a plugin imports from partnercast.plugins resolves, lazily or not."""
    import partnercast.plugins as api

    for name in api.__all__:
        assert getattr(api, name) is not None, name
    from partnercast.channels.email import SmtpSettings
    from partnercast.plugins import Channel
    from partnercast.plugins.channel import Channel as DirectChannel

    assert Channel is DirectChannel
    assert SmtpSettings.__name__ == "SmtpSettings"
    with pytest.raises(AttributeError):
        api.NoSuchThing  # noqa: B018
