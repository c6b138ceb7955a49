"""Moves the clock of every Python process the tests start, when the suite runs shifted.

tests/conftest.py puts this folder on PYTHONPATH when PARTNERCAST_TEST_CLOCK_SHIFT is set,
and Python imports ``sitecustomize`` at start-up: the CLI and worker processes the tests
spawn then read the same moved clock as the test process, the real time plus the same
number of days (time-machine moves the wall clock only; monotonic time, sleeps and waits
are left alone). The variable it reads has no PARTNERCAST_ prefix: tests that start
workers with a clean PARTNERCAST_* environment keep it.
"""

import os

if os.environ.get("TEST_CLOCK_SHIFT_DAYS"):
    import time
    from datetime import UTC, datetime, timedelta

    import time_machine

    days = int(os.environ["TEST_CLOCK_SHIFT_DAYS"])
    time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True).start()
    # A ticking traveller starts its clock at its first reading, not at start(): read it
    # now, or the process's clock lags by however long its imports take until then, and
    # processes that share a rate-limit bucket disagree about the time by that much.
    time.time_ns()
