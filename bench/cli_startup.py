"""CPU time a CLI command costs, against the same commands of another commit, in one run.

    python bench/cli_startup.py [--baseline REF] [--runs 5]

Measures, for this work tree and for a git worktree of ``--baseline`` (default: the main
of 2026-12-06 before the issue 16 work, 6e30c53), the CPU time (user + system, from
``resource.getrusage(RUSAGE_CHILDREN)``: the process's own cost, whatever else the
machine is doing) of:

* ``partnercast --help``, and ``status --help``, ``tasks --help``, ``preview --help``
  (start-up: everything a command pays before it does anything);
* ``partnercast status`` and ``partnercast tasks --tenant bench`` on a small migrated
  SQLite database with one tenant (a whole, real command).

Each tree runs as ``python -m partnercast`` with ``PYTHONPATH`` set to a package tree of it
(tools/package_tree.py): the installed, editable package is looked up after it. Each
command runs once unmeasured first (Python compiles the tree's modules then, as pip does
at install: ``PYTHONDONTWRITEBYTECODE`` is not passed on), then
``--runs`` times per tree, alternating trees; prints the median per command and tree, the
load average, and for reference the floor every command pays: the interpreter with typer
and its rich help (``python -c "import typer.rich_utils"``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASELINE = "6e30c53"  # main when issue 16's CLI work began
COMMANDS = (
    ("--help",),
    ("status", "--help"),
    ("tasks", "--help"),
    ("preview", "--help"),
    ("status",),
    ("tasks", "--tenant", "bench"),
)

SETUP = (
    ("db", "upgrade"),
    ("tenants", "create", "bench", "--name", "Bench", "--legal-name", "Bench Inc."),
)


def package_tree(source: Path, dest: Path) -> Path:
    subprocess.run(
        [sys.executable, str(source / "tools" / "package_tree.py"), str(dest)],
        check=True,
        capture_output=True,
    )
    return dest


def cpu_seconds(command: tuple[str, ...], env: dict[str, str]) -> float:
    """CPU time of one run of ``partnercast <command>`` (it must succeed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "partnercast", *command], env=env, capture_output=True, text=True
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"partnercast {' '.join(command)} failed:\n{done.stdout}{done.stderr}"[-3000:])
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def floor_seconds() -> float:
    """CPU time of an interpreter that imports typer and its rich help formatter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", "import typer.rich_utils"], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default=BASELINE, help="git ref to compare with")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="clibench-"))
    worktree = folder / "baseline"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(worktree), args.baseline],
        check=True,
        capture_output=True,
    )
    try:
        trees = {
            f"baseline {args.baseline}": package_tree(worktree, folder / "tree-baseline"),
            "this tree": package_tree(REPO, folder / "tree-now"),
        }
        from cryptography.fernet import Fernet

        envs = {}
        # An installed package has its bytecode (pip compiles it at install); with
        # PYTHONDONTWRITEBYTECODE set (as on this machine) every run would compile each of
        # the tree's modules again, about 0.1 s a command line that no user pays.
        inherited = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        for n, (name, tree) in enumerate(trees.items()):  # each tree its own schema
            envs[name] = {
                **inherited,
                "PYTHONPATH": str(tree),
                "PARTNERCAST_DATABASE_URL": f"sqlite:///{folder / f'cli{n}.db'}",
                "PARTNERCAST_SECRET_KEY": secrets.token_hex(32),
                "PARTNERCAST_ENCRYPTION_KEYS": json.dumps([Fernet.generate_key().decode()]),
                "COLUMNS": "100",
            }
            for command in SETUP:
                cpu_seconds(command, envs[name])

        print(f"CPU time per command (median of {args.runs}), load average {load_average()}")
        print(f"{'command':<34}" + "".join(f"{name:>22}" for name in trees))
        for command in COMMANDS:
            runs: dict[str, list[float]] = {name: [] for name in trees}
            for name in trees:
                cpu_seconds(command, envs[name])  # unmeasured: compiles what it imports
            for _ in range(args.runs):  # alternating, so that a burst of load hits both
                for name in trees:
                    runs[name].append(cpu_seconds(command, envs[name]))
            cells = [f"{statistics.median(runs[name]):>20.2f} s" for name in trees]
            print(f"{'partnercast ' + ' '.join(command):<34}" + "".join(cells), flush=True)
        floor = [floor_seconds() for _ in range(args.runs)]
        print(f"{'(floor: python + typer + rich help)':<34}{statistics.median(floor):>20.2f} s")
        print(f"load average at the end: {load_average()}")
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)],
            check=False,
            capture_output=True,
        )


if __name__ == "__main__":
    main()
