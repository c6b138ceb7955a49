"""The tracker under the opens and clicks of a large send, with locust as the readers.

    python bench/tracker_load.py [--contacts 30000] [--clients 50,200,500] [--workers 1]
        [--database sqlite|postgresql] [--postgres-url URL] [--compare-with TREE]
        [--generator wrk|locust] [--py-spy FILE] [--open-loop 0.25,0.5,1]

Needs postfix's ``smtp-sink`` (the send) and wrk (``apt-get install wrk``; or locust,
``pip install -e ".[bench]"``, with ``--generator locust``).

1. Builds the world of bench/email_throughput.py (20 partners, ``--contacts`` consenting
   contacts, the sample campaign approved, its first cycle started) and sends the first
   touch with one engine worker to smtp-sink: that is the send to replay, and its rate is
   the engine's own send rate on this database, measured in this run.
2. Plans the readers of that send (seeded): per message, no hit (20%), the pixel once
   (45%) or twice (10%), a click with images blocked (5%), the pixel then a click (15%),
   the pixel then two clicks (5%); and a link scanner's click first on 8% of messages.
   Each request carries the tokens the engine put in that message (the recipient's one
   token, the draft's signed link tokens: core/signing.py, campaigns/tracking_links.py).
3. Starts ``partnercast serve`` on the database (as the README does) and replays the
   plan at each client count, a third of the messages each. wrk (one thread, ``-c``
   clients on keep-alive connections, bench/tracker_wrk.lua) sends every request of the
   level exactly once, from one list in which a message's later hits come thousands of
   requests after its earlier ones (so each is usually answered before the next is sent,
   as one mail client makes them; when an answer takes longer, a click can overtake its
   message's pixel, which the check below allows for and reports). Locust
   (``--generator locust``: headless, FastHttpUser, each reader its message's requests in
   order) is the alternative; it costs the machine several times wrk's CPU per request.
   Prints requests per second, p50 and p99 latency, errors, and checks after each level
   that every hit was counted exactly once: the opened and clicked events, the unique ones
   (Engagement rows), and the funnel rollups (opens, opened, clicks, clicked) equal what
   the plan sent; the opens implied by a click are those of the messages clicked with no
   pixel, plus one for each click that overtook its pixel (printed: the tracker then
   rightly counts the late pixel as a second, not unique, open).
4. The load generator's ceiling, in the same run: the same number of requests at each
   client count against a static answer (bench/tracker_static.py: a bare ASGI application
   served by uvicorn as ``partnercast serve`` serves, with the same number of processes).
5. ``--compare-with TREE``: the same replay at 50 clients (its first ``--old-requests``
   requests) against ``partnercast serve`` (one process) from another package tree (``python
   tools/package_tree.py TREE`` in a git worktree of an older commit), on a copy of the
   same send, for the old figure in the same run.
6. ``--py-spy FILE``: py-spy records the server's processes through the levels (a
   flame graph in FILE; collapsed stacks for a .txt, speedscope for a .json).
7. Beside the closed loop (which it does not replace), an open loop
   (bench/tracker_openloop.py): the requests of one level's plan arrive at a fixed rate,
   ``--open-loop`` times the engine's send rate measured in step 1 (default 0.25, 0.5, 1),
   each on a connection of its own (one mail client, one request), every latency counted
   from when its request was due (no coordinated omission), on a copy of the send made
   before any hit, with the same exactly-once check; and the same against the static
   answer, the generator's own floor. ``--open-loop ''`` skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from process_cpu import ProcessCpu, postgres_of  # bench/, this script's folder
from tracker_openloop import OpenLoopRun

REPO = Path(__file__).resolve().parent.parent
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"
SCANNER = "Mozilla/5.0 (compatible; Barracuda Sentinel)"
TARGETS = (
    "https://vendor.example/cloud",
    "https://vendor.example/trial",
    "https://vendor.example/",
)


def _email_bench() -> Any:
    """bench/email_throughput.py: its world and its engine worker (spawned processes
    import it by name, so bench/ goes on the path)."""
    sys.path.insert(0, str(REPO / "bench"))
    import email_throughput

    return email_throughput


@dataclass
class Expected:
    requests: int = 0
    opened: int = 0  # opened events of pixel hits (not implied)
    implied: int = 0  # opens implied by a message's first genuine click (no pixel before it)
    overtakable: int = 0  # messages with a pixel before a genuine click (see matches)
    clicked: int = 0  # clicked events
    unique_opened: int = 0
    unique_clicked: int = 0

    def add(self, other: Expected) -> Expected:
        return Expected(
            *(a + b for a, b in zip(vars(self).values(), vars(other).values(), strict=True))
        )

    def matches(self, have: Expected) -> bool:
        """Whether ``have`` (what the database counted) is every hit of this plan counted
        once. Each hit is one event, exactly; the unique counts are exact. The implied
        opens are those of the plan's messages clicked with no pixel, plus at most one a
        message whose click overtook its pixel: a reader's pixel and click are thousands
        of requests apart, but when an answer takes longer than that (p99 of seconds at
        500 clients) the click can be recorded first, which the tracker rightly counts
        as an implied open, and the late pixel as a second, not unique, open."""
        exact = ("opened", "clicked", "unique_opened", "unique_clicked")
        return all(getattr(self, name) == getattr(have, name) for name in exact) and (
            self.implied <= have.implied <= self.implied + self.overtakable
        )

    def counted(self) -> str:
        return (
            f"opened {self.opened} (+{self.implied} implied), clicked {self.clicked}, "
            f"unique {self.unique_opened} / {self.unique_clicked}"
        )


def plan_messages(
    messages: list[dict[str, Any]], rng: random.Random
) -> tuple[list[list[list[str]]], Expected]:
    """The requests of each message's reader, and what they must count."""
    plan: list[list[list[str]]] = []
    want = Expected()
    for message in messages:
        pixel = ["GET", f"/t/o/{message['rcpt']}.gif", BROWSER]
        links = [["GET", f"/t/c/{link}/{message['rcpt']}", BROWSER] for link in message["links"]]
        roll = rng.random()
        if roll < 0.20:
            hits: list[list[str]] = []
        elif roll < 0.65:
            hits = [pixel]
        elif roll < 0.75:
            hits = [pixel, pixel]
        elif roll < 0.80:
            hits = [links[0]]
        elif roll < 0.95:
            hits = [pixel, links[rng.randrange(len(links))]]
        else:
            hits = [pixel, links[0], links[1 % len(links)]]
        if rng.random() < 0.08:
            hits = [["GET", links[0][1], SCANNER], *hits]
        if not hits:
            continue
        plan.append(hits)
        pixels = sum(1 for hit in hits if hit[1].startswith("/t/o/"))
        genuine_clicks = sum(1 for hit in hits if hit[1].startswith("/t/c/") and hit[2] == BROWSER)
        want.requests += len(hits)
        want.opened += pixels
        want.implied += 1 if genuine_clicks and not pixels else 0
        want.overtakable += 1 if genuine_clicks and pixels else 0
        want.clicked += sum(1 for hit in hits if hit[1].startswith("/t/c/"))
        want.unique_opened += 1 if pixels or genuine_clicks else 0
        want.unique_clicked += 1 if genuine_clicks else 0
    return plan, want


