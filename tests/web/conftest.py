"""The browser fixtures (chromium, a page, the engine's live server) for every web test:
see tests/support/browser.py."""

from support.browser import browser, live_server, page

__all__ = ["browser", "live_server", "page"]
