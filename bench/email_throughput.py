"""Email throughput: the engine end to end against the machine's ceiling and a naive loop.

    python bench/email_throughput.py [--contacts 20000] [--partners 20] [--connections 2]
        [--database sqlite|postgresql|both] [--postgres-url URL] [--reuse] [--workers 1,2]
        [--window 32[,1,...]] [--ahead 0,1] [--prefetch on,off] [--repeat 1]

``--database both`` measures PostgreSQL and then SQLite in the same run, against the same
ceiling and naive loop. ``--repeat N`` measures N rounds, each PostgreSQL then SQLite back
to back, and judges the targets on the medians: on a shared machine one run's rates move
by a tenth and more from one minute to the next, and a ratio of two rates measured a
minute apart moves by twice that. ``--window`` is the delivery window (``Settings.delivery_window``,
core/journal.py): each value given is measured in turn (``--window 1`` is the old rule,
one journal commit a message). ``--ahead`` and ``--prefetch`` measure the engine with
that many windows noted ahead per connection (the setting delivery_ahead) and with the
next batch opened while the current one goes, or not (campaigns.dispatching.PREFETCH).

``--reuse`` keeps the built world (a SQLite file under the temp folder, or a PostgreSQL
template database ``emailbench_tpl_*``) for the next run with the same sizes and schema;
each measurement runs on a fresh copy of it.

Needs postfix's ``smtp-sink`` (Debian: ``apt-get install postfix``; as root it runs with
``-u nobody``): a C sink that is not itself the bottleneck, unlike an aiosmtpd server.
Prints, from the same run:

* engine: messages per second for a whole touch (claim, render once per partner variant,
  per-recipient personalisation, tracked links, unsubscribe headers, MIME, SMTP, a ledger
  row per message and its journal write) from a fresh database, with one worker
  process and with two (each a separate process running tick() under its own worker id,
  sharing the dispatches through their leases); each uses ``--connections`` SMTP
  connections;
* ceiling: pre-built messages of the engine's own size (measured on a real message of
  the same campaign) pushed with the same SMTP client code over the same number of
  processes and connections to the same sink;
* naive: a loop that renders Jinja and then MJML for each recipient and builds an
  email.message.EmailMessage for each (no sending);
* each worker process's peak memory (ru_maxrss);
* the database statements per 1,000 messages the workers ran, and the transactions
  (commits): counted by the engine itself (a SQLAlchemy ``before_cursor_execute`` and
  ``commit`` listener, plus core.journal.TALLY for the journal's own driver statements,
  each its own commit). Unlike the rates it does not move with the machine's load.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import resource
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any, NamedTuple

from jinja2 import Environment
from mjml import mjml2html
from process_cpu import ProcessCpu, one_process, postgres_of  # bench/, this script's folder
from sqlmodel import select

REPO = Path(__file__).resolve().parent.parent
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _free_port() -> int:
    from partnercast.demo.smtp_sink import free_port

    return free_port()


def start_sink(port: int) -> subprocess.Popen[bytes]:
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not Path(sink).exists():
        sys.exit("smtp-sink not found: apt-get install postfix (it ships /usr/sbin/smtp-sink)")
    command = [sink, "-c", "-u", "nobody", f"127.0.0.1:{port}", "256"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            smtplib.SMTP("127.0.0.1", port, timeout=1).quit()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    sys.exit("smtp-sink did not start")


def build_world(folder: Path, partners: int, contacts: int, smtp_port: int, url: str = ""):  # type: ignore[no-untyped-def]
    """A tenant, ``partners`` partners with ``contacts`` consenting contacts between them,
    the sample email campaign approved by every partner and its first cycle started.

    Contacts go in with one multi-row INSERT per 10,000 (SQLAlchemy Core, executemany):
    the ORM's add_all took minutes for 100,000.
    """
    from sqlalchemy import insert

    from partnercast.campaigns import approval
    from partnercast.campaigns.cycles import start_cycle
    from partnercast.campaigns.enrollment import enroll_partners
    from partnercast.campaigns.loader import read_campaign
    from partnercast.campaigns.models import Enrollment
    from partnercast.campaigns.store import store_campaign
    from partnercast.channels.email import SmtpSettings
    from partnercast.concierge.readiness import missing_by_partner
    from partnercast.core.db import make_engine, upgrade
    from partnercast.core.settings import load_settings
    from partnercast.core.tenancy import plain_session, tenant_session
    from partnercast.core.timeutil import utcnow
    from partnercast.demo.data import partner_rows, write_csv
    from partnercast.funnel.rollups import install
    from partnercast.plugins.manager import channel_template_suffixes
    from partnercast.tenants.importing import import_partners
    from partnercast.tenants.models import Contact, Partner, Tenant
    from partnercast.tenants.segments import load_segments_file

    install()  # the build records events (approvals): the rollups keep them
    now = utcnow()  # the bench is an edge: the world is built at the wall clock's now
    folder.mkdir(parents=True, exist_ok=True)
    settings = load_settings(
        database_url=url or f"sqlite:///{folder / 'bench.db'}",
        smtp=SmtpSettings(host="127.0.0.1", port=smtp_port),
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    with plain_session(engine) as session:
        tenant = Tenant(
            slug="bench",
            name="Bench",
            brand={"legal_name": "Bench Inc."},
            created_at=now,
        )
        session.add(tenant)
    rng = random.Random(1)
    with tenant_session(engine, tenant.id) as session:
        load_segments_file(session, REPO / "examples" / "tenants" / "segments.yaml", now=now)
        import_partners(
            session, write_csv(folder / "partners.csv", partner_rows(partners, rng)), now=now
        )
    with tenant_session(engine, tenant.id) as session:
        ids = [p.id for p in session.exec(select(Partner)).all()]
    for start in range(0, contacts, 10_000):
        rows = [
            {
                "tenant_id": tenant.id,
                "partner_id": ids[n % len(ids)],
                "external_id": f"C{n}",
                "email": f"c{n}@bench.example",
                "first_name": f"First{n}",
                "last_name": "",
                "company": "Acme",
                "locale": "en",
                "consent": True,
                "created_at": now,
                "updated_at": now,
            }
            for n in range(start, min(contacts, start + 10_000))
        ]
        with engine.begin() as connection:
            connection.execute(insert(Contact), rows)
    loaded = read_campaign(
        REPO / "examples" / "campaigns" / "cloud-security", channel_template_suffixes()
    )
    with tenant_session(engine, tenant.id) as session:
        campaign = store_campaign(session, loaded, now=now).campaign
        enroll_partners(session, campaign, now=now, readiness=missing_by_partner)
        for enrollment in session.exec(select(Enrollment)).all():
            approval.transition(session, enrollment, "submit", actor="bench", now=now)
            approval.transition(session, enrollment, "approve", actor="bench", now=now)
        start_cycle(session, campaign, START, now=now)
    return engine, settings


class _Counter:
    """The engine's own count of database statements and commits in this process."""

    def __init__(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        self.statements = 0
        self.commits = 0
        self._lock = threading.Lock()
        event.listen(Engine, "before_cursor_execute", self._statement)
        event.listen(Engine, "commit", self._commit)

    def _statement(self, *_: Any) -> None:
        with self._lock:
            self.statements += 1

    def _commit(self, *_: Any) -> None:
        with self._lock:
            self.commits += 1

    def totals(self) -> tuple[int, int]:
        """(statements, commits) so far, the journal's own included."""
        from partnercast.core.journal import TALLY

        return self.statements + TALLY.statements, self.commits + TALLY.statements


def _worker(
    url: str,
    port: int,
    connections: int,
    window: int,
    worker_id: str,
    go: Any,
    out: Any,
    variant: Variant | None = None,
) -> None:
    """One worker process: set up, wait for the start, tick() once; report what it did.

    Timing starts when every worker is ready, so interpreter start-up and imports (which
    a long-running worker pays once) are not counted as sending time. ``variant``: the
    windows noted ahead and the batch prefetch, where not the engine's defaults.
    """
    from partnercast.campaigns import dispatching

    if variant is not None and variant.prefetch is not None:
        dispatching.PREFETCH = variant.prefetch
    from partnercast.campaigns.ticking import tick
    from partnercast.channels.email import SmtpSettings
    from partnercast.concierge.scan_schedule import scan_after_tick
    from partnercast.core.db import make_engine
    from partnercast.core.settings import load_settings
    from partnercast.plugins.manager import default_plugins

    extra: dict[str, int] = {"delivery_window": window} if window else {}
    if variant is not None and variant.ahead is not None:
        extra["delivery_ahead"] = variant.ahead  # the setting (core/settings.py)
    settings = load_settings(
        database_url=url,
        smtp=SmtpSettings(host="127.0.0.1", port=port, connections=connections),
        **extra,
    )
    engine = make_engine(url)
    plugins = default_plugins()
    plugins.channel_classes()  # imports every channel's modules, as a running worker has
    from partnercast.funnel.rollups import install

    install()  # the worker composes the engine: its sends keep the rollups

    from partnercast.core.worker import settle_heap

    settle_heap()  # as `partnercast worker` does once it has started (core/worker.py)
    counter = _Counter()
    out.put(("ready", worker_id))
    go.wait()
    before = counter.totals()
    cpu_before = _cpu()
    started = time.time()
    report = tick(
        engine,
        settings,
        START + timedelta(hours=1),
        plugins=plugins,
        worker_id=worker_id,
        claim_batch=1,
        # What tick() ran at its end before ``after`` existed (the concierge task scan),
        # so the figures stay comparable with the earlier runs in docs/performance.md.
        after=[scan_after_tick],
    )
    finished = time.time()
    after = counter.totals()
    cpu = _cpu() - cpu_before
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    statements, commits = after[0] - before[0], after[1] - before[1]
    out.put(("done", report.sent, started, finished, rss, statements, commits, cpu))


def _cpu() -> float:
    """This process's CPU seconds (user + system, every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class EngineRun(NamedTuple):
    sent: int
    seconds: float
    rss: float  # the worst worker's peak, MB
    statements: int  # all workers'
    commits: int
    cpu: float  # CPU seconds of the workers (not of the database server)
    around: dict[str, float] | None = None  # CPU seconds of the server and the sink
    busy: float | None = None  # the machine's cores busy on average during the run


class Variant(NamedTuple):
    """Where a measurement leaves the engine's defaults: windows a connection notes ahead
    (the setting ``delivery_ahead``), batches opened while the one before goes
    (campaigns.dispatching.PREFETCH); None keeps the default."""

    ahead: int | None = None
    prefetch: bool | None = None

    def label(self) -> str:
        said = []
        if self.ahead is not None:
            said.append(f"ahead {self.ahead}")
        if self.prefetch is not None:
            said.append(f"prefetch {'on' if self.prefetch else 'off'}")
        return ", ".join(said)


def engine_rate(
    url: str,
    port: int,
    workers: int,
    connections: int,
    window: int,
    variant: Variant = Variant(),
    around: tuple[Callable[[int, str], str | None], ...] = (),
) -> EngineRun:
    """One measurement of ``workers`` processes on one database (``window``: the delivery
    window; 0 keeps the engine's default). ``around``: the other processes whose CPU
    is measured over the same seconds (bench/process_cpu.py)."""
    context = multiprocessing.get_context("spawn")
    out, go = context.Queue(), context.Event()
    processes = [
        context.Process(
            target=_worker,
            args=(url, port, connections, window, f"bench-{n}", go, out, variant),
        )
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        _receive(out, processes)  # ready
    sampler = ProcessCpu(*around).start()
    go.set()
    results = [_receive(out, processes) for _ in processes]
    measured = sampler.stop()
    for process in processes:
        process.join()
    seconds = max(r[3] for r in results) - min(r[2] for r in results)
    return EngineRun(
        sent=sum(r[1] for r in results),
        seconds=seconds,
        rss=max(r[4] for r in results),
        statements=sum(r[5] for r in results),
        commits=sum(r[6] for r in results),
        cpu=sum(r[7] for r in results),
        around=measured[0] if measured else None,
        busy=measured[1] if measured else None,
    )


def _receive(out: Any, processes: list[Any]) -> Any:
    """The next report of a worker; exits saying so when a worker died without one."""
    import queue

    while True:
        try:
            return out.get(timeout=2)
        except queue.Empty:
            dead = [p for p in processes if p.exitcode not in (None, 0)]
            if dead:
                for process in processes:
                    process.kill()
                sys.exit(f"a bench worker died (exit code {dead[0].exitcode})")


def message_size(folder: Path) -> int:
    """The size of one real message of the bench campaign (sent to an in-process sink)."""
    from partnercast.campaigns.ticking import tick
    from partnercast.demo.smtp_sink import SmtpSink

    with SmtpSink() as sink:
        engine, settings = build_world(folder, 1, 1, sink.port)
        tick(engine, settings, START + timedelta(hours=1))
        return len(sink.received.raw[0])


def _push(port: int, payload: bytes, count: int, connections: int, out: Any) -> None:
    from partnercast.channels.email.smtp import SmtpConnection

    def lane(n: int) -> None:
        connection = SmtpConnection(
            host="127.0.0.1",
            port=port,
            security="none",
            username=None,
            password=None,
            timeout=30,
            messages_per_connection=10**9,
        )
        for _ in range(n):
            connection.send("a@bench.example", "b@bench.example", payload)
        connection.close()

    threads = [threading.Thread(target=lane, args=(count,)) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(count * connections)


def ceiling_rate(port: int, size: int, count: int, workers: int, connections: int) -> float:
    """Pre-built messages of ``size`` bytes over workers x connections, same client code."""
    body = b"x" * 76 + b"\r\n"
    payload = b"From: a@bench.example\r\nTo: b@bench.example\r\nSubject: ceiling\r\n\r\n"
    payload += body * max(1, (size - len(payload)) // len(body))
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    per_lane = max(1, count // (workers * connections))
    processes = [
        context.Process(target=_push, args=(port, payload, per_lane, connections, out))
        for _ in range(workers)
    ]
    started = time.perf_counter()
    for process in processes:
        process.start()
    sent = sum(out.get() for _ in processes)
    elapsed = time.perf_counter() - started
    for process in processes:
        process.join()
    return sent / elapsed


def naive_rate(count: int) -> float:
    template = REPO / "examples" / "campaigns" / "cloud-security" / "templates" / "email"
    source = (template / "intro.en.mjml").read_text(encoding="utf-8")
    for partial in template.glob("_*.mjml"):
        source = source.replace(f'{{% include "email/{partial.name}" %}}', partial.read_text())
    environment = Environment(autoescape=True)
    compiled = environment.from_string(source)
    context = {
        "brand": {
            "name": "P",
            "legal_name": "P GmbH",
            "postal_address": "Street 1",
            "primary_color": "#123456",
            "logo_url": "",
        },
        "partner": {"name": "P"},
        "campaign": {"key": "k", "name": "n"},
        "vars": {
            "product": "Shield",
            "vendor": "V",
            "demo_minutes": 30,
            "discount": "10%",
            "landing_url": "https://x",
            "checklist_url": "https://x",
        },
        "fields": {
            "headline": "Hi",
            "intro": "Intro",
            "call_to_action": "Book a demo",
            "show_event": False,
            "event_date": None,
            "signature_line": "Sig",
        },
        "locked": {"legal": "Legal", "offer_terms": "Terms"},
        "links": {"unsubscribe": "https://x/u"},
        "touch": {"key": "intro", "day": 1},
        "locale": "en",
    }
    started = time.perf_counter()
    for number in range(count):
        html = mjml2html(compiled.render(contact={"first_name": f"F{number}"}, **context))
        message = EmailMessage(policy=SMTP)
        message["Subject"], message["To"] = "Hi", f"c{number}@x"
        message.set_content("text")
        message.add_alternative(html, subtype="html")
        message.as_bytes()
    return count / (time.perf_counter() - started)


CACHE = Path(tempfile.gettempdir()) / "pc-bench-cache"


def _schema_key() -> str:
    """Changes whenever a migration is added or edited: a reused world must match it."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "core" / "migrations" / "versions").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:10]


class Worlds:
    """Fresh copies of one built world: a SQLite file copied, or a PostgreSQL database
    created from a template database (``CREATE DATABASE ... TEMPLATE``).

    The world is built once per run, or, with ``reuse``, once per (contacts, partners,
    schema) and kept (SQLite: under the temp folder; PostgreSQL: a template database).
    """

    def __init__(self, args: argparse.Namespace, database: str, folder: Path, port: int) -> None:
        self.postgres = database == "postgresql"
        self.server = args.postgres_url.rsplit("/", 1)[0]
        key = f"{args.contacts}c{args.partners}p_{_schema_key()}"
        self.template = f"emailbench_tpl_{key}" if args.reuse else "emailbench_tpl"
        cache = CACHE if args.reuse else folder
        self.file = cache / f"{key}.db"
        exists = self._exists()
        if exists and not args.reuse:
            self._drop(self.template)
        if not (exists and args.reuse):
            started = time.perf_counter()
            if self.postgres:
                self._create(self.template)
                url = f"{self.server}/{self.template}"
                engine, _ = build_world(folder / "world", args.partners, args.contacts, port, url)
                engine.dispose()
            else:
                cache.mkdir(parents=True, exist_ok=True)
                engine, _ = build_world(folder / "world", args.partners, args.contacts, port)
                engine.dispose()
                shutil.move(folder / "world" / "bench.db", self.file)
            print(f"world built in {time.perf_counter() - started:.1f} s", file=sys.stderr)

    def _admin(self):  # type: ignore[no-untyped-def]
        from sqlalchemy import create_engine

        return create_engine(f"{self.server}/postgres", isolation_level="AUTOCOMMIT")

    def _exists(self) -> bool:
        if not self.postgres:
            return self.file.exists()
        from sqlalchemy import text

        admin = self._admin()
        with admin.connect() as connection:
            found = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": self.template}
            ).first()
        admin.dispose()
        return found is not None

    def _create(self, name: str, template: str = "") -> None:
        from sqlalchemy import text

        admin = self._admin()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            suffix = f' TEMPLATE "{template}"' if template else ""
            connection.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
        admin.dispose()

    def _drop(self, name: str) -> None:
        from sqlalchemy import text

        admin = self._admin()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    def fresh(self, folder: Path, name: str) -> str:
        """The URL of a fresh copy of the world."""
        if self.postgres:
            self._create(f"emailbench_{name}", self.template)
            return f"{self.server}/emailbench_{name}"
        folder.mkdir(parents=True)
        shutil.copyfile(self.file, folder / "bench.db")
        return f"sqlite:///{folder / 'bench.db'}"

    def discard(self, folder: Path, name: str) -> None:
        """Remove a copy made by :meth:`fresh` once measured (a SQLite copy's folder with
        its -wal file, which the next round's copy must not meet)."""
        if self.postgres:
            self._drop(f"emailbench_{name}")
        else:
            shutil.rmtree(folder, ignore_errors=True)

    def close(self, reuse: bool) -> None:
        """Drop the PostgreSQL template unless it is kept for the next run."""
        if self.postgres and not reuse:
            self._drop(self.template)


class Row(NamedTuple):
    database: str
    window: int
    workers: int
    run: EngineRun
    ceiling: float  # measured right after, with as many processes and connections
    load: str  # the load average when this measurement ended
    variant: Variant = Variant()
    round: int = 1  # of --repeat


def main() -> None:
    # Keys of its own for the run (there is no default key), inherited by the workers it
    # spawns, unless the environment has them already.
    from partnercast.core.keys import generate_keys
    from partnercast.core.settings import DEFAULT_DELIVERY_WINDOW

    keys = generate_keys()
    os.environ.setdefault("PARTNERCAST_SECRET_KEY", keys.secret_key)
    os.environ.setdefault("PARTNERCAST_ENCRYPTION_KEYS", json.dumps(keys.encryption_keys))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--partners", type=int, default=20)
    parser.add_argument("--connections", type=int, default=2, help="SMTP connections a worker")
    parser.add_argument("--workers", default="1,2", help="worker process counts to measure")
    parser.add_argument(
        "--database",
        choices=("sqlite", "postgresql", "both"),
        default="sqlite",
        help="both: PostgreSQL, then SQLite, in the same run",
    )
    parser.add_argument(
        "--window",
        default=str(DEFAULT_DELIVERY_WINDOW),
        help="delivery windows to measure, e.g. 1,8,32 (messages a connection notes in "
        f"flight at once; the engine's default is {DEFAULT_DELIVERY_WINDOW})",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "PARTNERCAST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="a server the bench may create emailbench_* databases on (the name is ignored)",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep the built world and reuse it next time"
    )
    parser.add_argument(
        "--ahead",
        default="",
        help="windows a connection notes ahead to measure, e.g. 0,1 (default: the engine's)",
    )
    parser.add_argument(
        "--prefetch",
        default="",
        help="batch prefetch to measure, e.g. on,off (default: the engine's, on for "
        "PostgreSQL, off for SQLite)",
    )
    parser.add_argument("--skip-ceiling", action="store_true", help="engine figures only")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds to measure: each round measures every database, window and worker "
        "count once, PostgreSQL and SQLite back to back; the targets are judged on the "
        "median of the rounds (each comparison with SQLite on the median of the ratios of "
        "the same round's pairs)",
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat is at least 1")
    variants = [
        Variant(ahead, prefetch)
        for ahead in ([int(n) for n in args.ahead.split(",")] if args.ahead else [None])
        for prefetch in (
            [{"on": True, "off": False}[w] for w in args.prefetch.split(",")]
            if args.prefetch
            else [None]
        )
    ]
    databases = ["postgresql", "sqlite"] if args.database == "both" else [args.database]
    windows = [int(n) for n in args.window.split(",")]
    counts = [int(n) for n in args.workers.split(",")]
    port = _free_port()
    sink = start_sink(port)
    folder = Path(tempfile.mkdtemp(prefix="pc-bench-"))
    rows: list[Row] = []
    naive = float("nan")
    naives: list[float] = []
    started_load = _load()
    worlds: dict[str, Worlds] = {}
    try:
        size = message_size(folder / "probe")
        for database in databases:
            worlds[database] = Worlds(args, database, folder / database, port)
        for round_number in range(1, args.repeat + 1):
            for window in windows:
                for number, variant in enumerate(variants):
                    for workers in counts:
                        for database in databases:
                            name = f"{database[:2]}_k{window}_v{number}_w{workers}"
                            url = worlds[database].fresh(folder / name, name)
                            around = (one_process(sink.pid, "SMTP sink"),)
                            if database == "postgresql":
                                around += (postgres_of(url.rsplit("/", 1)[1]),)
                            try:
                                run = engine_rate(
                                    url, port, workers, args.connections, window, variant, around
                                )
                            finally:
                                worlds[database].discard(folder / name, name)
                            ceiling = (
                                float("nan")
                                if args.skip_ceiling
                                else ceiling_rate(port, size, 12_000, workers, args.connections)
                            )
                            rows.append(
                                Row(
                                    database,
                                    window,
                                    workers,
                                    run,
                                    ceiling,
                                    _load(),
                                    variant,
                                    round_number,
                                )
                            )
                            print(f"  {_line(rows[-1], naive)}", file=sys.stderr)
            if not args.skip_ceiling:  # CPU-bound: measured each round, like the rest
                naives.append(naive_rate(300))
        if naives:
            naive = statistics.median(naives)
    finally:
        sink.kill()
        for world in worlds.values():
            world.close(args.reuse)
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"{args.contacts:,} contacts, {args.partners} partners; message size: {size:,} bytes; "
        f"{args.connections} SMTP connections per worker; load average at the start "
        f"{started_load}, at the end {_load()}"
    )
    if not args.skip_ceiling:
        each = f" (median of {', '.join(f'{n:,.0f}' for n in naives)})" if len(naives) > 1 else ""
        print(
            f"naive loop: {naive:,.0f} msg/s{each} (Jinja + MJML + EmailMessage per recipient, "
            "no send)"
        )
    for row in rows:
        print(_line(row, naive))
    if not args.skip_ceiling:
        for line in _verdicts(rows, naive):
            print(line)


