"""The checks CI runs over the code itself: the layer contracts, the types, the clock.

docs/architecture.md draws the import-linter contracts of pyproject.toml; mypy runs strict
on core/ and plugins/; library code never reads the wall clock (time is a parameter).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
from package_tree import build, package_dirs  # noqa: E402

CLOCK_READS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
}
"""Attribute calls that read the wall clock, besides :func:`partnercast.core.timeutil.utcnow`."""

EDGES = {
    # Where the clock is read once and passed down: commands (the engine's; a channel's
    # read it through plugins.cli.parse_now), HTTP handlers (through the one request
    # dependency the web's and the channels' routes share, plugins.web.request_now), the
    # worker loop, the one helper everything calls, and the demo's stand-ins for the
    # networks it fakes.
    "partnercast.core.timeutil",
    "partnercast.core.cli",
    "partnercast.core.worker",
    "partnercast.plugins.web",
    "partnercast.plugins.cli",
    "partnercast.cli",
    "partnercast.accounts_cli",
    "partnercast.campaigns.workflow_cli",
    "partnercast.campaigns.cli",
    "partnercast.tenants.cli",
    "partnercast.concierge.cli",
    "partnercast.funnel.cli",
    "partnercast.demo",
    "partnercast.demo.social_standin",
    "partnercast.demo.search_standin",
    "partnercast.demo.smtp_sink",
}


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is not installed (pip install '.[test]')"
    return found


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("tree"))


def _run(command: list[str], tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)


def test_the_layer_contracts_hold(tree: Path) -> None:
    result = _run([_tool("lint-imports"), str(REPO / "pyproject.toml"), "--no-cache"], tree)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " 0 broken" in result.stdout.split("Contracts:")[-1]


def test_the_types_check(tree: Path) -> None:
    command = [_tool("mypy"), "--config-file", str(REPO / "pyproject.toml")]
    result = _run([*command, "--cache-dir", str(tree / ".mypy_cache"), "-p", "partnercast"], tree)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package, folder in package_dirs().items():
        if package in ("partnercast.examples", "partnercast.core.migrations"):
            continue
        paths = folder.glob("*.py") if package == "partnercast" else folder.rglob("*.py")
        for path in sorted(paths):
            parts = path.relative_to(folder).with_suffix("").parts
            if "migrations" in parts:
                continue
            dotted = ".".join(p for p in parts if p != "__init__")
            found.append((f"{package}.{dotted}".rstrip("."), path))
    return found


def test_the_clock_check_covers_every_module() -> None:
    names = {name for name, _ in _modules()}
    assert {"partnercast.cli", "partnercast.channels.email.channel", "partnercast.core"} <= names
    assert not any("migrations" in name for name in names)


def _clock_reads(path: Path) -> list[str]:
    reads = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Name) and node.id == "utcnow":
            reads.append(f"{path.name}:{node.lineno} utcnow")
        if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
            continue
        if (node.value.id, node.attr) in CLOCK_READS or node.attr == "utcnow":
            reads.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
    return reads


def test_library_code_never_reads_the_wall_clock() -> None:
    offenders = {
        name: reads
        for name, path in _modules()
        if name not in EDGES and (reads := _clock_reads(path))
    }
    assert offenders == {}, "read the clock at the edge and pass `now` down:\n" + "\n".join(
        f"{name}: {', '.join(reads)}" for name, reads in sorted(offenders.items())
    )


def test_the_clock_check_sees_a_wall_clock_read(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import time\nfrom datetime import UTC, datetime\n"
        "def f():\n    return datetime.now(UTC), time.time()\n",
        encoding="utf-8",
    )
    assert _clock_reads(sample) == ["sample.py:4 datetime.now", "sample.py:4 time.time"]
