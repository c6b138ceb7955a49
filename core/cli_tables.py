"""Tables that fit the terminal: cells wrap at word boundaries, the key column never goes.

Rich left to itself squeezes a table into 80 columns by cutting: headers and labels end in
"…", a partner column shrinks to nothing, a campaign key folds in the middle of a word.
:func:`print_table` lays a table out from what its columns hold instead:

- the **key** column (what a row is about: a partner, a campaign, a channel) is repeated
  in every part of the table and wraps at word boundaries once wider than
  :data:`KEY_WIDTH`;
- **number** and **word** columns (counts, rates, dates, ids, campaign keys) are never
  wrapped or cut; their headers wrap at word boundaries;
- **text** columns (what a task is about, why) wrap at word boundaries and take the room
  that is left.

When the columns do not fit side by side, the table is printed in parts, each with the key
column and as many of the others as fit (``title (1/2)``, ``title (2/2)``). No vertical
rules: two spaces between columns, a rule under the header marks where each column starts,
a blank line ends the table.

Above :data:`PLAIN_ABOVE` rows the same layout is written as plain text (Rich lays out
a thousand rows in seconds).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich.box import Box
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

Kind = Literal["key", "number", "word", "text"]
Cell = str | Text

KEY_WIDTH = 24
"""A key column wider than this wraps at word boundaries (never narrower than its longest
word)."""
TEXT_WIDTH = 16
"""The narrowest a text column is laid out before the table is split into parts."""
GAP = 2
"""Spaces between two columns."""
PLAIN_ABOVE = 60
"""Above this many rows a table is written as plain text."""

# No edges and no vertical rules; the rule under the header has a gap between columns.
RULED = Box("    \n    \n ─  \n    \n    \n    \n    \n    \n")


@dataclass(frozen=True)
class Column:
    header: str
    kind: Kind = "number"


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _longest_word(texts: Sequence[str]) -> int:
    return max((cell_len(word) for text in texts for word in text.split()), default=0)


def column_width(column: Column, cells: Sequence[Cell]) -> int:
    """How wide ``column`` is laid out: numbers and words whole, headers wrapped at word
    boundaries, key and text columns at most :data:`KEY_WIDTH` / :data:`TEXT_WIDTH` unless
    a single word is longer."""
    texts = [_plain(cell) for cell in cells]
    natural = max((cell_len(line) for text in texts for line in text.splitlines()), default=0)
    header = _longest_word([column.header])
    if column.kind in ("number", "word"):
        return max(natural, header, 1)
    cap = KEY_WIDTH if column.kind == "key" else TEXT_WIDTH
    return max(header, _longest_word(texts), min(natural, cap), 1)


def parts(key_width: int, widths: Sequence[int], width: int) -> list[list[int]]:
    """The other columns' indexes, in order, packed into as few parts as fit ``width``
    beside the key column (a column too wide for any part gets a part of its own)."""
    packed: list[list[int]] = []
    current: list[int] = []
    used = key_width
    for index, column_width in enumerate(widths):
        if current and used + GAP + column_width > width:
            packed.append(current)
            current, used = [], key_width
        current.append(index)
        used += GAP + column_width
    packed.append(current)
    return packed


def print_table(
    console: Any,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell]],
    *,
    styles: Sequence[str | None] | None = None,
) -> None:
    """Print ``rows`` (the key cell first) under ``columns`` (the key column first),
    fitting ``console.width``; ``styles`` gives each row a Rich style (or None)."""
    key, others = columns[0], list(columns[1:])
    width = max(int(console.width), 20)
    key_width = min(column_width(key, [row[0] for row in rows]), max(width // 2, 8))
    widths = [column_width(c, [row[i + 1] for row in rows]) for i, c in enumerate(others)]
    split = parts(key_width, widths, width)
    narrowest = max(_longest_word([_plain(row[0]) for row in rows] + [key.header]), 12)
    if len(split) > 1 and narrowest < key_width:  # a narrower key may save a part
        fewer = parts(narrowest, widths, width)
        if len(fewer) < len(split):
            key_width, split = narrowest, fewer
    for number, part in enumerate(split, start=1):
        label = title if len(split) == 1 else f"{title} ({number}/{len(split)})"
        chosen = [0, *(i + 1 for i in part)]
        sized = [key_width, *(widths[i] for i in part)]
        room = width - sum(sized) - GAP * (len(sized) - 1)
        # Room left on the line goes to headers (whole rather than wrapped), then to the
        # key and text columns (fewer wrapped lines).
        wants = [cell_len(columns[index].header) for index in chosen]
        for n, index in enumerate(chosen):
            if columns[index].kind in ("key", "text"):
                natural = max(
                    (cell_len(line) for row in rows for line in _plain(row[index]).splitlines()),
                    default=0,
                )
                wants[n] = max(wants[n], natural)
        for stage in (("number", "word"), ("key", "text")):
            for n, index in enumerate(chosen):
                if columns[index].kind in stage and room > 0 and wants[n] > sized[n]:
                    grow = min(wants[n] - sized[n], room)
                    sized[n] += grow
                    room -= grow
        picked = [[row[index] for index in chosen] for row in rows]
        if len(rows) > PLAIN_ABOVE:
            _print_plain(console, label, [columns[i] for i in chosen], sized, picked)
        else:
            _print_rich(console, label, [columns[i] for i in chosen], sized, picked, styles)


def _print_rich(
    console: Any,
    title: str,
    columns: Sequence[Column],
    widths: Sequence[int],
    rows: Sequence[Sequence[Cell]],
    styles: Sequence[str | None] | None,
) -> None:
    console.print(Text(title, style="bold"))
    table = Table(
        header_style="bold",
        box=RULED,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    for column, width in zip(columns, widths, strict=True):
        table.add_column(
            column.header,
            justify="right" if column.kind == "number" else "left",
            min_width=width,
            max_width=width,
            overflow="fold",  # only a word longer than the column, which none is
        )
    for n, row in enumerate(rows):
        cells = [cell if isinstance(cell, Text) else Text(cell) for cell in row]
        table.add_row(*cells, style=styles[n] if styles else None)
    console.print(table)
    console.print()  # a blank line ends the table


def _wrapped(cell: str, width: int) -> list[str]:
    """``cell`` wrapped to ``width`` as textwrap does it; a cell that fits (most of them:
    10,000 partners' funnel is 400,000 cells) without textwrap, whose work it skips."""
    if cell and len(cell) <= width and cell[-1] != " " and cell.isprintable():
        return [cell]  # what textwrap.wrap returns for it: nothing to break or drop
    return textwrap.wrap(cell, width, break_long_words=True) or [""]


def _print_plain(
    console: Any,
    title: str,
    columns: Sequence[Column],
    widths: Sequence[int],
    rows: Sequence[Sequence[Cell]],
) -> None:
    def lines(cells: Sequence[str]) -> list[str]:
        wrapped = [_wrapped(cell, width) for cell, width in zip(cells, widths, strict=True)]
        out = []
        for depth in range(max(len(w) for w in wrapped)):
            parts_ = []
            for n, (column, width) in enumerate(zip(columns, widths, strict=True)):
                text = wrapped[n][depth] if depth < len(wrapped[n]) else ""
                pad = " " * max(width - cell_len(text), 0)
                parts_.append(pad + text if column.kind == "number" else text + pad)
            out.append((" " * GAP).join(parts_).rstrip())
        return out

    out = [title, *lines([c.header for c in columns])]
    out.append((" " * GAP).join("─" * width for width in widths))
    for row in rows:
        out += lines([_plain(cell) for cell in row])
    console.print("\n".join(out) + "\n", markup=False, highlight=False, soft_wrap=True)
