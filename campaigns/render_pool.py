"""The pool of render processes every template render goes through.

A render runs in a separate process (campaigns/render_child.py) capped in memory and CPU
time, so that no template can take down the process that asked for it: the worker's tick,
``partnercast serve``'s preview and landing pages, ``preview`` and ``campaign validate``
all render through :func:`shared_pool`. The processes are started on first use and kept
(one per core at most, each keeping the environments it compiled), so a render costs a
round trip over a pipe, not a process start. A process the kernel ended (out of CPU time)
or that ran out of memory is replaced on the next render.

What the caller sees: the rendered text, :class:`TemplateError` for a template's own
mistake, or :class:`RenderBudgetExceeded` (out of CPU time or memory, or the process was
lost), which is worth a retry.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from partnercast.campaigns.budgeted_jinja import (
    RenderBudgetExceeded,
    RenderLimits,
    TemplateSet,
    out_of_time,
)
from partnercast.campaigns.render_child import HEADER, decode_value
from partnercast.core.errors import TemplateError

WALL_SECONDS = 60.0
"""How long the engine waits for one answer (a render or a filter call) before it ends
the render process: its CPU timer ends a busy render long before; this bounds a process
that is stopped or starved for a minute on an overloaded machine."""
MAX_ANSWER_BYTES = 64 * 1024 * 1024
MAX_FILTER_CALLS = 200_000
_CHILD_ENVIRONMENT = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "SYSTEMROOT")
"""All a render process inherits: no secret key, no database URL."""


class _Lost(Exception):
    """The render process ended, timed out or answered nonsense."""


class RenderProcess:
    """One render process and the pipe to it."""

    def __init__(self) -> None:
        environment = {name: os.environ[name] for name in _CHILD_ENVIRONMENT if name in os.environ}
        command = [sys.executable, "-m", "partnercast.campaigns.render_child"]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=environment
        )
        self.known: set[str] = set()
        """Template sets this process has compiled (it keeps the latest few)."""
        self.killed = False

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, message: dict[str, Any]) -> None:
        body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(HEADER.pack(len(body)) + body)
            stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise _Lost("the render process is gone") from error

    def receive(self) -> dict[str, Any]:
        header = self._read(HEADER.size)
        size = HEADER.unpack(header)[0]
        if size > MAX_ANSWER_BYTES:
            raise _Lost("the render process answered too much")
        try:
            answer = json.loads(self._read(size))
        except ValueError as error:
            raise _Lost("the render process answered nonsense") from error
        if not isinstance(answer, dict):
            raise _Lost("the render process answered nonsense")
        return answer

    def _read(self, size: int) -> bytes:
        stdout = self.process.stdout
        assert stdout is not None
        descriptor = stdout.fileno()
        deadline = time.monotonic() + WALL_SECONDS
        chunks: list[bytes] = []
        while size:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([descriptor], [], [], max(left, 0))
            if not ready:
                raise _Lost(f"the render process did not answer within {WALL_SECONDS:g} seconds")
            chunk = os.read(descriptor, min(size, 1 << 20))
            if not chunk:
                raise _Lost("the render process ended")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def stop(self, *, wait: float = 0) -> None:
        """End the process: at once, or after ``wait`` seconds to finish on its own."""
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        if wait:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=wait)
        if self.alive:
            self.killed = True
            with contextlib.suppress(OSError):
                self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            self.process.wait(timeout=5)
        with contextlib.suppress(OSError):
            if self.process.stdout is not None:
                self.process.stdout.close()

    def why_lost(self, limits: RenderLimits, fallback: str) -> str:
        """What ended the process, in the words of the budget it ran out of."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        code = self.process.returncode
        if code in (-signal.SIGPROF, -signal.SIGXCPU):
            return f"stopped: {out_of_time(limits)}"
        if self.killed:
            return f"stopped: {fallback}"
        if code == -signal.SIGKILL:
            return "stopped: the render process was killed (out of memory?)"
        if code is not None and code < 0:
            return f"stopped: the render process ended on signal {signal.Signals(-code).name}"
        return f"stopped: {fallback}"


