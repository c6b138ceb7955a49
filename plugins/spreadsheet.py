"""The one way the engine writes CSV: cells a spreadsheet would run as formulas are neutralised.

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or ``@``
as a formula (``=HYPERLINK("http://evil","x")`` is a link out of the file, older Excel
versions ran commands through DDE), and a leading tab or carriage return hides such a
start. As OWASP recommends (CSV injection), a text cell that starts with one of those
characters, or with their full-width forms, is written with a single quote in front, which
a spreadsheet shows as text and does not display.

Only text is touched: an ``int``, ``float`` or ``Decimal`` is written as the number it is,
so a negative amount in a numeric column stays a number. A number held as text (``"-5"``)
is text and gets the quote, as OWASP asks.

Every CSV the engine writes (reports, exports, files handed to partners, the demo's sample
files) goes through :func:`writer` or :class:`DictWriter`; tests/test_checks.py keeps it so.
Plugins use them too: ``from partnercast.plugins.spreadsheet import writer``.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any

# = + - @, tab, carriage return, and the full-width forms some spreadsheets read as the same.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def safe_cell(value: object) -> object:
    """``value`` as a spreadsheet should see it: text that a spreadsheet would run as a
    formula gets a leading single quote; numbers, booleans and None are left as they are."""
    if isinstance(value, bool | int | float | Decimal) or value is None:
        return value
    text = value if isinstance(value, str) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def safe_row(row: Iterable[object]) -> list[object]:
    return [safe_cell(value) for value in row]


class Writer:
    """A ``csv.writer`` whose every row goes through :func:`safe_cell`."""

    def __init__(self, handle: IO[str], **fmt: Any) -> None:
        self._writer = csv.writer(handle, **fmt)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(handle: IO[str], **fmt: Any) -> Writer:
    """Like ``csv.writer(handle, **fmt)``, with formulas neutralised in every cell."""
    return Writer(handle, **fmt)


if TYPE_CHECKING:
    _DictWriter = csv.DictWriter[str]
else:  # csv.DictWriter is generic to type checkers only
    _DictWriter = csv.DictWriter


class DictWriter(_DictWriter):
    """``csv.DictWriter`` with formulas neutralised in every cell (the header too: it is
    written through :meth:`writerow`)."""

    def __init__(self, handle: IO[str], fieldnames: Collection[str], **kwargs: Any) -> None:
        super().__init__(handle, fieldnames, **kwargs)

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({key: safe_cell(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:
            self.writerow(row)
