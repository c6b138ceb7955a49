"""Open-loop readers for bench/tracker_load.py: the requests arrive at a fixed rate, each from
a client of its own, and each latency is counted from the instant its request was due.

wrk's closed loop (``-c`` clients, each sending its next request only once the last was
answered) measures how many requests a second the server can take, but not what a reader
waits in a click storm: there, thousands of distinct mail clients each make one to three
requests, and a slow answer does not hold the next reader back. A closed loop also hides
its own slow moments (coordinated omission): while the server stalls, the clients send
nothing, so the stall counts once instead of for every reader who would have arrived.

Here request ``i`` is due at ``start + i / rate`` (the plan's order, as wrk replays it),
opens its own connection (``Connection: close``: one mail client, one request), and its
latency runs from when it was due to when its answer's last byte arrived; if this process
is late in sending it (its own event loop busy), the delay counts against the server,
and the report says how late this process was in starting them (``send_lag``: its own
lateness, not the wait for a free slot below) so that a slow generator is visible and
not mistaken for a slow server. At most :data:`IN_FLIGHT` requests are open
at once (the server's connection cap is 2,048 a process): a request due while that many
wait is sent when one finishes, its latency still counted from when it was due.

    python bench/tracker_openloop.py URL PLAN RATE   # PLAN: lines "METHOD PATH USER-AGENT"
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

IN_FLIGHT = 1500


@dataclass
class OpenLoopRun:
    rate: float  # the arrival rate asked for, requests a second
    requests: int
    answered_rate: float  # answers a second, first due to last answered
    p50: float  # ms from due to answered
    p99: float
    worst: float
    errors: int
    send_lag_p99: float  # ms from due to sent: the generator's own lateness
    first_errors: list[str] = field(default_factory=list)
    cpu_ms: float = 0.0  # the server's CPU time per request (filled in by the caller)


def run(base: str, requests: list[tuple[str, str, str]], rate: float) -> OpenLoopRun:
    """``requests`` (method, path, user agent) sent to ``base`` at ``rate`` a second."""
    _raise_open_files(IN_FLIGHT + 64)
    try:
        import uvloop

        return uvloop.run(_run(base, requests, rate))
    except ImportError:
        return asyncio.run(_run(base, requests, rate))


async def _run(base: str, requests: list[tuple[str, str, str]], rate: float) -> OpenLoopRun:
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    raw = [
        (
            f"{method} {path} HTTP/1.1\r\nHost: {url.netloc}\r\nUser-Agent: {agent}\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        for method, path, agent in requests
    ]
    loop = asyncio.get_running_loop()
    clock = time.perf_counter  # uvloop's loop.time() moves in whole milliseconds
    slots = asyncio.Semaphore(IN_FLIGHT)
    latencies: list[float] = []
    lags: list[float] = []
    errors: list[str] = []
    last_done = 0.0

    async def one(request: bytes, due: float, head_only: bool) -> None:
        nonlocal last_done
        async with slots:
            try:
                reader, writer = await asyncio.open_connection(host, port)
                try:
                    writer.write(request)
                    head = await reader.readuntil(b"\r\n\r\n")
                    status = int(head[9:12])
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line[:15].lower() == b"content-length:":
                            length = int(line[15:])
                    if length and not head_only:
                        await reader.readexactly(length)
                    done = clock()
                finally:
                    writer.close()
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                errors.append(f"{type(error).__name__}: {error}")
                return
        if status not in (200, 302):
            errors.append(f"status {status}")
            return
        latencies.append(done - due)
        last_done = max(last_done, done)

    tasks = []
    start = clock() + 0.1
    for i, request in enumerate(raw):
        due = start + i / rate
        wait = due - clock()
        if wait > 0:
            await asyncio.sleep(wait)
        lags.append(clock() - due)  # this process's own lateness, before any wait for a slot
        tasks.append(loop.create_task(one(request, due, requests[i][0] == "HEAD")))
    await asyncio.gather(*tasks)
    ordered = sorted(latencies) or [0.0]
    lag = sorted(lags) or [0.0]
    return OpenLoopRun(
        rate=rate,
        requests=len(raw),
        answered_rate=len(latencies) / max(last_done - start, 1e-9),
        p50=statistics.median(ordered) * 1000,
        p99=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        worst=ordered[-1] * 1000,
        errors=len(errors),
        send_lag_p99=lag[min(len(lag) - 1, int(len(lag) * 0.99))] * 1000,
        first_errors=errors[:3],
    )


def _raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, ceiling), hard))


def main() -> None:
    base, plan, rate = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with open(plan) as lines:
        requests = [tuple(line.rstrip("\n").split(" ", 2)) for line in lines]
    began = time.monotonic()
    result = run(base, requests, rate)  # type: ignore[arg-type]
    print(json.dumps(asdict(result) | {"wall": time.monotonic() - began}))


if __name__ == "__main__":
    main()