class RenderPool:
    """Render processes shared by the threads of one process (at most ``size`` at once)."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size or max(os.cpu_count() or 1, 1)
        self._idle: list[RenderProcess] = []
        self._started = 0
        self._lock = threading.Condition()

    def render(
        self,
        templates: TemplateSet,
        source_name: str,
        context: Mapping[str, Any],
        limits: RenderLimits,
        *,
        where: str | None = None,
        source: str | None = None,
    ) -> str:
        location = where or source_name
        job = {
            "key": templates.key,
            "templates": None,
            "autoescape": templates.autoescape,
            "filters": sorted(templates.filters),
            "name": source_name,
            "source": source,
            "context": dict(context),
            "limits": limits,
            "where": location,
        }
        process = self._take()
        try:
            return self._run(process, job, templates, limits)
        except _Lost as error:
            process.stop()
            raise RenderBudgetExceeded(
                process.why_lost(limits, str(error)), where=location
            ) from None
        finally:
            self._give_back(process)

    def _run(
        self,
        process: RenderProcess,
        job: dict[str, Any],
        templates: TemplateSet,
        limits: RenderLimits,
    ) -> str:
        if templates.key not in process.known:
            job["templates"] = dict(templates.templates)
        process.send(job)
        calls = 0
        while True:
            answer = process.receive()
            if "need" in answer:  # it had let these templates go: send them again
                process.send({**job, "templates": dict(templates.templates)})
                continue
            if "call" in answer:
                calls += 1
                if calls > MAX_FILTER_CALLS:
                    raise _Lost(
                        f"template calls plugin filters more than {MAX_FILTER_CALLS:,} times"
                    )
                process.send(_call_filter(templates, answer))
                continue
            process.known.add(templates.key)
            if answer.get("leaving"):
                process.stop(wait=5)
            return _outcome(process, answer, job["where"])

    def _take(self) -> RenderProcess:
        with self._lock:
            while not self._idle and self._started >= self.size:
                self._lock.wait()
            while self._idle:
                process = self._idle.pop()
                if process.alive:
                    return process
                process.stop()  # ended while idle (killed from outside): not this job's fault
                self._started -= 1
            self._started += 1
        try:
            return RenderProcess()
        except OSError as error:
            with self._lock:
                self._started -= 1
                self._lock.notify()
            raise RenderBudgetExceeded(f"could not start a render process: {error}") from error

    def _give_back(self, process: RenderProcess) -> None:
        with self._lock:
            if process.alive:
                self._idle.append(process)
            else:
                process.stop()
                self._started -= 1
            self._lock.notify()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._started -= len(idle)
        for process in idle:
            process.stop(wait=1)  # its stdin closed, it exits

    def forget(self) -> None:
        """In a forked child: drop our copies of the parent's pipes, start afresh."""
        for process in self._idle:
            for stream in (process.process.stdin, process.process.stdout):
                with contextlib.suppress(OSError):
                    if stream is not None:
                        os.close(stream.fileno())
        self._idle = []
        self._started = 0
        self._lock = threading.Condition()


def _call_filter(templates: TemplateSet, call: dict[str, Any]) -> dict[str, Any]:
    """Run a plugin filter the render process asked for, on the values it sent."""
    function = templates.filters.get(str(call.get("call")))
    if function is None:
        raise _Lost("the render process asked for an unknown filter")
    try:
        args = decode_value(call.get("args", []))
        kwargs = decode_value(call.get("kwargs", {"mapping": []}))
    except (ValueError, TypeError) as error:
        raise _Lost("the render process sent a value it could not have") from error
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise _Lost("the render process sent a value it could not have")
    try:
        return {"value": function(*args, **{str(k): v for k, v in kwargs.items()})}
    except Exception as error:  # the plugin's own failure: the template's error line
        return {"error": str(error) or type(error).__name__}


def _outcome(process: RenderProcess, answer: dict[str, Any], where: str) -> str:
    if "ok" in answer and isinstance(answer["ok"], str):
        return answer["ok"]
    message, at = answer.get("message"), answer.get("where") or where
    if not isinstance(message, str) or not isinstance(at, str):
        raise _Lost("the render process answered nonsense")
    if answer.get("error") == "budget":
        raise RenderBudgetExceeded(message, where=at)
    if answer.get("error") == "template":
        raise TemplateError(message, where=at)
    raise _Lost("the render process answered nonsense")


_pool: RenderPool | None = None
_pool_lock = threading.Lock()


def shared_pool() -> RenderPool:
    """The process's render pool (started on first use, stopped at exit)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = RenderPool()
        return _pool


def _stop_pool() -> None:
    if _pool is not None:
        _pool.close()


def _after_fork() -> None:
    global _pool, _pool_lock
    _pool_lock = threading.Lock()
    if _pool is not None:
        _pool.forget()
        _pool = None


atexit.register(_stop_pool)
os.register_at_fork(after_in_child=_after_fork)
