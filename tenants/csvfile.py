"""Reading an import file: the CSV or Excel sheet an agency really has, as rows of fields.

What the tools write is read as it is: the encoding detected (a byte-order mark, UTF-8,
else charset-normalizer's guess: Windows-1252, UTF-16 ...), the separator detected (the
standard csv sniffer over the first lines, Excel's ``sep=;`` first line honoured), CRLF,
LF or CR line ends (a multi-line cell's line ends become LF, so that re-saving a file with
other line ends changes nothing), a trailing separator on every line, and ``.xlsx`` sheets
(openpyxl, the first sheet). Headers are matched to fields through a :class:`Schema`'s
aliases ("First Name", "E-mail") and the tenant's remembered ``--map`` choices; other
columns are ignored and named in one note.

Problems with the file itself (missing, not a regular file, over :data:`MAX_IMPORT_BYTES`,
binary, no header, a required field missing)
raise :class:`UserError` before any row is looked at, so nothing gets written. Problems
with one row (the wrong number of fields, a stray quote) are that row's
:class:`RowShapeError`, with its physical line: the importer rejects that row only and
keeps the others.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from partnercast.core.boundedread import read_bounded
from partnercast.core.errors import UserError

SEPARATORS = ",;\t|"
IGNORE = "-"
"""The field a ``--map`` names to ignore a column."""
_SEP_LINE = re.compile(r"sep=(.)\s*", re.IGNORECASE)
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_SNIFF_LINES = 20
MAX_IMPORT_BYTES = 100_000_000
"""The largest CSV or Excel file read (100 MB: hundreds of thousands of rows)."""


def column_key(name: str) -> str:
    """A header's matching key: ``"E-Mail "`` and ``"e_mail"`` are both ``e_mail``."""
    text = unicodedata.normalize("NFKC", name).casefold().strip()
    return re.sub(r"[^0-9a-z]+", "_", _fold_accents(text)).strip("_")


def _fold_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(char for char in decomposed if not unicodedata.combining(char))


@dataclass(frozen=True)
class Schema:
    """The fields of one kind of import and the header names that mean them."""

    required: tuple[str, ...]
    optional: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)
    """Header key (:func:`column_key`) -> field."""
    ignored: Mapping[str, str] = field(default_factory=dict)
    """Header keys known to carry nothing to import -> why (HubSpot's record id)."""
    refuse_unknown: bool = False
    """Whether a column matching no field is an error (else it is ignored, with a note)."""
    alternatives: Mapping[str, str] = field(default_factory=dict)
    """Required field -> an optional field that gives it the other way round (consent ->
    opt_out): the file needs one of the two columns, not both."""

    @property
    def fields(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)

    def field_of(self, key: str, mapping: Mapping[str, str]) -> str | None:
        """The field a header key means (``mapping`` first), or None to ignore it."""
        if key in mapping:
            chosen = mapping[key]
            return None if chosen == IGNORE else chosen
        if key in self.fields:
            return key
        return self.aliases.get(key)


@dataclass(frozen=True)
class CsvRow:
    """One data row: ``line`` is the physical line it starts on (the header's is 1, or 2
    after a ``sep=`` line; for a sheet, the row number); ``cells`` follow the file's
    :attr:`CsvFile.columns`."""

    line: int
    cells: tuple[str, ...]
    columns: tuple[str, ...] = ()

    @property
    def values(self) -> dict[str, str]:
        """The row as field -> cell."""
        return dict(zip(self.columns, self.cells, strict=True))


@dataclass(frozen=True)
class RowShapeError:
    """A row that cannot be read as fields of the header: its line and why."""

    line: int
    reason: str


