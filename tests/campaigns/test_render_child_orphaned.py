"""A render process whose engine is gone leaves quietly: its stderr is the worker's log."""

from __future__ import annotations

import pickle
import subprocess
import sys

from partnercast.campaigns.budgeted_jinja import RenderLimits
from partnercast.campaigns.render_child import HEADER


def test_a_render_process_whose_engine_died_mid_job_leaves_without_a_traceback() -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "partnercast.campaigns.render_child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the engine is gone: nobody reads the answer
    job = {"key": "never-seen", "templates": None, "limits": RenderLimits()}  # answered at once
    body = pickle.dumps(job)
    child.stdin.write(HEADER.pack(len(body)) + body)
    child.stdin.flush()
    assert child.wait(timeout=60) == 0
    assert child.stderr.read() == b""  # before: BrokenPipeError's traceback, in the log
    child.stdin.close()
    child.stderr.close()
