"""The pytest plugin for channel authors, registered under the ``pytest11`` entry point.

Installed with partnercast, it gives any test suite:

- ``conformance_check``: a parametrized fixture, one kit row per test, for any test
  function in a module that defines ``conformance_case = ChannelCase(...)`` (test classes
  subclassing :class:`~partnercast.plugins.testing.ChannelConformance` do the same with
  their ``case`` attribute);
- ``channel_conformance``: a function that runs every row of a case and fails once,
  listing every row that failed (for a quick smoke test).

Importing this module has no side effects; the kit is imported when a test asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "conformance_check" not in metafunc.fixturenames:
        return
    if metafunc.cls is not None and hasattr(metafunc.cls, "case"):
        return  # ChannelConformance parametrizes its own rows
    case = getattr(metafunc.module, "conformance_case", None)
    if case is None:
        raise pytest.UsageError(
            f"{metafunc.module.__name__} asks for conformance_check but defines no "
            "conformance_case = ChannelCase(...)"
        )
    from partnercast.plugins.testing import checks

    rows = checks(case)
    metafunc.parametrize("conformance_check", rows, ids=[row.id for row in rows])


@pytest.fixture
def channel_conformance() -> Callable[[Any], None]:
    """``channel_conformance(case)`` runs every kit row and fails listing all failures."""
    from partnercast.plugins.testing import run_conformance

    def run(case: Any) -> None:
        failures = run_conformance(case)
        if failures:
            listing = "\n".join(f"  {row}: {message}" for row, message in failures.items())
            pytest.fail(f"{len(failures)} conformance rows failed:\n{listing}", pytrace=False)

    return run