@dataclass(frozen=True)
class CsvFile:
    """A checked file: the fields its columns carry, its rows, and notes for the user."""

    path: Path
    columns: tuple[str, ...]
    rows: tuple[CsvRow | RowShapeError, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CsvStream:
    """A checked file whose rows are read as they are iterated (a large import never
    holds them all); ``size`` is how many lines or sheet rows follow the header."""

    path: Path
    columns: tuple[str, ...]
    rows: Iterator[CsvRow | RowShapeError]
    notes: tuple[str, ...]
    size: int


@dataclass(frozen=True)
class _Table:
    """Rows of fields as read, before the header is matched: (line, fields) pairs."""

    header: list[str]
    header_line: int
    records: Iterator[tuple[int, list[str] | str]]  # fields, or why the line is unreadable
    described: str  # "windows-1252, ';'-separated": said when not plain UTF-8 CSV
    size: int


def read_text(path: Path, *, limit: int = MAX_IMPORT_BYTES) -> str:
    """A text file's text, in whatever encoding it was saved (see :func:`decode`); a
    regular file of at most ``limit`` bytes, else a UserError naming it."""
    return decode(read_bounded(path, limit), path)[0]


def read_csv(
    path: Path,
    schema: Schema | None = None,
    mapping: Mapping[str, str] | None = None,
    *,
    required: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
) -> CsvFile:
    """Read and check the CSV or .xlsx file ``path`` against ``schema`` (or, without one,
    the ``required`` and ``optional`` fields, no other column allowed).

    ``mapping`` (header key -> field, or ``-`` to ignore) comes before the aliases.
    """
    if schema is None:
        schema = Schema(required, optional, refuse_unknown=True)
    stream = open_csv(path, schema, mapping)
    return CsvFile(path, stream.columns, tuple(stream.rows), stream.notes)


def open_csv(path: Path, schema: Schema, mapping: Mapping[str, str] | None = None) -> CsvStream:
    """:func:`read_csv`, the rows read as they are iterated. The file itself (its
    encoding, its header) is checked here, before the first row."""
    table = _read_table(path)
    positions, columns, notes = _match_header(path, table, schema, dict(mapping or {}))
    if table.described:
        notes.insert(0, f"read as {table.described}")
    rows = _rows(table, positions, columns)
    return CsvStream(path, columns, rows, tuple(notes), table.size)


def _rows(
    table: _Table, positions: list[int], columns: tuple[str, ...]
) -> Iterator[CsvRow | RowShapeError]:
    width = len(table.header)
    trailing_blank = width - len(_rstrip_blank(table.header))
    for line, record in table.records:
        if isinstance(record, str):
            yield RowShapeError(line, record)
            continue
        if not "".join(record).strip():
            continue
        count = len(record)
        if count > width and not "".join(record[width:]).strip():
            record = record[:width]  # a trailing separator on the data lines only
        elif width - trailing_blank <= count < width:
            record = record + [""] * (width - count)  # ... or on the header line only
        if len(record) != width:
            yield RowShapeError(line, f"has {count} fields, the header has {width}")
            continue
        yield CsvRow(line, tuple([record[index] for index in positions]), columns)


def _rstrip_blank(names: list[str]) -> list[str]:
    end = len(names)
    while end and not names[end - 1].strip():
        end -= 1
    return names[:end]


def _match_header(
    path: Path, table: _Table, schema: Schema, mapping: dict[str, str]
) -> tuple[list[int], tuple[str, ...], list[str]]:
    """(positions of the kept columns, their fields, notes), or a UserError."""
    where = str(path)
    line = table.header_line
    positions: list[int] = []
    fields: list[str] = []
    first: dict[str, str] = {}
    ignored: list[str] = []
    problems: list[str] = []
    for position, name in enumerate(table.header):
        key = column_key(name)
        if not key:
            continue  # an unnamed column (a trailing separator): nothing to import
        chosen = schema.field_of(key, mapping)
        if chosen is None:
            if key not in schema.ignored and mapping.get(key) != IGNORE:
                ignored.append(name.strip())
            continue
        if chosen in first:
            problems.append(
                f"columns {first[chosen]!r} and {name.strip()!r} both give {chosen} "
                f'(ignore one with --map "{name.strip()}=-")'
            )
            continue
        first[chosen] = name.strip()
        positions.append(position)
        fields.append(chosen)
    if ignored and schema.refuse_unknown:
        listed = ", ".join(repr(name) for name in dict.fromkeys(ignored))
        problems.append(f"unknown columns {listed} (known: {', '.join(schema.fields)})")
        ignored = []
    for name, other in schema.alternatives.items():
        if name in first and other in first:
            problems.append(
                f"columns {first[name]!r} and {first[other]!r} both give {name} ({other} is "
                f'its opposite; ignore one with --map "{first[other]}=-")'
            )
    missing = [
        name if name not in schema.alternatives else f"{name} (or {schema.alternatives[name]})"
        for name in schema.required
        if name not in first and schema.alternatives.get(name) not in first
    ]
    if missing:
        hint = "" if schema.refuse_unknown else "name yours with --map COLUMN=FIELD; "
        problems.append(
            f"missing required columns {', '.join(missing)} "
            f"({hint}fields: {', '.join(schema.fields)})"
        )
    if problems:
        message = "; ".join(problems)
        if len(table.header) == 1 and table.header[0].strip():
            message += f" (the header has one column: {table.header[0].strip()[:60]!r})"
        raise UserError(f"line {line}: {message}", where=where)
    notes = []
    if ignored:
        listed = ", ".join(repr(name) for name in dict.fromkeys(ignored))
        notes.append(f"ignored columns {listed} (use --map COLUMN=FIELD to import one)")
    return positions, tuple(fields), notes


# --- reading the file ---------------------------------------------------------------------


def _read_table(path: Path) -> _Table:
    data = read_bounded(path, MAX_IMPORT_BYTES)  # not /dev/zero, a pipe, nor 10 GB
    if path.suffix.lower() in _EXCEL_SUFFIXES or data[:4] == b"PK\x03\x04":
        return _read_sheet(path, data)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise UserError("an old Excel (.xls) file: save it as .xlsx or CSV UTF-8", where=str(path))
    text, encoding = decode(data, path)
    del data  # a large file's bytes are not kept beside its text
    return _read_text(path, text, encoding)


def decode(data: bytes, path: Path) -> tuple[str, str]:
    """(text, encoding) of a file's bytes: its byte-order mark, UTF-8, else the encoding
    charset-normalizer finds most likely. Line ends become LF."""
    text: str | None = None
    encoding = ""
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                text, encoding = data[len(bom) :].decode(name), name
            except UnicodeDecodeError:
                raise UserError(
                    f"starts with a {name} byte-order mark but is not {name} text",
                    where=str(path),
                ) from None
            break
    if text is None:
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            import charset_normalizer  # only a file that is not UTF-8 pays for it

            best = charset_normalizer.from_bytes(data).best()
            if best is None:
                raise UserError(
                    "not a text file in any encoding recognised; save it as CSV UTF-8",
                    where=str(path),
                ) from None
            # Code pages that read these bytes alike are one match; of those, Windows-1252
            # is what Western European Excel writes.
            encoding = "cp1252" if "cp1252" in best.could_be_from_charset else best.encoding
            text = data.decode(encoding) if encoding != best.encoding else str(best)
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise UserError(f"line {line}: contains a NUL byte (not a text file)", where=str(path))
    return text.replace("\r\n", "\n").replace("\r", "\n"), encoding


def _read_text(path: Path, text: str, encoding: str) -> _Table:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start == len(lines):
        raise UserError("the file is empty (expected a header line)", where=str(path))
    separator = None
    sep_line = _SEP_LINE.fullmatch(lines[start])
    if sep_line:
        separator = sep_line.group(1)
        start += 1
        if start == len(lines):
            raise UserError("the file has no header line after 'sep='", where=str(path))
    if separator is None:
        separator = _sniff(lines[start : start + _SNIFF_LINES])
    records = _records(lines, start, separator)
    first = next(records, None)
    if first is None or isinstance(first[1], str):
        reason = first[1] if first is not None else "no header"
        raise UserError(f"line {start + 1}: not a readable header ({reason})", where=str(path))
    described = []
    if encoding not in ("utf-8", "ascii"):
        described.append(_encoding_name(encoding))
    if separator != ",":
        described.append(f"{_separator_name(separator)}-separated")
    size = len(lines) - first[0]
    return _Table(first[1], first[0], records, ", ".join(described), size)


def _encoding_name(encoding: str) -> str:
    return {"cp1252": "Windows-1252", "utf_16": "UTF-16"}.get(encoding, encoding)


def _separator_name(separator: str) -> str:
    return {"\t": "tab", ";": "';'", "|": "'|'"}.get(separator, repr(separator))


def _sniff(lines: list[str]) -> str:
    """The separator of the lines: the csv sniffer's, if the header line has it; else the
    candidate the header line has most of (a comma when it has none)."""
    header = lines[0]
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines) + "\n", delimiters=SEPARATORS)
    except csv.Error:
        pass
    else:
        if dialect.delimiter in header:
            return dialect.delimiter
    counts = {candidate: _unquoted(header).count(candidate) for candidate in SEPARATORS}
    best = max(counts, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


def _unquoted(line: str) -> str:
    return re.sub(r'"[^"]*"', "", line)


def _records(lines: list[str], start: int, separator: str) -> Iterator[tuple[int, list[str] | str]]:
    """(line, fields) for each record from ``lines[start]`` on (the header first), or
    (line, reason) for a line that cannot be read.

    A record that opens a quote and never closes it properly (a stray quote) would swallow
    the lines after it: it is reported on its first line, and reading resumes on the next.
    """
    position = start
    width = 0
    while position < len(lines):
        reader = csv.reader(
            (line + "\n" for line in itertools.islice(lines, position, None)),
            delimiter=separator,
            strict=False,
        )
        consumed = 0
        try:
            for fields in reader:
                line = position + consumed + 1
                span = reader.line_num - consumed
                consumed = reader.line_num
                width = width or len(fields)
                if span > 1 and _swallowed(fields, width, separator):
                    yield line, 'a quote (") is opened and not closed on this line'
                    position = line  # on with the next physical line
                    break
                yield line, fields
            else:
                return
        except csv.Error as error:
            line = position + consumed + 1
            yield line, f"not readable as CSV ({error}); check its quotes"
            position = line


def _swallowed(fields: list[str], width: int, separator: str) -> bool:
    """Whether a record read over several lines swallowed them through a stray quote: it
    has the wrong number of fields, or a cell's later line holds half a row's separators
    or more (a postal address's "Hamburg, Germany" does not, in a file of four columns)."""
    if len(fields) != width:
        return True
    threshold = max(1, (width - 1) // 2)
    return width > 1 and any(
        part.count(separator) >= threshold
        for cell in fields
        if "\n" in cell
        for part in cell.split("\n")[1:]
    )


# --- Excel ----------------------------------------------------------------------------------


def _read_sheet(path: Path, data: bytes) -> _Table:
    """The first sheet of an .xlsx workbook, cells as text."""
    from openpyxl import load_workbook  # only an Excel import pays for importing it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as error:
        raise UserError(f"not a readable .xlsx workbook ({error})", where=str(path)) from None
    sheet = workbook.worksheets[0]
    rows = (
        (number, [_sheet_cell(value) for value in values])
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1)
    )
    for number, header in rows:
        if any(cell.strip() for cell in header):
            records: Iterator[tuple[int, list[str] | str]] = _closing(rows, workbook)
            size = max(0, (sheet.max_row or 0) - number)
            return _Table(_rstrip_blank(header), number, records, "an Excel sheet", size)
    workbook.close()
    raise UserError("the sheet is empty (expected a header row)", where=str(path))


def _closing(
    rows: Iterator[tuple[int, list[str]]], workbook: Any
) -> Iterator[tuple[int, list[str] | str]]:
    try:
        yield from rows
    finally:
        workbook.close()


def _sheet_cell(value: object) -> str:
    """A cell as the text a CSV export would have: whole numbers without ``.0``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value).replace("\r\n", "\n").replace("\r", "\n")
