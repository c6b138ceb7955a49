"""docs/plugins.md is tested against the code: every hook and kit row it must document, only
public modules and real paths, and its whole example plugin installed and run from the page
alone (as datasette's tests/test_docs.py does for its hooks)."""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from partnercast.core.errors import UserError
from partnercast.core.models import Dispatch, Event
from partnercast.core.settings import load_settings
from partnercast.plugins import PluginConfig, hookspecs
from partnercast.plugins.manager import Plugins, load_plugins
from partnercast.plugins.testing import HTTP_FAILURES, simple_request

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
HOOKS = [
    name
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(function, "partnercast_spec")
]
# What a plugin may import: the framework's public modules (the manager and the code that
# builds settings sections are the engine's).
PRIVATE = {"partnercast.plugins.manager", "partnercast.plugins.sections"}
FENCE = re.compile(r"```(\w+) file=(\S+)\n(.*?)```", re.S)


def test_there_are_hooks() -> None:
    assert "register_channels" in HOOKS and "register_settings" in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook: str) -> None:
    assert f"`{hook}(" in DOC


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docstring_saying_when_it_is_called(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert "Called" in doc


@pytest.mark.parametrize("failure", HTTP_FAILURES, ids=lambda failure: failure.id)
def test_every_http_failure_row_is_documented(failure) -> None:  # type: ignore[no-untyped-def]
    name = failure.id.removeprefix("http-")
    assert name in DOC


def _modules() -> set[str]:
    """Dotted names (``[partnercast.smtp]`` is a TOML table, partnercast.toml a file)."""
    found = re.findall(r"(?<![\[\w])partnercast(?:\.[a-z_]+)+(?![\]\w])", DOC)
    return {name for name in found if name != "partnercast.toml"}


@pytest.mark.parametrize("name", sorted(_modules()))
def test_the_page_names_only_public_partnercast_modules(name: str) -> None:
    """Every ``partnercast.x.y`` on the page is a public plugin module, or a name in one."""
    module, found = name, None
    while module.count("."):
        try:
            found = importlib.import_module(module)
            break
        except ModuleNotFoundError:
            module = module.rsplit(".", 1)[0]
    assert found is not None, f"{name} names no module"
    assert module.startswith("partnercast.plugins") and module not in PRIVATE, module
    rest = name[len(module) + 1 :].split(".") if name != module else []
    for attribute in rest:
        found = getattr(found, attribute)


def _paths() -> set[str]:
    quoted = re.findall(r"`([\w./-]+/[\w.-]+\.(?:py|md|toml|yaml))`", DOC)
    linked = re.findall(r"\]\(\.\./([\w./-]+)\)", DOC)
    return set(quoted) | set(linked)


@pytest.mark.parametrize("path", sorted(_paths()))
def test_every_path_on_the_page_exists(path: str) -> None:
    assert (REPO / path).exists()


# --- the example plugin, from the page alone ------------------------------------------


def _example() -> dict[str, str]:
    return {name: source for _, name, source in FENCE.findall(DOC)}


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The page's plugin as an installed distribution (a dist-info folder) on sys.path."""
    files = _example()
    project = tomllib.loads(files.pop("pyproject.toml"))["project"]
    site = tmp_path / "site"
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    points = project["entry-points"]["partnercast"]
    lines = "".join(f"{name} = {target}\n" for name, target in points.items())
    (info / "entry_points.txt").write_text(f"[partnercast]\n{lines}")
    for name, source in files.items():
        (site / name).write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.chdir(tmp_path)
    for variable in ("PARTNERCAST_PLUGINS", "PARTNERCAST_DISABLE_PLUGINS", "PARTNERCAST_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    yield site
    for module in [m for m in sys.modules if m.startswith("partnercast_filedrop")]:
        del sys.modules[module]


def test_the_example_is_on_the_page() -> None:
    assert set(_example()) == {"pyproject.toml", "partnercast_filedrop.py"}


def test_partnercast_plugins_lists_the_example(installed: Path) -> None:
    path = os.pathsep.join(filter(None, [str(installed), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "partnercast", "plugins"],
        env={**os.environ, "PYTHONPATH": path, "COLUMNS": "200"},
        cwd=installed,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "partnercast-filedrop" in result.stdout and "filedrop (File drop)" in result.stdout


def _dispatch(channel: str = "filedrop") -> Dispatch:
    return Dispatch(
        id=7,
        tenant_id=1,
        partner_id=3,
        enrollment_id=1,
        touch_id=1,
        cycle_id=1,
        channel=channel,
        idempotency_key="c1-t1-p3",
        scheduled_at=datetime(2026, 12, 1, 9, tzinfo=UTC),
    )


def test_the_example_plugin_runs(
    installed: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (tmp_path / "partnercast.toml").write_text(f'[filedrop]\nfolder = "{tmp_path / "drops"}"\n')
    plugins: Plugins = load_plugins()
    assert "filedrop" in plugins.channel_classes()
    channel = plugins.channel("filedrop", load_settings())
    account = channel.Account(partner_folder="p003")
    draft = channel.render(simple_request("filedrop", {"title": "Hi"}, "Northwind says hello"))
    assert channel.validate(draft) == []
    for _ in range(2):  # a retried dispatch writes no second file
        result = channel.publish(draft, account, idempotency_key="c1-t1-p3")
    assert result.external_ids == ["c1-t1-p3.json"]
    assert [p.name for p in (tmp_path / "drops" / "p003").iterdir()] == ["c1-t1-p3.json"]

    monkeypatch.setenv("PARTNERCAST_FILEDROP_MAX_LENGTH", "5")  # the env beats the file
    assert plugins.channel("filedrop", load_settings()).validate(draft) == [
        "the post is 20 characters (at most 5)"
    ]
    monkeypatch.setenv("PARTNERCAST_FILEDROP_MAX_LENGTH", "none")
    with pytest.raises(UserError, match=r"^environment: setting filedrop.max_length"):
        plugins.channel("filedrop", load_settings())

    todo = channel.render(simple_request("filedrop", {"title": "Hi"}, "TODO: write"))
    assert plugins.before_publish(_dispatch(), todo) == ["filedrop post still says TODO"]
    assert plugins.before_publish(_dispatch(), draft) == []

    caplog.set_level(logging.INFO)
    event = Event(
        id=1, tenant_id=1, kind="dispatch.done", partner_id=3, occurred_at=datetime.now(UTC)
    )
    plugins.on_event(event)
    assert "partnercast event dispatch.done for partner 3" in caplog.text
    [job] = [job for job in plugins.jobs() if job.plugin == "filedrop"]
    job.function(datetime(2026, 12, 2, tzinfo=UTC))
    assert "daily report for 2026-12-02" in caplog.text


def test_a_bare_example_channel_uses_its_defaults(installed: Path) -> None:
    channel_class = load_plugins().channel_classes()["filedrop"]
    assert channel_class(PluginConfig()).validate(
        channel_class().render(simple_request("filedrop", {"title": "x"}, "y" * 501))
    ) == ["the post is 501 characters (at most 500)"]
