"""A real browser renders a served landing page (Debian's chromium, headless)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from support.microsite_site import Site, approve

CHROMIUM = shutil.which("chromium")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_chromium_screenshots_a_served_landing_page(site: Site, tmp_path: Path) -> None:
    approve(site.a, "P001", page_headline="Seen through a real browser")
    shot = tmp_path / "landing.png"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,900",
        site.url("northwind", "P001") + "?lang=en",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert shot.is_file(), f"no screenshot; chromium said:\n{done.stderr[-2000:]}"
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000  # a blank 1200x900 page compresses to a few kB
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 900)