def _line(row: Row, naive: float) -> str:
    run = row.run
    rate = run.sent / run.seconds
    compared = (
        f"ceiling {row.ceiling:,.0f} msg/s; engine/ceiling {rate / row.ceiling:.0%}; "
        if row.ceiling == row.ceiling  # not NaN
        else ""
    )
    if naive == naive:
        compared += f"engine/naive {rate / naive:.1f}x; "
    per_thousand = 1000 / max(run.sent, 1)
    variant = f", {row.variant.label()}" if row.variant.label() else ""
    return (
        f"round {row.round}: {row.database}, window {row.window}{variant}, "
        f"{row.workers} worker(s): engine "
        f"{run.sent:,} msgs in {run.seconds:.1f} s = {rate:,.0f} msg/s; {compared}"
        f"{run.statements * per_thousand:,.0f} statements and "
        f"{run.commits * per_thousand:,.0f} commits per 1,000 messages; "
        f"worker CPU {run.cpu * 1e6 / max(run.sent, 1):,.0f} us a message"
        f"{_around(run)}; peak RSS {run.rss:,.0f} MB a worker; load {row.load}"
    )


def _around(run: EngineRun) -> str:
    """The CPU a message of the processes beside the workers, and how busy the machine's
    cores were: whether the run was bound by the cores or by waiting."""
    if run.around is None or run.busy is None:
        return ""
    sent = max(run.sent, 1)
    parts = sorted(run.around.items())
    each = "".join(f", {name} {cpu * 1e6 / sent:,.0f} us" for name, cpu in parts)
    cores = os.cpu_count() or 1
    return f"{each}; cores busy {run.busy:.2f} of {cores}"


