"""Serving the application with uvicorn: in this process (``partnercast serve``, tests, the
demo) or in several worker processes (``partnercast serve --workers N``).

The listening socket is bound first, here, so that a taken port is one clear error before
anything starts, and port 0 picks a free port that :attr:`HttpServer.server_port` names.

Limits: at most :data:`LIMIT_CONCURRENCY` connections and requests at once per process
(more get 503 at once instead of queueing without bound: route functions run on a thread
pool of 40 and the database pool is smaller still; the process's open-file limit is raised
to fit them), an idle keep-alive connection is closed after :data:`TIMEOUT_KEEP_ALIVE`
seconds, and a request's headers and body must arrive within the deadlines and sizes of
:mod:`partnercast.web.limits` (uvicorn has none of its own: a client sending half a
request is otherwise held for ever, and counts against the cap). Idle connections cost a
few kilobytes and no thread, so the cap is set well above what slow clients can hold
within those deadlines. Behind a reverse proxy, ``proxy_headers``
takes the client address (and scheme) from ``X-Forwarded-For``/``X-Forwarded-Proto``, but
only when the connection comes from one of ``forwarded_allow_ips``: anyone else could
otherwise pick the address the lead form's rate limit counts.
"""

from __future__ import annotations

import resource
import socket
import sys
import threading
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from partnercast.web.limits import LimitedHttpProtocol
from partnercast.web.tracking import TrackerFront

LIMIT_CONCURRENCY = 2048
TIMEOUT_KEEP_ALIVE = 5
TIMEOUT_GRACEFUL_SHUTDOWN = 10
APP_FACTORY = "partnercast.web.app:served_from_settings"


@dataclass(frozen=True)
class ServeOptions:
    """How ``partnercast serve`` runs uvicorn."""

    host: str = "127.0.0.1"
    port: int = 8025
    workers: int = 1
    proxy_headers: bool = False
    forwarded_allow_ips: str = "127.0.0.1"


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (OSError when the port is taken or not ours to take)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)  # uvicorn's worker processes serve the same socket
    return sock


def config(app: FastAPI | str, options: ServeOptions) -> uvicorn.Config:
    _open_files_for(LIMIT_CONCURRENCY)
    return uvicorn.Config(
        TrackerFront(app) if isinstance(app, FastAPI) else app,
        factory=isinstance(app, str),
        http=LimitedHttpProtocol,
        workers=options.workers,
        proxy_headers=options.proxy_headers,
        forwarded_allow_ips=options.forwarded_allow_ips,
        limit_concurrency=LIMIT_CONCURRENCY,
        timeout_keep_alive=TIMEOUT_KEEP_ALIVE,
        timeout_graceful_shutdown=TIMEOUT_GRACEFUL_SHUTDOWN,
        server_header=False,
        access_log=False,
        log_config=None,  # the engine's logging, not uvicorn's own configuration
        lifespan="on",  # the application's lifespan stops its tracker's writer
    )


def _open_files_for(connections: int) -> None:
    """Raise this process's soft open-file limit (often 1,024) towards the hard one, so that
    the connection cap, not EMFILE on accept, is what stops a crowd."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 256  # the database, the logs, the spool
    if soft != resource.RLIM_INFINITY and soft < wanted:
        ceiling = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, ceiling), hard))


class HttpServer:
    """The application on a socket bound at construction, served by :meth:`serve_forever`
    until :meth:`shutdown` (from another thread) or a signal (in the main thread)."""

    def __init__(
        self, app: FastAPI, options: ServeOptions, *, sock: socket.socket | None = None
    ) -> None:
        self.socket = sock or bind(options.host, options.port)
        self.server = uvicorn.Server(config(app, options))
        self._stopped = threading.Event()
        self._started = threading.Event()

    @property
    def server_port(self) -> int:
        port: int = self.socket.getsockname()[1]
        return port

    def serve_forever(self) -> None:
        self._started.set()
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop serving (open requests finish first) and wait until it has stopped."""
        self.server.should_exit = True
        if self._started.is_set():
            self._stopped.wait(TIMEOUT_GRACEFUL_SHUTDOWN + 5)

    def server_close(self) -> None:
        self.socket.close()


SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits for it (Python's default: 5 ms).
A serving process has two busy threads, the event loop answering requests and the
tracker's writer recording hits: at 5 ms every answer that comes due while the writer
builds a batch waits up to 5 ms for the loop's next turn, and at 200 clients those waits
are most of the tail latency (bench/tracker_load.py, docs/performance.md)."""


def settle_serving_process() -> None:
    """What a process that will serve until stopped does once the application is built,
    just before it serves: the GIL handed over every millisecond rather than every five,
    and start-up's objects kept out of the garbage collector's full passes (as
    ``partnercast worker`` does, :func:`~partnercast.core.worker.settle_heap`). Never
    called in a process that serves for a while and goes on (tests, the demo): both are
    settings of the whole process."""
    from partnercast.core.worker import settle_heap

    sys.setswitchinterval(SWITCH_INTERVAL)
    settle_heap()


def serve_workers(options: ServeOptions, sock: socket.socket) -> None:
    """Serve with ``options.workers`` processes, each building the application from the
    settings (uvicorn's supervisor restarts a worker that dies; SIGTERM stops them all)."""
    from uvicorn.supervisors import Multiprocess

    Multiprocess(config(APP_FACTORY, options), sockets=[sock]).run()
