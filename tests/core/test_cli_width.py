"""The CLI's tables are whole when its output is not a terminal (a pipe, a file, CI logs).

rich gives a console that writes to no terminal 80 columns and cuts table cells with "…";
core/cli.py gives such output the width its content needs (up to NO_TERMINAL_WIDTH),
COLUMNS still winning when set.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from partnercast.core.cli import NO_TERMINAL_WIDTH, CliConsole

LONG_ERROR = (
    "cannot reach the licence server at https://licences.example-vendor.test/v2/partnercast"
    " after 3 attempts (connection refused)"
)


def _plugin_that_fails(root: Path) -> None:
    """An installed distribution whose channel plugin raises a long error on load."""
    info = root / "raising_channel-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: raising-channel\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text("[partnercast]\nraising_channel = raising_channel\n")
    (root / "raising_channel.py").write_text(
        "from partnercast.plugins import hookimpl\n"
        "@hookimpl\n"
        "def register_channels(register):\n"
        f"    raise RuntimeError({LONG_ERROR!r})\n"
    )


def _run(root: Path, **extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(PYTHONPATH=str(root), **extra)
    result = subprocess.run(
        [sys.executable, "-m", "partnercast", "plugins"],
        env=env,
        stdin=subprocess.DEVNULL,  # no terminal anywhere: stdin, stdout, stderr
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_table_piped_without_columns_keeps_every_value_whole(tmp_path: Path) -> None:
    _plugin_that_fails(tmp_path)
    out = _run(tmp_path)
    assert "…" not in out
    [row] = [line for line in out.splitlines() if "raising_channel" in line]
    assert LONG_ERROR in row  # on one line, not folded at 80 columns
    assert max(len(line) for line in out.splitlines()) <= NO_TERMINAL_WIDTH


def test_columns_still_sets_the_width_of_piped_output(tmp_path: Path) -> None:
    _plugin_that_fails(tmp_path)
    out = _run(tmp_path, COLUMNS="80")
    assert max(len(line) for line in out.splitlines()) <= 80
    assert LONG_ERROR not in out  # folded onto more lines at 80 columns


def test_a_terminal_keeps_its_own_width(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal:
        def isatty(self) -> bool:
            return True

        def write(self, text: str) -> int:
            return len(text)

        def flush(self) -> None:
            pass

    monkeypatch.delenv("COLUMNS", raising=False)
    assert CliConsole(file=Terminal()).width != NO_TERMINAL_WIDTH  # rich's own answer
    assert CliConsole(file=Terminal(), width=123).width == 123
