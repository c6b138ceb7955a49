"""bench/process_cpu.py: the CPU of the processes beside a measurement (the database
server, the SMTP sink) is what the email benchmark prints to say where a run's cores went."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

SPIN = "import time\nend = time.process_time() + 1.0\nwhile time.process_time() < end: pass\n"


def _module() -> Any:
    path = Path(__file__).resolve().parents[2] / "bench" / "process_cpu.py"
    spec = importlib.util.spec_from_file_location("process_cpu", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("process_cpu", module)  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_counts_what_the_selected_processes_used_during_the_run_and_nothing_else() -> None:
    process_cpu = _module()
    idle = subprocess.Popen(
        [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE,
    )
    spinners: list[int] = []
    try:
        assert idle.stdout is not None
        idle.stdout.readline()  # its start-up (an interpreter's, and the tests' clock) done
        sampler = process_cpu.ProcessCpu(
            lambda pid, _command: "spinner" if pid in spinners else None,
            process_cpu.one_process(idle.pid, "idle"),
        ).start()
        spinner = subprocess.Popen([sys.executable, "-c", SPIN])  # born during the run
        spinners.append(spinner.pid)
        spinner.wait(timeout=60)
        measured = sampler.stop()
    finally:
        idle.kill()
        idle.wait()
    assert measured is not None
    used, cores = measured
    # one second of CPU, less what it used after the last sample (one every 50 ms, later
    # on a loaded machine)
    assert 0.5 <= used["spinner"] <= 5
    assert used["idle"] < 0.1  # asleep all along
    assert 0 < cores <= (os.cpu_count() or 1) + 0.01
