"""Fixtures for the tenant-side tests: CSV and YAML files written into tmp_path."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest

# The smallest valid partner row; tests override or add columns.
PARTNER_BASE = {
    "external_id": "P1",
    "name": "Nordlicht Systemhaus",
    "legal_name": "Nordlicht Systemhaus GmbH",
    "postal_address": "Speicherstadt 12, 20457 Hamburg",
}

WriteCsv = Callable[..., Path]


@pytest.fixture
def write_csv(tmp_path: Path) -> WriteCsv:
    """Write rows (dicts) as a CSV file; the header is the union of their keys, in order."""

    def write(name: str, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
        header = columns or list(dict.fromkeys(key for row in rows for key in row))
        path = tmp_path / name
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=header, restval="")
            writer.writeheader()
            writer.writerows(rows)
        return path

    return write


@pytest.fixture
def write_text(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a text file verbatim (UTF-8)."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def partner_row() -> Callable[..., dict[str, str]]:
    """A valid partner row with the given columns changed."""

    def make(**changes: str) -> dict[str, str]:
        return {**PARTNER_BASE, **changes}

    return make
