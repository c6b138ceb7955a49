"""Imports show a progress bar on a terminal and stay quiet in a pipe: the real command,
its standard error a pseudo-terminal, then a pipe."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from conftest import make_tenant

PARTNERS = (
    "external_id,name,legal_name,postal_address\n"
    'P1,Nordlicht,Nordlicht GmbH,"Speicherstadt 12, Hamburg"\n'
)


def contacts_file(folder: Path, count: int) -> Path:
    path = folder / "contacts.csv"
    lines = [f"C{n},c{n}@x{n % 50}.example,yes" for n in range(count)]
    path.write_text("external_id,email,consent\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "partnercast", *args]


def read_all(fd: int, process: subprocess.Popen[bytes]) -> bytes:
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the other end closed
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    return b"".join(chunks)


def test_import_draws_a_bar_on_a_terminal_and_nothing_in_a_pipe(engine, tmp_path) -> None:
    make_tenant(engine, "vendor-a")
    partners = tmp_path / "partners.csv"
    partners.write_text(PARTNERS, encoding="utf-8")
    subprocess.run(
        command("partners", "import", str(partners), "--tenant", "vendor-a"),
        check=True,
        capture_output=True,
    )
    path = contacts_file(tmp_path, 12_000)
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    with subprocess.Popen(
        command("contacts", "import", "P1", str(path), "--tenant", "vendor-a"),
        stdout=subprocess.PIPE,
        stderr=follower,
        env=env,
    ) as process:
        os.close(follower)
        drawn = read_all(leader, process).decode("utf-8", "replace")
        out = process.stdout.read().decode() if process.stdout else ""
        assert process.wait() == 0
    os.close(leader)
    assert "contacts: 12000 created" in out
    assert "importing contacts.csv" in drawn  # the bar, on the terminal's stderr
    assert "━" in drawn or "/12000" in drawn

    again = subprocess.run(
        command("contacts", "import", "P1", str(path), "--tenant", "vendor-a"),
        capture_output=True,
        text=True,
        env=env,
    )
    assert again.returncode == 0
    assert "12000 unchanged" in again.stdout
    assert again.stderr == ""  # a pipe: not a character of progress