def the_send(engine: Any, settings: Any) -> list[dict[str, Any]]:
    """Every message of the send, with the tokens the engine put in it."""
    from sqlmodel import select

    from partnercast.campaigns.models import Campaign, Enrollment, Touch
    from partnercast.campaigns.tracking_links import LINK_PURPOSE
    from partnercast.core.models import Delivery, Dispatch
    from partnercast.core.signing import recipient_token, sign
    from partnercast.core.tenancy import system_session

    with system_session(engine, reason="the benchmark reads its own send") as session:
        rows = session.exec(
            select(Delivery, Dispatch, Touch.key, Campaign.key)
            .join(Dispatch, Dispatch.id == Delivery.dispatch_id)
            .join(Touch, Touch.id == Dispatch.touch_id)
            .join(Enrollment, Enrollment.id == Dispatch.enrollment_id)
            .join(Campaign, Campaign.id == Enrollment.campaign_id)
            .where(Delivery.state == "sent")
        ).all()
    links: dict[int, list[str]] = {}
    messages = []
    for delivery, dispatch, touch, campaign in rows:
        sent_at = delivery.sent_at
        if dispatch.id not in links:
            ids = [dispatch.tenant_id, dispatch.partner_id, campaign, touch]
            links[dispatch.id] = [
                sign(settings, LINK_PURPOSE, [*ids, index, target], now=sent_at)
                for index, target in enumerate(TARGETS)
            ]
        token = recipient_token(
            settings,
            tenant_id=dispatch.tenant_id,
            dispatch_id=dispatch.id,
            contact_id=delivery.contact_id,
            now=sent_at,
        )
        messages.append({"rcpt": token, "links": links[dispatch.id]})
    return messages


