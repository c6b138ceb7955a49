"""CPU seconds of the processes around a measurement: the database server, the SMTP sink.

A worker measures its own CPU (``resource.getrusage``), but on a small machine the
processes it talks to share its cores: a PostgreSQL server's backends, the sink. Their
CPU a message is what says whether a run was bound by the machine's cores (every core
busy) and what each part of the system costs on them. Read from Linux's /proc, sampled
every 50 ms by a thread, so that a process that ends during the run (a backend whose
connection closed) still counts what it used up to its last sample; one born during the
run counts from its start. Elsewhere :meth:`ProcessCpu.stop` answers None.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


def _cpu_seconds(pid: int, ticks: int) -> float | None:
    """User plus system CPU of ``pid`` (its threads included), or None once it is gone."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def _command_line(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, UnicodeDecodeError):
        return ""


def _busy_seconds(ticks: int) -> float:
    """CPU seconds every core of the machine spent busy (not idle or waiting for I/O)."""
    fields = [int(n) for n in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / ticks


def postgres_of(database: str) -> Callable[[int, str], str | None]:
    """Groups a PostgreSQL server's processes: the backends connected to ``database`` and
    the server's own writers (WAL, background, checkpoints), which write for them."""
    writers = ("walwriter", "background writer", "checkpointer")

    def group(_pid: int, command: str) -> str | None:
        if not command.startswith("postgres:"):
            return None
        title = command.split(":", 1)[1]
        if f" {database} " in f"{title} " or any(name in title for name in writers):
            return "database server"
        return None

    return group


def one_process(pid: int, name: str) -> Callable[[int, str], str | None]:
    """Groups one process (and only it) under ``name``."""
    return lambda found, _command: name if found == pid else None


@dataclass
class _Seen:
    """A process as the samples found it."""

    group: str | None  # None: not one the groups select (yet)
    first: float  # its CPU seconds at the first sample (0 for one born during the run)
    last: float  # at the last sample
    born: bool  # born during the run


class ProcessCpu:
    """Samples the CPU of the processes the ``groups`` select, from :meth:`start` to
    :meth:`stop`; each group's seconds, and how many of the machine's cores were busy on
    average."""

    def __init__(self, *groups: Callable[[int, str], str | None]) -> None:
        self._groups = groups
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._seen: dict[int, _Seen] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="process-cpu", daemon=True)
        self._busy_at_start = 0.0
        self._wall_at_start = 0.0
        self._started = False
        self.available = (PROC / "stat").exists()

    def start(self) -> ProcessCpu:
        if self.available:
            self._sample()
            self._busy_at_start = _busy_seconds(self._ticks)
            self._wall_at_start = time.monotonic()
            self._started = True
            self._thread.start()
        return self

    def stop(self) -> tuple[dict[str, float], float] | None:
        """Each group's CPU seconds and the cores busy on average (busy core-seconds over
        the seconds measured), or None where /proc does not exist."""
        if not self.available:
            return None
        self._stopping.set()
        self._thread.join()
        self._sample()
        busy = _busy_seconds(self._ticks) - self._busy_at_start
        cores = busy / max(time.monotonic() - self._wall_at_start, 1e-9)
        used: dict[str, float] = {}
        for seen in self._seen.values():
            if seen.group is not None:
                used[seen.group] = used.get(seen.group, 0.0) + seen.last - seen.first
        return used, cores

    def _run(self) -> None:
        while not self._stopping.wait(0.05):
            self._sample()

    def _sample(self) -> None:
        for entry in PROC.iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            seen = self._seen.get(pid)
            if seen is not None and seen.group is None and not seen.born:
                continue  # there at the start and not one of ours: it stays so
            cpu = _cpu_seconds(pid, self._ticks)
            if cpu is None:
                continue
            if seen is None or seen.group is None:
                # One born during the run is asked again until it is one of ours: a fork
                # shows its parent's command line until it sets its own (a PostgreSQL
                # backend its title). All it used is the run's.
                command = _command_line(pid)
                group = next((g for pick in self._groups if (g := pick(pid, command))), None)
                born = self._started if seen is None else True
                self._seen[pid] = _Seen(group, 0.0 if born else cpu, cpu, born)
            else:
                seen.last = cpu
