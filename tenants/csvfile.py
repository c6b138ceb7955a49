"""Reading an import CSV: encoding, header checks, rows with their physical line numbers.

Problems with the file itself (missing, not UTF-8, not CSV, wrong header) raise
:class:`UserError` before any row is looked at, so nothing gets written. Problems with one
row are left to the importer, which rejects that row only.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from partnercast.core.errors import UserError


@dataclass(frozen=True)
class CsvRow:
    """One data row: ``line`` is the physical line it starts on (the header is line 1)."""

    line: int
    values: dict[str, str]


@dataclass(frozen=True)
class RowShapeError:
    """A row whose field count does not match the header."""

    line: int
    reason: str


@dataclass(frozen=True)
class CsvFile:
    """A checked CSV file: its normalised column names and its rows."""

    path: Path
    columns: tuple[str, ...]
    rows: tuple[CsvRow | RowShapeError, ...]


def read_text(path: Path) -> str:
    """The file's text: UTF-8, with or without a byte-order mark."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError("no such file", where=str(path)) from None
    except IsADirectoryError:
        raise UserError("is a directory, not a file", where=str(path)) from None
    except OSError as error:
        raise UserError(f"cannot read: {error.strerror}", where=str(path)) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        byte = data[error.start]
        raise UserError(
            f"line {line}: not UTF-8 text (byte 0x{byte:02x}); save the file as CSV UTF-8",
            where=str(path),
        ) from None


def read_csv(path: Path, *, required: tuple[str, ...], optional: tuple[str, ...]) -> CsvFile:
    """Read and check ``path``: every required column present, no unknown column.

    Column names are matched without surrounding spaces and case-insensitively.
    """
    text = read_text(path)
    if not text.strip():
        raise UserError("the file is empty (expected a header line)", where=str(path))
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise UserError(f"line {line}: not a CSV text file (it has NUL bytes)", where=str(path))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
        columns = tuple(name.strip().lower() for name in header)
        _check_header(path, columns, required, optional)
        rows: list[CsvRow | RowShapeError] = []
        previous_end = reader.line_num
        for fields in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if not fields or all(not field.strip() for field in fields):
                continue
            if len(fields) != len(columns):
                reason = f"has {len(fields)} fields, the header has {len(columns)}"
                rows.append(RowShapeError(line, reason))
                continue
            rows.append(CsvRow(line, dict(zip(columns, fields, strict=True))))
    except csv.Error as error:
        raise UserError(
            f"line {reader.line_num}: not a readable CSV file ({error})", where=str(path)
        ) from None
    return CsvFile(path, columns, tuple(rows))


def _check_header(
    path: Path, columns: tuple[str, ...], required: tuple[str, ...], optional: tuple[str, ...]
) -> None:
    problems: list[str] = []
    for position, name in enumerate(columns, start=1):
        if not name:
            problems.append(f"column {position} has no name")
        elif columns.index(name) != position - 1:
            problems.append(f"column {name!r} appears twice")
    known = set(required) | set(optional)
    unknown = [name for name in columns if name and name not in known]
    if unknown:
        listed = ", ".join(repr(name) for name in dict.fromkeys(unknown))
        problems.append(f"unknown columns {listed} (known: {', '.join((*required, *optional))})")
    missing = [name for name in required if name not in columns]
    if missing:
        problems.append(f"missing required columns {', '.join(missing)}")
    if not problems:
        return
    message = "; ".join(problems)
    if len(columns) == 1 and any(sep in columns[0] for sep in ";\t"):
        message += " (the header looks ';' or tab separated: use comma-separated CSV)"
    raise UserError(f"line 1: {message}", where=str(path))