def counted(engine: Any) -> Expected:
    """What the database counted: events, engagements, rollups (which must agree)."""
    from sqlalchemy import text

    with engine.connect() as connection:

        def one(sql: str) -> int:
            return int(connection.execute(text(sql)).scalar() or 0)

        events = {
            kind: one(
                f"SELECT count(*) FROM event WHERE kind = '{kind}' AND source = 'email-tracking'"
            )
            for kind in ("opened", "clicked")
        }
        implied_data = (
            "data ->> 'implied'"
            if connection.dialect.name == "postgresql"
            else "json_extract(data, '$.implied')"
        )
        implied = one(
            "SELECT count(*) FROM event WHERE kind = 'opened' AND source = 'email-tracking' "
            f"AND {implied_data} IS NOT NULL"
        )
        unique = {
            kind: one(f"SELECT count(*) FROM engagement WHERE kind = '{kind}'")
            for kind in ("opened", "clicked")
        }
        rollups = {
            metric: one(f"SELECT coalesce(sum(count), 0) FROM rollup WHERE metric = '{metric}'")
            for metric in ("opens", "opened", "clicks", "clicked")
        }
    if (rollups["opens"], rollups["clicks"]) != (events["opened"], events["clicked"]) or (
        rollups["opened"],
        rollups["clicked"],
    ) != (unique["opened"], unique["clicked"]):
        print(f"   rollups {rollups} disagree with events {events} / engagements {unique}")
        return Expected(-1, -1, -1, -1, -1, -1, -1)
    return Expected(
        opened=events["opened"] - implied,
        implied=implied,
        clicked=events["clicked"],
        unique_opened=unique["opened"],
        unique_clicked=unique["clicked"],
    )


class Server:
    """``partnercast serve`` in its own process, as the README starts it."""

    def __init__(self, env: dict[str, str], workers: int, log: Path) -> None:
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "partnercast", "serve", "--port", "0"]
            + (["--workers", str(workers)] if workers > 1 else []),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 60
        while not (found := re.search(r"serving on http://127\.0\.0\.1:(\d+)", log.read_text())):
            if self.process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"partnercast serve did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        self.base = f"http://127.0.0.1:{found.group(1)}"
        import requests

        while True:
            try:
                requests.get(f"{self.base}/healthz", timeout=30)
                break
            except requests.ConnectionError:
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


