"""Contact import at scale: 100,000 contacts, today's import beside the old one.

    python bench/contact_import.py                       # SQLite, 100,000 contacts, both paths
    python bench/contact_import.py --contacts 20000      # smaller
    python bench/contact_import.py --skip-old            # today's path only
    python bench/contact_import.py --postgres postgresql+psycopg://postgres@127.0.0.1/partnercast_bench

Writes one contacts file the way a partner's CRM export looks (external id, email, names,
company, locale, consent: every row good), then, for each path on a fresh database with
one tenant and one partner, times two imports of it as a user runs them, each in its own
process: the first (every row created) and an identical second one (every row unchanged).
Each figure is the wall time of the whole command, the process started and ended, its
CPU time (user and system: what the wall time would be on an idle core) and its peak
resident memory (the kernel's ru_maxrss of that process).

Today's path is ``partnercast contacts import`` itself; the old one (row by row, one
SAVEPOINT each) is kept in bench/old_contact_import.py and runs on the same models.
The load average is printed before and after: the machine is shared.

Exit status 1 when today's path misses a target: the first import under 15 s and 200 MB,
the second under 5 s. PostgreSQL: the database in the URL must contain ``bench``; its
``public`` schema is dropped and recreated before each path.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
TARGET_IMPORT_S = 15.0
TARGET_MEMORY_MB = 200.0
TARGET_REIMPORT_S = 5.0
FIRST = ["Anna", "Jonas", "Lea", "Lukas", "Mia", "Felix", "Hannah", "Paul", "Emma", "Ben",
         "Olivia", "Noah", "Léa", "Chloé", "Søren", "Zoë"]  # fmt: skip
LAST = ["Schmidt", "Müller", "Weber", "Wagner", "Becker", "Hoffmann", "Dubois", "Martin",
        "Smith", "Jones", "García", "Rossi", "Nowak", "Jensen"]  # fmt: skip
LOCALES = ["de", "en", "fr", "de_CH", "en_GB", "es"]


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    peak_mb: float
    summary: str


def write_contacts(path: Path, count: int) -> None:
    rng = random.Random(15)
    domains = [f"company{number}.example" for number in range(max(1, count // 20))]
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("external_id,email,first_name,last_name,company,locale,consent\n")
        for number in range(count):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            domain = rng.choice(domains)
            local = f"{first}.{last}.{number}".lower().replace("é", "e").replace("ø", "o")
            local = local.replace("ë", "e").replace("ü", "u").replace("í", "i")
            company = domain.split(".")[0].title()
            handle.write(
                f"C{number:07d},{local}@{domain},{first},{last},{company},"
                f"{rng.choice(LOCALES)},yes\n"
            )


def run(command: list[str], env: dict[str, str]) -> Run:
    """Run ``command``, return its wall time, its own peak RSS and its last line."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    out = process.stdout.read() if process.stdout else ""
    err = process.stderr.read() if process.stderr else ""
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{out}\n{err}")
    summary = next((line for line in out.splitlines() if line.startswith("contacts:")), out)
    cpu = usage.ru_utime + usage.ru_stime
    return Run(seconds, cpu, usage.ru_maxrss / 1024, summary.strip())


def fresh_database(url: str, folder: Path, name: str) -> str:
    if url.startswith("sqlite"):
        return f"sqlite:///{folder / (name + '.db')}"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def prepare(env: dict[str, str], folder: Path) -> None:
    cli = [sys.executable, "-m", "partnercast"]
    partners = folder / "partners.csv"
    partners.write_text(
        "external_id,name,legal_name,postal_address\n"
        'P1,Nordlicht Systemhaus,Nordlicht Systemhaus GmbH,"Speicherstadt 12, Hamburg"\n',
        encoding="utf-8",
    )
    for command in (
        ["db", "upgrade"],
        ["tenants", "create", "bench", "--name", "Bench"],
        ["partners", "import", str(partners), "--tenant", "bench"],
    ):
        subprocess.run([*cli, *command], env=env, check=True, capture_output=True)


def measure(path_name: str, url: str, folder: Path, contacts: Path) -> tuple[Run, Run]:
    env = {**os.environ, "PARTNERCAST_DATABASE_URL": fresh_database(url, folder, path_name)}
    env.pop("PARTNERCAST_TENANT", None)
    prepare(env, folder)
    if path_name == "today":
        command = [sys.executable, "-m", "partnercast", "contacts", "import", "P1",
                   str(contacts), "--tenant", "bench"]  # fmt: skip
    else:
        command = [sys.executable, str(HERE / "old_contact_import.py"), str(contacts), "P1",
                   "bench"]  # fmt: skip
    first = run(command, env)
    second = run(command, env)
    return first, second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--postgres", metavar="URL", help="run on this PostgreSQL database")
    parser.add_argument("--skip-old", action="store_true", help="time today's path only")
    args = parser.parse_args()
    url = args.postgres or "sqlite://"
    if args.postgres and "bench" not in (make_url(args.postgres).database or ""):
        parser.error("the PostgreSQL database's name must contain 'bench' (it is wiped)")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results: dict[str, tuple[Run, Run]] = {}
    with tempfile.TemporaryDirectory(prefix="partnercast-bench-") as tmp:
        folder = Path(tmp)
        contacts = folder / "contacts.csv"
        write_contacts(contacts, args.contacts)
        database = "PostgreSQL" if args.postgres else "SQLite"
        print(f"{args.contacts:,} contacts ({contacts.stat().st_size / 1e6:.1f} MB), {database}")
        for path_name in ("today",) if args.skip_old else ("today", "old"):
            results[path_name] = measure(path_name, url, folder, contacts)
            first, second = results[path_name]
            print(
                f"{path_name:>5}: import {first.seconds:6.1f} s ({first.cpu_seconds:5.1f} s CPU),"
                f" peak {first.peak_mb:4.0f} MB | re-import {second.seconds:6.1f} s"
                f" ({second.cpu_seconds:5.1f} s CPU), peak {second.peak_mb:4.0f} MB"
            )
            print(f"       {first.summary}\n       {second.summary}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    first, second = results["today"]
    expected = (f"{args.contacts} created", f"{args.contacts} unchanged")
    if expected[0] not in first.summary or expected[1] not in second.summary:
        print("today's path did not create, then leave unchanged, every contact")
        return 1
    misses = [
        label
        for label, miss in (
            (f"import over {TARGET_IMPORT_S:g} s", first.seconds > TARGET_IMPORT_S),
            (f"import over {TARGET_MEMORY_MB:g} MB", first.peak_mb > TARGET_MEMORY_MB),
            (f"re-import over {TARGET_REIMPORT_S:g} s", second.seconds > TARGET_REIMPORT_S),
        )
        if miss and args.contacts >= 100_000
    ]
    if misses:
        print("missed: " + "; ".join(misses))
        return 1
    if "old" in results:
        old_first, old_second = results["old"]
        print(
            f"today against old: import {old_first.seconds / first.seconds:.0f}x faster, "
            f"re-import {old_second.seconds / second.seconds:.0f}x faster, "
            f"{old_first.peak_mb / first.peak_mb:.1f}x less memory"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
