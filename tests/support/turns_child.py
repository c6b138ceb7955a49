"""A process for tests/core/test_write_turns.py (spawned children import it by name)."""

from __future__ import annotations

import time
from pathlib import Path

from partnercast.core.journal import write_turns


def bump(database: str, counter: str, times: int) -> None:
    """Read, wait, write: loses updates unless each round holds the turn."""
    path = Path(counter)
    for _ in range(times):
        with write_turns(database):
            value = int(path.read_text())
            time.sleep(0.001)
            path.write_text(str(value + 1))