class StaticServer(Server):
    """bench/tracker_static.py, served by uvicorn with the server's number of processes."""

    def __init__(self, workers: int, log: Path) -> None:
        port = _email_bench()._free_port()
        self.log = log.open("w")
        command = [
            sys.executable, "-m", "uvicorn", "--app-dir", str(REPO / "bench"),
            "tracker_static:app", "--port", str(port), "--http", "httptools",
            "--workers", str(workers), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{port}"
        import requests

        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{self.base}/", timeout=30)
                break
            except requests.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"the static server did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)


@dataclass
class Run:
    clients: int
    requests: int
    rps: float
    p50: float
    p99: float
    errors: int
    first_errors: list[str]
    cpu_ms: float = 0.0  # the server's CPU time (all its processes) per request
    database_cpu_ms: float | None = None  # the PostgreSQL server's, for its database
    cores_busy: float | None = None  # the machine's cores busy on average (of all)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its descendants (Linux /proc)."""
    total, ticks = 0.0, os.sysconf("SC_CLK_TCK")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


def _first_requests(plan: list[list[list[str]]], requests: int) -> list[list[list[str]]]:
    """The first messages of ``plan`` that make at least ``requests`` requests."""
    taken, count = [], 0
    for hits in plan:
        if count >= requests:
            break
        taken.append(hits)
        count += len(hits)
    return taken


def replay_costed(
    server: Server,
    plan: list[list[list[str]]],
    clients: int,
    folder: Path,
    generator: str,
    database: str = "",
) -> Run:
    """:func:`replay`, with the server's CPU time per request; with ``database`` (a
    PostgreSQL database's name), that of the PostgreSQL server's processes for it too, and
    how many of the machine's cores were busy (bench/process_cpu.py): on two cores the
    database server shares them with the tracker and the load generator."""
    sampler = ProcessCpu(postgres_of(database)).start() if database else None
    before = cpu_seconds(server.process.pid)
    run = replay(server.base, plan, clients, folder, generator)
    run.cpu_ms = (cpu_seconds(server.process.pid) - before) * 1000 / max(run.requests, 1)
    measured = sampler.stop() if sampler is not None else None
    if measured is not None:
        used, run.cores_busy = measured
        run.database_cpu_ms = used.get("database server", 0.0) * 1000 / max(run.requests, 1)
    return run


def _exactly_once(exact: bool, want: Expected, have: Expected) -> str:
    overtaken = have.implied - want.implied
    if exact:
        return "yes" + (f" ({overtaken} clicks overtook their pixel)" if overtaken else "")
    return f"NO: sent {want.counted()}, counted {have.counted()}"


def _beside(run: Run) -> str:
    """The database server's CPU a request and the cores busy, where measured."""
    if run.database_cpu_ms is None or run.cores_busy is None:
        return ""
    cores = os.cpu_count() or 1
    return (
        f", database server CPU {run.database_cpu_ms:.2f} ms/request, "
        f"cores busy {run.cores_busy:.2f} of {cores}"
    )


def in_send_order(plan: list[list[list[str]]], gap: int) -> list[list[str]]:
    """The plan's requests as one list: hit k of message m at about m + k * gap, so that a
    message's later hits are sent long after its earlier ones were answered."""
    slots = [(m + k * gap, m, k, hit) for m, hits in enumerate(plan) for k, hit in enumerate(hits)]
    slots.sort(key=lambda slot: slot[:3])
    return [hit for *_, hit in slots]


def replay(
    base: str, plan: list[list[list[str]]], clients: int, folder: Path, generator: str
) -> Run:
    """The plan replayed by ``clients`` clients of ``generator`` against ``base``."""
    if generator == "locust":
        return replay_locust(base, plan, clients, folder)
    plan_file = folder / f"plan-{clients}.txt"
    requests = in_send_order(plan, gap=max(2000, 20 * clients))
    plan_file.write_text("".join(f"{method} {path} {agent}\n" for method, path, agent in requests))
    command = [
        shutil.which("wrk") or "wrk", "-t", "1", "-c", str(clients), "-d", "600s",
        "--timeout", "60s", "-s", str(REPO / "bench" / "tracker_wrk.lua"), base,
    ]  # fmt: skip
    env = {**os.environ, "TRACKER_PLAN": str(plan_file)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        sys.exit(f"wrk failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    data = json.loads(lines[-1])
    errors = [f"{data['bad_status']} statuses other than 200/302:{data['statuses']}"] * bool(
        data["bad_status"]
    )
    socket_errors = {k: data[k] for k in ("connect", "read", "write", "timeout") if data[k]}
    if socket_errors:
        errors.append(f"socket errors {socket_errors}")
    if data["answered"] < data["planned"] or data["spare"]:
        errors.append(f"{data['planned'] - data['answered'] + data['spare']} not answered")
    return Run(
        clients,
        data["answered"],
        data["answered"] / data["seconds"] if data["seconds"] > 0 else 0.0,
        data["p50_us"] / 1000,
        data["p99_us"] / 1000,
        data["bad_status"] + sum(socket_errors.values()) + data["spare"],
        errors,
    )


def replay_open(
    server: Server, plan: list[list[list[str]]], rate: float, folder: Path
) -> OpenLoopRun:
    """The plan's requests (in wrk's order) arriving at ``rate`` a second, each on a
    connection of its own (bench/tracker_openloop.py, in a process of its own), with the
    server's CPU time per request."""
    plan_file = folder / f"open-{rate:.0f}.txt"
    requests = in_send_order(plan, gap=2000)
    plan_file.write_text("".join(f"{method} {path} {agent}\n" for method, path, agent in requests))
    before = cpu_seconds(server.process.pid)
    command = [sys.executable, str(REPO / "bench" / "tracker_openloop.py")]
    command += [server.base, str(plan_file), f"{rate:.3f}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        sys.exit(f"the open loop failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    data = json.loads(lines[-1])
    data.pop("wall", None)
    result = OpenLoopRun(**data)
    result.cpu_ms = (cpu_seconds(server.process.pid) - before) * 1000 / max(result.requests, 1)
    return result


def _open_figures(result: OpenLoopRun) -> str:
    return (
        f"answered {result.answered_rate:,.0f} req/s, from due: p50 {result.p50:.1f} ms, "
        f"p99 {result.p99:.1f} ms, worst {result.worst:.0f} ms; {result.errors} errors "
        f"{result.first_errors or ''}; generator late by {result.send_lag_p99:.1f} ms (p99); "
        f"server CPU {result.cpu_ms:.2f} ms/request"
    )


def replay_locust(base: str, plan: list[list[list[str]]], clients: int, folder: Path) -> Run:
    """The plan replayed by ``clients`` locust readers against ``base``."""
    plan_file, result = folder / f"plan-{clients}.json", folder / f"result-{clients}.json"
    plan_file.write_text(json.dumps(plan))
    env = {**os.environ, "TRACKER_PLAN": str(plan_file), "TRACKER_RESULT": str(result)}
    command = [
        shutil.which("locust") or "locust",
        "-f", str(REPO / "bench" / "tracker_locustfile.py"),
        "--headless", "--users", str(clients), "--spawn-rate", str(clients),
        "--host", base, "--run-time", "600s", "--only-summary", "--loglevel", "ERROR",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if not result.exists():
        sys.exit(f"locust failed:\n{done.stderr[-3000:]}")
    data = json.loads(result.read_text())
    samples = data["samples"]
    latencies = sorted(end - began for began, end in samples)
    seconds = max(end for _, end in samples) - min(began for began, _ in samples)
    return Run(
        clients,
        len(samples),
        len(samples) / seconds,
        statistics.median(latencies) * 1000,
        latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        len(data["errors"]),
        data["errors"][:3],
    )


def _send_rate(email: Any, url: str, port: int) -> tuple[int, float]:
    """(messages, seconds) of one engine worker with the engine's defaults, from
    bench/email_throughput.py (whose engine_rate gained a delivery window argument and
    a result object with issue 16's send batching)."""
    import inspect

    window = {"window": 0} if "window" in inspect.signature(email.engine_rate).parameters else {}
    run = email.engine_rate(url, port, 1, 2, **window)
    if hasattr(run, "sent"):
        return int(run.sent), float(run.seconds)
    return int(run[0]), float(run[1])


def _keys_for_the_run() -> None:
    """Keys of the run's own, unless the environment has them (serve needs real ones)."""
    import secrets

    from cryptography.fernet import Fernet

    os.environ.setdefault("PARTNERCAST_SECRET_KEY", secrets.token_hex(32))
    os.environ.setdefault(
        "PARTNERCAST_ENCRYPTION_KEYS", json.dumps([Fernet.generate_key().decode()])
    )


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=30_000)
    parser.add_argument("--partners", type=int, default=20)
    parser.add_argument("--clients", default="50,200,500")
    parser.add_argument("--workers", type=int, default=1, help="partnercast serve --workers")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "PARTNERCAST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="any database on the server; the bench creates and drops its own (trackerbench)",
    )
    parser.add_argument("--generator", choices=("wrk", "locust"), default="wrk")
    parser.add_argument(
        "--old-requests",
        type=int,
        default=4000,
        help="how many of the first level's requests the old servers replay (they are slow)",
    )
    parser.add_argument("--py-spy", type=Path, help="a flame graph of the server, to this file")
    parser.add_argument(
        "--open-loop",
        default="0.25,0.5,1",
        help="open-loop arrival rates, as fractions of the engine's send rate ('' for none)",
    )
    parser.add_argument(
        "--compare-with",
        type=Path,
        action="append",
        default=[],
        help="a package tree of an older commit (repeat for several)",
    )
    args = parser.parse_args()
    levels = [int(n) for n in args.clients.split(",")]
    fractions = [float(f) for f in args.open_loop.split(",") if f.strip()]
    if len(fractions) > len(levels):  # each rate replays one level's plan
        print(f"open loop: only the first {len(levels)} rate(s), one per level's plan")
        fractions = fractions[: len(levels)]

    from sqlalchemy import create_engine

    _keys_for_the_run()
    email = _email_bench()
    folder = Path(tempfile.mkdtemp(prefix="trackerbench-"))
    postgres = args.database == "postgresql"
    server_url = args.postgres_url.rsplit("/", 1)[0]
    url = f"{server_url}/trackerbench" if postgres else f"sqlite:///{folder / 'world' / 'bench.db'}"
    database = "trackerbench" if postgres else ""  # whose server processes are measured

    def compare_url(n: int) -> str:
        return f"{server_url}/trackerbench_old{n}" if postgres else f"sqlite:///{folder}/old{n}.db"

    open_url = f"{server_url}/trackerbench_open" if postgres else f"sqlite:///{folder}/open.db"

    admin = (
        create_engine(f"{server_url}/postgres", isolation_level="AUTOCOMMIT") if postgres else None
    )

    def recreate(name: str, template: str = "") -> None:
        assert admin is not None
        from sqlalchemy import text

        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            connection.execute(
                text(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
            )

    print(
        f"tracker benchmark: {args.database}, {args.contacts} recipients, "
        f"serve --workers {args.workers}"
    )
    print(f"load average at start: {load_average()}")
    port = email._free_port()
    sink = email.start_sink(port)
    try:
        if postgres:
            recreate("trackerbench")
        engine, settings = email.build_world(
            folder / "world", args.partners, args.contacts, port, url
        )
        sent, seconds = _send_rate(email, url, port)
    finally:
        sink.kill()
    send_rate = sent / seconds
    print(f"engine send, 1 worker: {sent} messages in {seconds:.1f} s = {send_rate:,.0f} msg/s")

    messages = the_send(engine, settings)
    rng = random.Random(16)
    rng.shuffle(messages)
    thirds = [messages[n :: len(levels)] for n in range(len(levels))]
    plans = [plan_messages(part, rng) for part in thirds]
    engine.dispose()
    for n, _ in enumerate(args.compare_with):  # a copy of the send, before any hit
        if postgres:
            recreate(f"trackerbench_old{n}", "trackerbench")
        else:
            shutil.copy(folder / "world" / "bench.db", folder / f"old{n}.db")
    if fractions:  # the open loop's copy of the send, before any hit
        if postgres:
            recreate("trackerbench_open", "trackerbench")
        else:
            shutil.copy(folder / "world" / "bench.db", folder / "open.db")

    env = {**os.environ, "PARTNERCAST_DATABASE_URL": url, "COLUMNS": "200"}
    generator = args.generator
    ceilings: dict[int, Run] = {}
    static = StaticServer(args.workers, folder / "static.log")
    try:
        for clients, (_, expected) in zip(levels, plans, strict=True):
            static_plan = [[["GET", f"/static/{n}", BROWSER]] for n in range(expected.requests)]
            ceiling = replay_costed(static, static_plan, clients, folder, generator)
            ceilings[clients] = ceiling
            print(
                f"load generator ceiling, {generator} against a static answer "
                f"({args.workers} process(es)), {clients} clients: {ceiling.rps:,.0f} req/s "
                f"(p50 {ceiling.p50:.1f} ms, p99 {ceiling.p99:.1f} ms, {ceiling.errors} errors, "
                f"server CPU {ceiling.cpu_ms:.3f} ms/request); "
                f"load {load_average()}"
            )
        for fraction, (_, expected) in zip(fractions, plans, strict=False):
            static_plan = [[["GET", f"/static/{n}", BROWSER]] for n in range(expected.requests)]
            floor = replay_open(static, static_plan, fraction * send_rate, folder)
            print(
                f"open loop against the static answer at {floor.rate:,.0f} req/s "
                f"({fraction:g} x the send rate): {_open_figures(floor)}; load {load_average()}"
            )
    finally:
        static.stop()
    runs: list[tuple[Run, bool, Expected, Expected]] = []
    server = Server(env, args.workers, folder / "serve.log")
    spy = None
    if args.py_spy:
        spy_format = {".txt": "raw", ".json": "speedscope"}.get(args.py_spy.suffix, "flamegraph")
        spy_command = [
            "py-spy", "record", "--subprocesses", "--nonblocking", "--gil", "-r", "200",
            "-o", str(args.py_spy), "--pid", str(server.process.pid),
            "--format", spy_format,
        ]  # fmt: skip
        spy = subprocess.Popen(spy_command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        want = Expected()
        for clients, (plan, expected) in zip(levels, plans, strict=True):
            run = replay_costed(server, plan, clients, folder, generator, database)
            want = want.add(expected)
            have = counted(engine)
            exact = want.matches(have)
            runs.append((run, exact, want, have))
            print(
                f"{clients:>4} clients: {run.requests} requests, {run.rps:,.0f} req/s, "
                f"p50 {run.p50:.1f} ms, "
                f"p99 {run.p99:.1f} ms, {run.errors} errors {run.first_errors or ''}, "
                f"server CPU {run.cpu_ms:.2f} ms/request{_beside(run)}; "
                f"counted exactly once: {_exactly_once(exact, want, have)}; "
                f"load {load_average()}"
            )
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        server.stop()
    opens: list[tuple[float, OpenLoopRun, bool]] = []
    if fractions:
        open_env = {**env, "PARTNERCAST_DATABASE_URL": open_url}
        open_server = Server(open_env, args.workers, folder / "serve-open.log")
        open_engine = create_engine(open_url)
        try:
            want = Expected()
            for fraction, (plan, expected) in zip(fractions, plans, strict=False):
                result = replay_open(open_server, plan, fraction * send_rate, folder)
                want = want.add(expected)
                have = counted(open_engine)
                exact = want.matches(have)
                opens.append((fraction, result, exact))
                print(
                    f"open loop, {result.rate:,.0f} req/s arriving ({fraction:g} x the send "
                    f"rate), {result.requests} requests, a connection each: "
                    f"{_open_figures(result)}; counted exactly once: "
                    f"{_exactly_once(exact, want, have)}; "
                    f"load {load_average()}"
                )
        finally:
            open_server.stop()
            open_engine.dispose()
    olds: list[tuple[Path, Run]] = []
    for n, tree in enumerate(args.compare_with):
        old_env = {**env, "PARTNERCAST_DATABASE_URL": compare_url(n), "PYTHONPATH": str(tree)}
        old_server = Server(old_env, 1, folder / f"serve-old{n}.log")  # wsgiref has no workers
        try:
            old_plan = _first_requests(plans[0][0], args.old_requests)
            old = replay_costed(old_server, old_plan, levels[0], folder, generator)
        finally:
            old_server.stop()
        olds.append((tree, old))
        print(
            f"old server ({tree}), {levels[0]} clients: {old.rps:,.0f} req/s, "
            f"p50 {old.p50:.1f} ms, p99 {old.p99:.1f} ms, {old.errors} errors, "
            f"server CPU {old.cpu_ms:.2f} ms/request; "
            f"load {load_average()}"
        )

    print("\nverdict:")
    by_clients = {run.clients: (run, exact) for run, exact, _, _ in runs}
    print(f"  no errors at any level: {all(run.errors == 0 for run, *_ in runs)}")
    print(f"  every hit counted exactly once: {all(exact for _, exact, *_ in runs)}")
    if 200 in by_clients:
        print(
            f"  p99 at 200 clients {by_clients[200][0].p99:.1f} ms < 100 ms: "
            f"{by_clients[200][0].p99 < 100}"
        )
    slowest = min(run.rps for run, *_ in runs)
    print(
        f"  slowest level {slowest:,.0f} req/s >= half the send rate ({send_rate / 2:,.0f}): "
        f"{slowest >= send_rate / 2}"
    )
    first = runs[0][0]
    print(
        f"  {first.clients} clients vs the old wsgiref server's 93 req/s (issue 16): "
        f"{first.rps / 93:.1f}x"
    )
    for tree, old in olds:
        print(
            f"  {first.clients} clients vs {tree} measured now: {first.rps / old.rps:.1f}x the "
            f"requests per second (>= 10x: {first.rps >= 10 * old.rps}), "
            f"{old.cpu_ms / first.cpu_ms:.1f}x less server CPU per request"
        )
    for run, *_ in runs:
        ceiling = ceilings[run.clients]
        print(
            f"  {run.clients} clients: {run.rps:,.0f} req/s is {run.rps / ceiling.rps:.0%} of "
            f"the load generator's ceiling against a static answer ({ceiling.rps:,.0f} req/s)"
        )
    for fraction, result, exact in opens:
        print(
            f"  open loop (not the target's measure) at {fraction:g} x the send rate: "
            f"p99 {result.p99:.1f} ms from when each request was due, "
            f"{result.errors} errors, exactly once: {exact}"
        )
    print(f"  load average at the end: {load_average()}")
    if postgres and admin is not None:
        engine.dispose()
        from sqlalchemy import text

        with admin.connect() as connection:
            names = ["trackerbench", "trackerbench_open"]
            for name in names + [f"trackerbench_old{n}" for n in range(len(olds))]:
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
