"""Read back what partnercast.core.cli_tables prints: the rows of a table, by its title.

A table is its title line (``title``, or ``title (1/2)`` for each part of a table split to
fit the width), header lines, a rule marking each column's extent (``─── ──────``), then
rows until a blank line or a line with text between the columns. Cells wrapped onto more
lines are joined back (a line with no key, or with only a key, continues the row above);
the parts of a split table are joined by row. ASCII text only: the
columns are found by character position.
"""

from __future__ import annotations

import re

from rich.cells import cell_len

PAD = "\x00"  # the second cell of a wide character


def table(stdout: str, title: str) -> list[dict[str, str]]:
    """The rows of the table titled ``title``, as {header: cell}."""
    lines = [_by_cell(line) for line in stdout.splitlines()]
    pattern = re.compile(re.escape(title) + r"( \(\d+/\d+\))?")
    rows: list[dict[str, str]] | None = None
    for at, line in enumerate(lines):
        if pattern.fullmatch(line.strip()):
            part = _part(lines, at + 1)
            if rows is None:
                rows = part
            else:
                assert len(part) == len(rows), (title, part, rows)
                for row, more in zip(rows, part, strict=True):
                    row.update(more)
    if rows is None:
        raise AssertionError(f"no table {title!r} in:\n{stdout}")
    return rows


def _part(lines: list[str], start: int) -> list[dict[str, str]]:
    at = start
    while not re.fullmatch(r"[─ ]*─[─ ]*", lines[at].rstrip()):
        at += 1
    spans = [(m.start(), m.end()) for m in re.finditer("─+", lines[at])]
    headers = [
        " ".join(w for line in lines[start:at] if (w := line[a:b].strip())) for a, b in spans
    ]
    gaps = [(spans[n][1], spans[n + 1][0]) for n in range(len(spans) - 1)]
    rows: list[list[str]] = []
    for line in lines[at + 1 :]:
        if not line.strip() or any(line[a:b].strip() for a, b in gaps):
            break
        if len(line.rstrip()) > spans[-1][1]:
            break
        cells = [line[a:b].replace(PAD, "").strip() for a, b in spans]
        if rows and (not cells[0] or not any(cells[1:])):  # a row's cells, wrapped
            rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
    return [dict(zip(headers, cells, strict=True)) for cells in rows]


def _by_cell(line: str) -> str:
    """``line`` with one character per terminal cell: a wide character is followed by PAD."""
    return "".join(char + PAD * (cell_len(char) - 1) for char in line)
