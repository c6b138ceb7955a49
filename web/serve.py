"""``partnercast serve``: the application for the configured database, served by uvicorn
until SIGTERM or Ctrl+C, then stopped cleanly (open requests finish, nothing printed but
one line).

One process by default; ``workers`` > 1 runs uvicorn's supervisor, whose worker processes
each build the application from the settings and share the one listening socket. The
socket is bound before anything starts: a taken port is one error (OSError) for the CLI
to say in a line.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from partnercast.core.cli import open_engine
from partnercast.core.settings import load_settings
from partnercast.web.app import create_app
from partnercast.web.server import (
    HttpServer,
    ServeOptions,
    bind,
    serve_workers,
    settle_serving_process,
)

__all__ = ["ServeOptions", "serve"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def serve(options: ServeOptions, *, ready: Callable[[int], None]) -> None:
    """Serve until a stop signal; ``ready(port)`` is called once the socket listens."""
    settings = load_settings()
    engine = open_engine(settings)  # an unmigrated database is one error, before binding
    try:
        sock = bind(options.host, options.port)
        try:
            ready(sock.getsockname()[1])
            with _stop_quietly():
                if options.workers > 1:
                    engine.dispose()  # each worker process opens its own
                    serve_workers(options, sock)
                else:
                    app = create_app(engine, settings)
                    server = HttpServer(app, options, sock=sock)
                    settle_serving_process()
                    server.serve_forever()
        finally:
            sock.close()
    finally:
        engine.dispose()


@contextmanager
def _stop_quietly() -> Iterator[None]:
    """uvicorn handles SIGINT/SIGTERM (a graceful stop), then raises the signal again for
    the handler it replaced: let that be a no-op, so a stop is an exit, not a traceback."""
    previous = {sig: signal.signal(sig, lambda number, frame: None) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
