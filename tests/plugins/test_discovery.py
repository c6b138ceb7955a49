"""Plugin discovery from installed distributions: a broken plugin is reported, the rest load."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from partnercast.core.errors import PartnercastError
from partnercast.plugins import hookimpl
from partnercast.plugins.manager import load_plugins


def _fake_distribution(root: Path, name: str, module: str, source: str) -> None:
    """An installed distribution as importlib.metadata sees it: a dist-info folder."""
    info = root / f"{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[partnercast]\n{module} = {module}\n")
    (root / f"{module}.py").write_text(source)


def _plugins_command(path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    python_path = os.pathsep.join(filter(None, [str(path), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path, "COLUMNS": "200", **variables}
    return subprocess.run(
        [sys.executable, "-m", "partnercast", "plugins"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=path,
    )


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load(tmp_path: Path) -> None:
    _fake_distribution(tmp_path, "broken-channel", "broken_channel", "import no_such_module\n")
    _fake_distribution(
        tmp_path,
        "raising-channel",
        "raising_channel",
        "from partnercast.plugins import hookimpl\n"
        "@hookimpl\n"
        "def register_channels(register):\n"
        "    raise RuntimeError('cannot reach the licence server')\n",
    )
    result = _plugins_command(tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "broken_channel" in out and "No module named 'no_such_module'" in out
    assert "raising_channel" in out and "cannot reach the licence server" in out
    assert "email (Email)" in out  # the built-in still loads


def test_an_allow_list_of_external_plugins_never_drops_the_built_ins(tmp_path: Path) -> None:
    for name in ("chosen", "other"):
        _fake_distribution(
            tmp_path,
            f"{name}-channel",
            f"{name}_channel",
            "from partnercast.plugins import hookimpl\n"
            "@hookimpl\n"
            "def template_filters():\n"
            "    return {}\n",
        )
    result = _plugins_command(tmp_path, PARTNERCAST_PLUGINS="chosen_channel")
    assert result.returncode == 0, result.stderr
    assert "chosen_channel" in result.stdout and "other_channel" not in result.stdout
    for channel in ("email (Email)", "microsite", "x (X", "linkedin", "search"):
        assert channel in result.stdout


def test_a_built_in_that_fails_to_import_is_reported_and_skipped() -> None:
    defaults = (("ghost", "partnercast.no_such_plugin"), ("email", "partnercast.channels.email"))
    plugins = load_plugins(defaults=defaults)
    [ghost] = [info for info in plugins.infos if info.name == "ghost"]
    assert "No module named 'partnercast.no_such_plugin'" in ghost.error
    assert "email" in plugins.channel_classes()


def test_the_block_list_may_name_a_built_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTNERCAST_DISABLE_PLUGINS", "search")
    classes = load_plugins().channel_classes()
    assert "search" not in classes and "email" in classes
    monkeypatch.setenv("PARTNERCAST_PLUGINS", "something-external")
    assert "email" in load_plugins().channel_classes()


def test_jobs_are_collected_with_their_plugin_and_duplicates_refused() -> None:
    def refresh(now):  # type: ignore[no-untyped-def]
        return None

    class One:
        @hookimpl
        def register_jobs(self, register):  # type: ignore[no-untyped-def]
            register("refresh-tokens", refresh, every=timedelta(hours=1))

    class Two:
        @hookimpl
        def register_jobs(self, register):  # type: ignore[no-untyped-def]
            register("refresh-tokens", refresh, every=timedelta(hours=2))

    class Broken:
        @hookimpl
        def register_jobs(self, register):  # type: ignore[no-untyped-def]
            raise RuntimeError("no licence")

    broken = load_plugins(extra=[One(), Broken()])
    assert [job.name for job in broken.jobs()] == ["refresh-tokens"]  # the others still run
    jobs = load_plugins(extra=[One()]).jobs()
    assert [(job.name, job.every) for job in jobs] == [("refresh-tokens", timedelta(hours=1))]
    with pytest.raises(PartnercastError, match="two plugins register the job 'refresh-tokens'"):
        load_plugins(extra=[One(), Two()]).jobs()


def test_fetch_metrics_is_optional() -> None:
    from partnercast.channels.email.channel import EmailChannel

    assert not EmailChannel.supports_metrics()
    with pytest.raises(NotImplementedError, match="does not fetch metrics"):
        EmailChannel().fetch_metrics(None, ["x"])  # type: ignore[arg-type]
