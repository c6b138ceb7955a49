"""A progress bar for a command that can run longer than a couple of seconds.

Rich's bar, drawn on standard error while the command runs and gone when it ends; when
standard error is not a terminal (a pipe, a file, CI) nothing at all is drawn, so logs
and scripts see only the command's own output. Public: plugins' commands use it too.

    with progress_bar("importing contacts.csv") as update:
        for done, row in enumerate(rows, start=1):
            ...
            update(done, len(rows))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Update = Callable[..., None]
"""``update(done, total=None, description=None)``: rows (or items) done so far, of how
many (None: not known yet), and a new description if it changed."""


@contextmanager
def progress_bar(description: str, *, console: Console | None = None) -> Iterator[Update]:
    """An ``update`` callable driving a bar on stderr, or doing nothing off a terminal."""
    target = console or Console(stderr=True)
    if not target.is_terminal:

        def ignore(done: int, total: int | None = None, description: str | None = None) -> None:
            return None

        yield ignore
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=target, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None = None, description: str | None = None) -> None:
            if description is None:
                bar.update(task, completed=done, total=total)
            else:
                bar.update(task, completed=done, total=total, description=description)

        yield update
