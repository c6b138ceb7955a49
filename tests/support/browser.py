"""Browser tests: Debian's chromium driven by Playwright, an axe-core scan, screenshots at
1280 and 390 px, and the engine's own HTTP server on a free port against the test's
database.

Fixtures (tests/web/conftest.py makes them available to every web test):

* ``browser``: one headless chromium for the session (``executable_path="/usr/bin/chromium"``:
  Playwright's own browser downloads are impossible here);
* ``page``: a fresh browser context (no cookies) and page per test, 1280 x 900;
* ``live_server``: :func:`partnercast.web.app.create_app` for the test's ``engine``, served
  by :class:`~partnercast.web.server.HttpServer` in a thread, its settings pointing email at
  the test's ``sink`` (aiosmtpd) and its public address at itself. ``live_server.url`` is
  the base URL; ``live_server.at(moment)`` fixes every request's ``now`` (request_now) and
  ``live_server.at(None)`` gives the clock back.

Helpers: :func:`assert_accessible` (axe-core: fails on serious or critical violations,
printing each), :func:`screenshots` (1280 and 390 px, full page, and checks that the 390 px
page does not scroll sideways), :func:`serve` (the live server for an engine and settings of
the test's own, e.g. ``world.settings``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from partnercast.channels.email import SmtpSettings
from partnercast.core.settings import Settings, load_settings
from partnercast.demo.smtp_sink import SmtpSink
from partnercast.plugins.web import request_now
from partnercast.web.app import create_app
from partnercast.web.server import HttpServer, ServeOptions, bind

CHROMIUM = "/usr/bin/chromium"
WIDE, NARROW = 1280, 390
BLOCKING_IMPACTS = ("serious", "critical")


@dataclass
class LiveServer:
    url: str
    app: FastAPI
    settings: Settings
    engine: Engine
    _http: HttpServer = field(repr=False)

    def at(self, moment: datetime | None) -> None:
        """Every request's ``now`` is ``moment`` from here on (None: the real clock)."""
        if moment is None:
            self.app.dependency_overrides.pop(request_now, None)
        else:
            self.app.dependency_overrides[request_now] = lambda: moment

    def path(self, path: str) -> str:
        return self.url + path


@contextmanager
def serve(
    engine: Engine, settings: Settings | None = None, **overrides: Any
) -> Iterator[LiveServer]:
    """The engine's application on a free port in a thread, until the block ends.

    ``settings``: the test's own (its public_base_url is replaced by the server's address,
    unless ``public_base_url=`` says otherwise); without, settings for ``engine`` from the
    environment, with ``overrides``."""
    sock = bind("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    overrides.setdefault("public_base_url", base)
    if settings is None:
        settings = load_settings(database_url=str(engine.url), **overrides)
    else:
        settings = settings.model_copy(update={"public_base_url": overrides["public_base_url"]})
    app = create_app(engine, settings)
    http = HttpServer(app, ServeOptions("127.0.0.1", 0), sock=sock)
    thread = threading.Thread(target=http.serve_forever, daemon=True, name="live-server")
    thread.start()
    try:
        yield LiveServer(base, app, settings, engine, http)
    finally:
        http.shutdown()
        http.server_close()
        thread.join(timeout=30)


@pytest.fixture
def live_server(engine: Engine, sink: SmtpSink) -> Iterator[LiveServer]:
    """The engine's web application for the test's database, its mail to ``sink``."""
    with serve(engine, smtp=SmtpSettings(host="127.0.0.1", port=sink.port)) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless chromium for the whole session."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh context (no cookies, 1280 x 900) and its page."""
    context = browser.new_context(viewport={"width": WIDE, "height": 900})
    context.set_default_timeout(30_000)  # a loaded 2-core machine
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def accessibility_violations(
    page: Any, *, impacts: tuple[str, ...] = BLOCKING_IMPACTS
) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now, of the given impacts."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    violations: list[dict[str, Any]] = results.response.get("violations", [])
    return [violation for violation in violations if violation.get("impact") in impacts]


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"{violation['impact']}: {violation['id']}: {violation['help']}")
        for node in violation.get("nodes", [])[:10]:
            target = " ".join(map(str, node.get("target", [])))
            summary = str(node.get("failureSummary", "")).replace("\n", " ")
            lines.append(f"    {target}: {summary}")
    return "\n".join(lines)


def assert_accessible(page: Any) -> None:
    """Fail (printing each) on any serious or critical axe-core violation of the page."""
    violations = accessibility_violations(page)
    if violations:
        report = describe_violations(violations)
        print(f"axe-core on {page.url}:\n{report}")
        raise AssertionError(f"accessibility violations on {page.url}:\n{report}")


def fits_width(page: Any) -> bool:
    """True when the page does not scroll sideways at its current width."""
    return bool(
        page.evaluate(
            "() => document.documentElement.scrollWidth <= window.innerWidth"
            " && document.body.scrollWidth <= window.innerWidth"
        )
    )


def screenshots(page: Any, folder: Path | str, name: str) -> list[Path]:
    """Full-page screenshots at 1280 and 390 px into ``folder`` (``<name>-1280.png``,
    ``<name>-390.png``); fails if the 390 px page scrolls sideways. The page's size is
    given back afterwards."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size or {"width": WIDE, "height": 900}
    written = []
    try:
        for width in (WIDE, NARROW):
            page.set_viewport_size({"width": width, "height": 900 if width == WIDE else 844})
            path = target / f"{name}-{width}.png"
            page.screenshot(path=str(path), full_page=True)
            written.append(path)
            if width == NARROW:
                assert fits_width(page), f"{page.url} scrolls sideways at {NARROW} px ({path})"
    finally:
        page.set_viewport_size(before)
    return written


__all__ = [
    "LiveServer",
    "accessibility_violations",
    "assert_accessible",
    "browser",
    "fits_width",
    "live_server",
    "page",
    "screenshots",
    "serve",
]