Measured = tuple[str, int, Variant, int]
"""What a rate is of: database, window, variant, workers."""


def _verdicts(rows: list[Row], naive: float) -> list[str]:
    """The targets of issue 16 for each PostgreSQL window measured, met or not: judged on
    the median of the rounds (one round: its figures). The comparison with SQLite is the
    median of each round's ratio, PostgreSQL against SQLite measured just after it, so
    that a slow minute of the machine weighs on both sides of a ratio."""
    by_round = {
        (r.database, r.window, r.variant, r.workers, r.round): r.run.sent / r.run.seconds
        for r in rows
    }
    keys = list(dict.fromkeys((r.database, r.window, r.variant, r.workers) for r in rows))
    rounds = sorted({r.round for r in rows})

    def rates(key: Measured) -> list[float]:
        return [by_round[(*key, n)] for n in rounds if (*key, n) in by_round]

    def ratios(
        key: tuple[str, int, Variant, int], base: tuple[str, int, Variant, int]
    ) -> list[float]:
        """``key``'s rate over ``base``'s, round by round (the rounds that have both)."""
        return [
            by_round[(*key, n)] / by_round[(*base, n)]
            for n in rounds
            if (*key, n) in by_round and (*base, n) in by_round
        ]

    rate = {key: statistics.median(rates(key)) for key in keys}
    ceiling = {
        key: statistics.median(
            r.ceiling for r in rows if (r.database, r.window, r.variant, r.workers) == key
        )
        for key in keys
    }
    said_rounds = f" (median of {len(rounds)} rounds)" if len(rounds) > 1 else ""
    lines = []
    for key in (k for k in keys if k[0] == "postgresql"):
        database, window, variant, workers = key
        mine = rate[key]
        checks = [
            (f"half the ceiling ({mine / ceiling[key]:.0%})", mine >= ceiling[key] / 2),
            (f"5x naive ({mine / naive:.1f}x)", mine >= 5 * naive),
        ]
        one = (database, window, variant, 1)
        if workers > 1 and one in rate:
            ratio = statistics.median(ratios(key, one))
            checks.append((f"not slower than 1 worker ({ratio:.2f}x)", ratio >= 1))
        # SQLite as the engine runs it (its defaults), else the same variant
        candidates = (("sqlite", window, Variant(), workers), ("sqlite", *key[1:]))
        lite = next((k for k in candidates if k in rate), None)
        if lite is not None:
            pairs = ratios(key, lite)
            ratio = statistics.median(pairs)
            each = ", ".join(f"{p:.2f}" for p in pairs) if len(pairs) > 1 else ""
            shown = f"{ratio:.2f}x" + (f"; rounds {each}" if each else "")
            checks.append((f"at least SQLite's rate ({shown})", ratio >= 1))
        said = "; ".join(f"{what}: {'met' if ok else 'NOT met'}" for what, ok in checks)
        label = f", {variant.label()}" if variant.label() else ""
        lines.append(
            f"targets, postgresql, window {window}{label}, {workers} worker(s){said_rounds}: {said}"
        )
    return lines


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


if __name__ == "__main__":
    main()
