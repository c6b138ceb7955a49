"""Moves the clock of every Python process the tests start, when the suite runs shifted.

tests/conftest.py puts this folder on PYTHONPATH when PARTNERCAST_TEST_CLOCK_SHIFT is set,
and Python imports ``sitecustomize`` at start-up: the CLI and worker processes the tests
spawn then read the same moved clock as the test process (time-machine moves the wall
clock only; monotonic time, sleeps and waits are left alone).
"""

import os

if os.environ.get("PARTNERCAST_TEST_CLOCK_SHIFT_TO"):
    from datetime import UTC, datetime

    import time_machine

    time_machine.travel(
        datetime.fromisoformat(os.environ["PARTNERCAST_TEST_CLOCK_SHIFT_TO"]).astimezone(UTC),
        tick=True,
    ).start()
