"""The README's "Using it" commands, run as written, one after the other, succeed.

People copy them into a shell: a renamed option or an example file that moved breaks the
first thing a newcomer tries. `serve` and `worker` run until stopped and are left out.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from partnercast.demo.smtp_sink import SmtpSink

REPO = Path(__file__).resolve().parent.parent
LONG_RUNNING = {"serve", "worker"}


def readme_commands() -> list[list[str]]:
    """The `partnercast ...` lines of the README's first shell block under "Using it"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using it", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    joined = block.group(1).replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["partnercast"] and words[1] not in LONG_RUNNING:
            commands.append(words[1:])
    return commands


def test_the_readme_commands_work(
    cli, tmp_path: Path, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from partnercast.cli import build_app

    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("PARTNERCAST_SMTP_PORT", str(sink.port))
    for name in ("PARTNERCAST_SECRET_KEY", "PARTNERCAST_ENCRYPTION_KEYS"):
        monkeypatch.delenv(name)  # the suite's keys: the README makes its own (`init`)
    (tmp_path / "examples").symlink_to(REPO / "examples")
    commands = readme_commands()
    assert len(commands) > 20
    for args in commands:
        # accounts connect asks for the secrets it was not given, with hidden input
        result = cli.runner.invoke(build_app(), args, input="a-secret\n" * 5)
        assert result.exit_code == 0, (
            f"partnercast {shlex.join(args)}\n{result.stdout}\n{result.stderr}"
        )
    assert (tmp_path / "partnercast-keys.toml").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "intro.html").exists()
    assert (tmp_path / "reports" / "index.html").exists()
