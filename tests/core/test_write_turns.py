"""The journal's SQLite write turns hold across processes, not only across threads."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from support.turns_child import bump

from partnercast.core.journal import write_turns


def test_two_processes_take_turns_on_one_database_file(tmp_path: Path) -> None:
    database = str(tmp_path / "partnercast.db")
    counter = tmp_path / "counter"
    counter.write_text("0")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=bump, args=(database, str(counter), 40)) for _ in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert int(counter.read_text()) == 80
    assert (tmp_path / "partnercast.db.partnercast-lock").exists()


def test_an_in_memory_database_has_thread_turns_only(tmp_path: Path) -> None:
    with write_turns(":memory:"), write_turns(str(tmp_path / "other.db")):
        pass  # different files: separate turns, no deadlock
    assert [p.name for p in tmp_path.iterdir()] == ["other.db.partnercast-lock"]
