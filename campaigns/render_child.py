"""The render process: renders templates one at a time, each under hard limits.

Started by campaigns/render_pool.py as ``python -m partnercast.campaigns.render_child``
with a clean environment (no secrets), it reads jobs on stdin and answers on stdout.
Framing both ways: a 4-byte big-endian length, then the body. Jobs come from the engine
(pickle); answers go back as JSON only, so that even a template that escaped the sandbox
could not make the engine run code by what it answers.

Each job runs with its address space capped (RLIMIT_AS: an allocation past it is a
MemoryError) and a CPU-time timer (ITIMER_PROF) left at its default action, so that the
kernel ends this process even in the middle of one long C operation. The sandbox's own
checks usually stop a template first, with its reason; after a MemoryError the process
answers and exits, so that the next job starts in a fresh one.

Plugin filters are called back in the engine's process (``{"call": name, ...}``) with
plain values: strings, Markup, numbers, lists and mappings of them.
"""

from __future__ import annotations

import json
import os
import pickle
import resource
import signal
import struct
import sys
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from markupsafe import Markup

from partnercast.campaigns.budgeted_jinja import (
    BudgetedSandbox,
    RenderBudgetExceeded,
    RenderLimits,
    build_environment,
    render_here,
)
from partnercast.core.errors import TemplateError

HEADER = struct.Struct(">I")
HARD_GRACE_SECONDS = 0.25
"""CPU time past the sandbox's own deadline before the kernel ends the process."""
KEPT_ENVIRONMENTS = 32


def write_frame(stream: BinaryIO, body: bytes) -> None:
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def read_frame(stream: BinaryIO) -> bytes | None:
    header = _read_exactly(stream, HEADER.size)
    if header is None:
        return None
    return _read_exactly(stream, HEADER.unpack(header)[0])


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = stream.read(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


# --- plain values across the process boundary -------------------------------------------


class UnsendableValue(TypeError):
    """A value a plugin filter cannot be called with across the process boundary."""


def encode_value(value: Any) -> Any:
    """A JSON-able form of a plain template value (Markup and mappings tagged)."""
    if isinstance(value, Markup):
        return {"markup": str(value)}
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [encode_value(item) for item in value]
    if isinstance(value, Mapping):
        return {"mapping": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    raise UnsendableValue(f"a plugin filter cannot take a {type(value).__name__} value")


def decode_value(value: Any) -> Any:
    """The inverse of :func:`encode_value` (the engine reads the render process's calls)."""
    if isinstance(value, list):
        return [decode_value(item) for item in value]
    if isinstance(value, dict):
        if set(value) == {"markup"} and isinstance(value["markup"], str):
            return Markup(value["markup"])
        if set(value) == {"mapping"} and isinstance(value["mapping"], list):
            return {_hashable(decode_value(k)): decode_value(v) for k, v in value["mapping"]}
        raise ValueError("not an encoded value")
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise ValueError("not an encoded value")


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# --- the process --------------------------------------------------------------------------


class _Child:
    def __init__(self, jobs: BinaryIO, answers: BinaryIO) -> None:
        self.jobs = jobs
        self.answers = answers
        self.environments: OrderedDict[str, BudgetedSandbox] = OrderedDict()

    def answer(self, message: dict[str, Any]) -> None:
        write_frame(self.answers, json.dumps(message).encode("utf-8"))

    def call_back(self, name: str) -> Callable[..., Any]:
        """A stand-in for a plugin filter: the engine runs the real one."""

        def plugin_filter(*args: Any, **kwargs: Any) -> Any:
            try:
                call = {"call": name, "args": encode_value(args), "kwargs": encode_value(kwargs)}
            except UnsendableValue as error:
                raise UnsendableValue(f"filter {name!r}: {error}") from None
            self.answer(call)
            body = read_frame(self.jobs)
            if body is None:
                sys.exit(0)
            reply = pickle.loads(body)
            if "error" in reply:
                raise RuntimeError(f"filter {name!r}: {reply['error']}")
            return reply["value"]

        return plugin_filter

    def environment(self, job: dict[str, Any]) -> BudgetedSandbox | None:
        key = job["key"]
        if key in self.environments:
            self.environments.move_to_end(key)
            return self.environments[key]
        if job["templates"] is None:
            return None
        filters = {name: self.call_back(name) for name in job["filters"]}
        made = build_environment(job["templates"], autoescape=job["autoescape"], filters=filters)
        self.environments[key] = made
        while len(self.environments) > KEPT_ENVIRONMENTS:
            self.environments.popitem(last=False)
        return made

    def run(self) -> None:
        while (body := read_frame(self.jobs)) is not None:
            job = pickle.loads(body)
            limits: RenderLimits = job["limits"]
            _limit_memory(limits.memory_bytes)
            signal.setitimer(signal.ITIMER_PROF, limits.seconds + HARD_GRACE_SECONDS)
            try:
                answer, leave = self.render(job, limits)
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
            if leave:  # out of memory: the next job starts in a fresh process
                self.answer({**answer, "leaving": True})
                return
            self.answer(answer)

    def render(self, job: dict[str, Any], limits: RenderLimits) -> tuple[dict[str, Any], bool]:
        try:
            environment = self.environment(job)
            if environment is None:
                return {"need": "templates"}, False
            text = render_here(
                environment,
                job["name"],
                job["context"],
                limits,
                where=job["where"],
                source=job["source"],
            )
        except RenderBudgetExceeded as error:
            leave = isinstance(error.__cause__, MemoryError)
            return {"error": "budget", "message": error.message, "where": error.where}, leave
        except TemplateError as error:
            return {"error": "template", "message": error.message, "where": error.where}, False
        except MemoryError:  # building the environment itself
            message = "stopped: templates need more memory than a render may use"
            return {"error": "budget", "message": message, "where": job["where"]}, True
        return {"ok": text}, False


def _limit_memory(size: int) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = size if hard == resource.RLIM_INFINITY else min(size, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def main() -> None:
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, never into the answers
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGPROF, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the engine's to handle
    try:
        _Child(sys.stdin.buffer, answers).run()
    except BrokenPipeError:
        # The engine's process is gone (killed, or stopped mid-render): nobody is left to
        # answer, and a traceback would land in that process's log. Leave at once, without
        # flushing the answers again at exit.
        os._exit(0)


if __name__ == "__main__":
    main()
