"""A loop of `partnercast` commands that write, each in a subprocess, beside a worker.

The SQLite crash test runs it while the worker sends: concierge tasks added in the
worker's own tenant, contacts imported and enrollments approved in a second tenant (so
that the audience being delivered to does not move). Each command's exit code and output
are kept, to check that none failed and that no 'database is locked' reached a user.
"""

from __future__ import annotations

import csv
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from support.crash_fleet import PARTNERCAST


@dataclass
class Ran:
    args: list[str]
    code: int
    output: str


@dataclass
class CliWriter:
    env: dict[str, str]
    folder: Path
    tenant: str  # the worker's tenant: tasks are added there
    bystander: str  # the other tenant: contacts imported, enrollments approved
    bystander_partners: list[str]  # submitted, waiting for approval
    runs: list[Ran] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=60)

    def _commands(self, turn: int) -> list[list[str]]:
        partner = self.bystander_partners[turn % len(self.bystander_partners)]
        commands = [
            [
                "tasks",
                "add",
                "P001",
                "--kind",
                "crash-test",
                "--title",
                f"write {turn}",
                "--tenant",
                self.tenant,
            ],
            [
                "contacts",
                "import",
                "-",
                str(self._contacts(turn, partner)),
                "--tenant",
                self.bystander,
            ],
        ]
        if turn < len(self.bystander_partners):
            commands.append(
                [
                    "approve",
                    "cloud-security",
                    partner,
                    "--tenant",
                    self.bystander,
                    "--reason",
                    "test",
                ]
            )
        return commands

    def _contacts(self, turn: int, partner: str) -> Path:
        path = self.folder / f"contacts-{turn}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["partner", "external_id", "email", "first_name", "consent"])
            for number in range(50):
                ref = f"W{turn:03d}-{number:02d}"
                writer.writerow([partner, ref, f"{ref.lower()}@bystander.example", "Kim", "yes"])
        return path

    def _loop(self) -> None:
        turn = 0
        while not self._stop.is_set():
            for args in self._commands(turn):
                if self._stop.is_set():
                    return
                done = subprocess.run(
                    [*PARTNERCAST, *args],
                    env={**self.env, "COLUMNS": "200"},
                    cwd=self.folder,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                self.runs.append(Ran(args, done.returncode, done.stdout + done.stderr))
            turn += 1
