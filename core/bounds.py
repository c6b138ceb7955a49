"""The bounds of the numbers and instants the engine accepts, in one place.

Every way in (CSV imports, the CRM webhook, command-line options, and the API to come)
checks amounts, instants and ids against these bounds, so that nothing it stores can
overflow the database, a date computation or a sum: a deal value of 1e308 is refused
where it is typed, instead of two of them summing to infinity in a report.

- An **amount** (a deal value, spend, an ad's cost) is a finite number from 0 to
  :data:`MAX_AMOUNT`; spend, which ROI divides by, is at least :data:`MIN_SPEND`.
- An **instant** lies from :data:`EARLIEST` to :data:`LATEST`: far enough from year 1
  and year 9999 that adding a cycle, a window or a link's lifetime never overflows.
- An **id** or count stored in an integer column is at most :data:`MAX_DB_INT` (the
  largest PostgreSQL ``integer``).

The ``check_*`` functions raise :class:`~partnercast.core.errors.UserError` naming what and
where; :data:`Amount`, :data:`Spend`, :data:`Instant` and :data:`DbInt` are the same
bounds as pydantic types. :func:`finite` is the guard of what reports and metrics show.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, Field

from partnercast.core.errors import UserError

MAX_AMOUNT = 1_000_000_000_000.0
"""The largest amount accepted (a trillion in any currency)."""
MIN_SPEND = 0.01
"""The smallest spend (one cent): ROI divides by it."""
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest instant accepted."""
LATEST = datetime(2199, 12, 31, 23, 59, 59, tzinfo=UTC)
"""The latest instant accepted."""
MAX_DB_INT = 2**31 - 1
"""The largest integer an id or count column holds (PostgreSQL ``integer``)."""
MAX_FLOAT_OPTION = MAX_AMOUNT
"""The largest magnitude a number given on the command line may have."""


def amount_problem(value: float, *, minimum: float = 0.0) -> str | None:
    """Why ``value`` is not an acceptable amount, or None when it is."""
    if not math.isfinite(value):
        return "must be a finite number"
    if value < minimum:
        return "must be zero or more" if minimum == 0 else f"must be at least {minimum:g}"
    if value > MAX_AMOUNT:
        return f"must be at most {MAX_AMOUNT:,.0f}"
    return None


def check_amount(value: float, *, where: str, minimum: float = 0.0) -> float:
    """``value`` as a float, when it is an acceptable amount; else a UserError."""
    problem = amount_problem(float(value), minimum=minimum)
    if problem:
        raise UserError(f"{value!r} {problem}", where=where)
    return float(value)


def parse_amount(text: str, *, label: str, minimum: float = 0.0) -> float:
    """An amount typed as text (thousands separators allowed); ValueError naming it."""
    try:
        value = float(text.replace(",", "").strip())
    except ValueError:
        raise ValueError(f"{label} {text!r} is not a number") from None
    problem = amount_problem(value, minimum=minimum)
    if problem:
        raise ValueError(f"{label} {text!r} {problem}")
    return value


def instant_problem(value: datetime) -> str | None:
    """Why ``value`` is not an acceptable instant, or None when it is."""
    try:
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        if EARLIEST <= moment <= LATEST:
            return None
    except OverflowError:  # an offset that moves it past year 1 or 9999
        pass
    return f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}"


def check_instant(value: datetime, *, where: str) -> datetime:
    """``value``, when it lies within the accepted years; else a UserError."""
    problem = instant_problem(value)
    if problem:
        raise UserError(f"{value.isoformat()} {problem}", where=where)
    return value


def parse_instant(text: str) -> datetime:
    """An ISO date or datetime (UTC when it has no offset) within the accepted years;
    ValueError with the reason otherwise."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date or datetime") from None
    problem = instant_problem(value)
    if problem:
        raise ValueError(f"{text!r} {problem}")
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def db_int_problem(value: int, *, minimum: int = 1) -> str | None:
    """Why ``value`` cannot be an id (or a count) in the database, or None."""
    if value < minimum:
        return f"must be at least {minimum}"
    if value > MAX_DB_INT:
        return f"must be at most {MAX_DB_INT}"
    return None


def check_db_int(value: int, *, where: str, minimum: int = 1) -> int:
    """``value``, when an integer column holds it; else a UserError."""
    problem = db_int_problem(value, minimum=minimum)
    if problem:
        raise UserError(f"{value} {problem}", where=where)
    return value


def finite(value: float | None) -> float | None:
    """``value``, or None when it is not a finite number: what a report shows as "n/a"
    instead of inf or NaN."""
    return value if value is not None and math.isfinite(value) else None


def _amount(value: float) -> float:
    problem = amount_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _spend(value: float) -> float:
    problem = amount_problem(value, minimum=MIN_SPEND)
    if problem:
        raise ValueError(problem)
    return value


def _instant(value: datetime) -> datetime:
    problem = instant_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Amount = Annotated[float, AfterValidator(_amount)]
"""A deal value or cost: finite, from 0 to :data:`MAX_AMOUNT`."""
Spend = Annotated[float, AfterValidator(_spend)]
"""An investment: finite, from :data:`MIN_SPEND` to :data:`MAX_AMOUNT`."""
Instant = Annotated[datetime, AfterValidator(_instant)]
"""An instant from :data:`EARLIEST` to :data:`LATEST`."""
DbInt = Annotated[int, Field(ge=1, le=MAX_DB_INT)]
"""An id: from 1 to :data:`MAX_DB_INT`."""
