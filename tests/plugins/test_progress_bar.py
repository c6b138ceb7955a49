"""Long commands show a progress bar on a terminal and nothing in a pipe."""

from __future__ import annotations

import io

from rich.console import Console

from partnercast.plugins.progress import progress_bar


def _console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=80), out


def test_a_terminal_gets_a_bar_that_goes_when_done() -> None:
    console, out = _console(terminal=True)
    with progress_bar("writing the reports", console=console) as advance:
        for done in range(1, 42):
            advance(done, 41)
        console.file.flush()
    shown = out.getvalue()
    assert "writing the reports" in shown and "41/41" in shown
    assert "\x1b[" in shown  # drawn in place, with terminal controls


def test_a_pipe_gets_nothing() -> None:
    console, out = _console(terminal=False)
    with progress_bar("writing the reports", console=console) as advance:
        advance(1, 2)
        advance(2, 2)
    assert out.getvalue() == ""
