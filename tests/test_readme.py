"""The README's "Using it" block, run as written, one line after the other, succeeds.

People copy it into a shell: a renamed option or an example file that moved breaks the
first thing a newcomer tries. The block runs as a newcomer's shell would: in an empty
folder, with no partnercast setting in the environment but what its own `export` lines
set (so `init` generates the keys and creates the database there). `tick` sends
the first email through the SMTP server of the `[smtp]` settings, which the README says;
the test provides one (a local SMTP sink, PARTNERCAST_SMTP_HOST/PORT) and checks that the
mail arrived there. `serve` and `worker` run until stopped and are left out (tests/web and
tests/core/worker start them).
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from partnercast.demo.smtp_sink import SmtpSink

REPO = Path(__file__).resolve().parent.parent
LONG_RUNNING = {"serve", "worker"}


def readme_block() -> list[str]:
    """The lines of the README's first shell block under "Using it", continuations joined."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using it", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    return [line for line in block.group(1).replace("\\\n", " ").splitlines() if line.strip()]


def readme_commands() -> list[list[str]]:
    """The `partnercast ...` lines of that block, but `serve` and `worker`."""
    commands = []
    for line in readme_block():
        words = shlex.split(line, comments=True)
        if words[:1] == ["partnercast"] and words[1] not in LONG_RUNNING:
            commands.append(words[1:])
    return commands


def test_every_line_of_the_block_is_run_or_said_why_not() -> None:
    for line in readme_block():
        words = shlex.split(line, comments=True)
        assert words[:1] in (["partnercast"], ["export"]), line
        if words[0] == "partnercast" and words[1] in LONG_RUNNING:
            continue
    said = (REPO / "README.md").read_text(encoding="utf-8").split("## Using it", 1)[1]
    said = " ".join(said.split("## ", 1)[0].split())
    assert "`tick` sends" in said and "SMTP server" in said  # what tick needs is said


def test_the_readme_commands_work(
    cli, tmp_path: Path, sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    from partnercast.cli import build_app

    for name in [name for name in os.environ if name.startswith("PARTNERCAST_")]:
        monkeypatch.delenv(name)  # a newcomer's shell: the block's exports only
    for line in readme_block():
        words = shlex.split(line, comments=True)
        if words[0] == "export":
            name, value = words[1].split("=", 1)
            monkeypatch.setenv(name, value)
    assert os.environ["PARTNERCAST_DATABASE_URL"] == "sqlite:///partnercast.db"
    monkeypatch.setenv("COLUMNS", "120")
    # tick needs an SMTP server ([smtp] host and port): the test's own
    monkeypatch.setenv("PARTNERCAST_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PARTNERCAST_SMTP_PORT", str(sink.port))
    (tmp_path / "examples").symlink_to(REPO / "examples")
    assert not (tmp_path / "partnercast.db").exists()  # a fresh database
    commands = readme_commands()
    assert len(commands) > 20
    for args in commands:
        before = sink.received.count
        # accounts connect asks for the secrets it was not given, with hidden input
        result = cli.runner.invoke(build_app(), args, input="a-secret\n" * 5)
        assert result.exit_code == 0, (
            f"partnercast {shlex.join(args)}\n{result.stdout}\n{result.stderr}"
        )
        if args[0] == "tick":
            assert sink.received.count > before, "tick sent nothing to the SMTP server"
    assert (tmp_path / "partnercast.db").is_file()
    assert (tmp_path / "partnercast-keys.toml").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "intro.html").exists()
    assert (tmp_path / "reports" / "index.html").exists()
