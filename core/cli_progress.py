"""A Rich progress bar for a long command, on a terminal only.

A command that can run longer than a couple of seconds shows how far it is (on stderr, so
that its output stays clean); in a pipe, a file or CI logs it prints nothing extra.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Advance = Callable[[int, int], None]
"""``advance(done, total)``: how far the work is."""


@contextmanager
def progress(console: Any, description: str) -> Iterator[Advance]:
    """An ``advance(done, total)`` callback driving a bar on ``console`` when it is a
    terminal; a callback that does nothing otherwise. The bar goes when the block ends."""
    if not console.is_terminal:
        yield lambda done, total: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance
