"""The budgeted Jinja environment that runs inside a render process.

campaigns/sandbox.py says what bounds a render; this is its in-process part: the
SandboxedEnvironment whose loops, calls and operators spend a per-render budget (CPU time,
iterations, sizes checked by campaigns/render_guards.py), and :func:`render_here`, which
renders with it and turns every failure into a :class:`TemplateError` or, for running out
of CPU time or memory, a :class:`RenderBudgetExceeded`.
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import update_wrapper
from typing import Any

from jinja2 import BaseLoader, DictLoader, StrictUndefined, TemplateNotFound, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.sandbox import SandboxedEnvironment, SandboxedFormatter
from markupsafe import EscapeFormatter, Markup

from partnercast.campaigns.render_guards import (
    GUARDED_FILTERS,
    TemplateBudgetExceeded,
    check_binop,
    check_call,
    check_format_spec,
    guard_filter,
)
from partnercast.core.errors import TemplateError


@dataclass(frozen=True)
class RenderLimits:
    """What one render may cost."""

    seconds: float = 1.0
    """CPU seconds. A campaign email renders in milliseconds."""
    iterations: int = 200_000
    output_chars: int = 2_000_000
    memory_bytes: int = 256 * 1024 * 1024
    """The render process's whole address space (Python itself takes about 25 MB)."""


class RenderBudgetExceeded(TemplateError):
    """The render ran out of CPU time or memory, or its process was lost: worth a retry
    (a dispatcher retries it a bounded number of times), unlike other template errors."""

    retryable = True


@dataclass
class _Budget:
    limits: RenderLimits
    deadline: float
    iterations: int = 0

    def step(self) -> None:
        self.iterations += 1
        if self.iterations > self.limits.iterations:
            raise TemplateBudgetExceeded(
                f"template loops more than {self.limits.iterations:,} times"
            )
        if self.iterations % 256 == 0:
            self.check_time()

    def check_time(self) -> None:
        if time.thread_time() > self.deadline:
            raise TemplateBudgetExceeded(out_of_time(self.limits), retryable=True)

    def check_size(self, value: Any) -> Any:
        if isinstance(value, str | bytes | list | tuple) and len(value) > self.limits.output_chars:
            raise TemplateBudgetExceeded(
                f"template builds a value over {self.limits.output_chars:,} characters"
            )
        return value


def out_of_time(limits: RenderLimits) -> str:
    unit = "second" if limits.seconds == 1 else "seconds"
    return f"template took more than {limits.seconds:g} {unit} of CPU time"


_active_budget: ContextVar[_Budget | None] = ContextVar("partnercast_budget", default=None)


def _start_budget(limits: RenderLimits) -> _Budget:
    return _Budget(limits, time.thread_time() + limits.seconds)


def _budget() -> _Budget:
    budget = _active_budget.get()
    if budget is None:  # rendering outside render_here(): apply the default limits
        budget = _start_budget(RenderLimits())
        _active_budget.set(budget)
    return budget


def _output_limit() -> int:
    return _budget().limits.output_chars


def _guard_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _budget()
    for item in iterable:
        budget.step()
        yield item


def _guard_size(value: Any) -> Any:
    return _budget().check_size(value)


class _CheckedFormatter(SandboxedFormatter):
    """str.format in the sandbox, refusing a huge width or precision before it pads."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        check_format_spec(format_spec, _output_limit())
        return super().format_field(value, format_spec)


class _CheckedEscapeFormatter(_CheckedFormatter, EscapeFormatter):
    pass


class BudgetedSandbox(SandboxedEnvironment):
    """A SandboxedEnvironment whose loops, calls and operators spend a per-render budget."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, loader: BaseLoader | None = None, *, autoescape: bool = True) -> None:
        super().__init__(
            loader=loader,
            autoescape=autoescape,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.filters["_pc_loop_guard"] = _guard_loop
        self.filters["_pc_size_guard"] = _guard_size
        for name in GUARDED_FILTERS:
            self.filters[name] = guard_filter(name, self.filters[name], _output_limit)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(
                loop.iter, "_pc_loop_guard", [], [], None, None, lineno=loop.lineno
            )
        for parent in [tree, *tree.find_all(nodes.Node)]:  # a ~ b: its result size-checked
            for field_name, value in parent.iter_fields():
                if isinstance(value, nodes.Concat):
                    setattr(parent, field_name, _size_checked(value))
                elif isinstance(value, list):
                    value[:] = [
                        _size_checked(v) if isinstance(v, nodes.Concat) else v for v in value
                    ]
        return tree

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.check_time()
        check_call(__obj, args, kwargs, budget.limits.output_chars)
        return budget.check_size(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        budget.check_time()
        check_binop(operator, left, right, budget.limits.output_chars)
        return budget.check_size(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` and ``format_map`` through a formatter that checks each spec."""
        if not isinstance(value, types.MethodType | types.BuiltinMethodType):
            return None
        if value.__name__ not in ("format", "format_map"):
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        kind = type(owner)
        formatter: SandboxedFormatter
        if isinstance(owner, Markup):
            formatter = _CheckedEscapeFormatter(self, escape=owner.escape)
        else:
            formatter = _CheckedFormatter(self)
        is_format_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            return kind(formatter.vformat(owner, args, kwargs))

        return update_wrapper(wrapper, value)


def _size_checked(node: nodes.Concat) -> nodes.Filter:
    return nodes.Filter(node, "_pc_size_guard", [], [], None, None, lineno=node.lineno)


# --- template sets: what a render is asked to render ------------------------------------


@dataclass(frozen=True)
class TemplateSet:
    """A campaign version's template sources, how they escape, and the plugins' filters.

    It compiles nothing: the render process builds (and keeps) the Jinja environment for
    it, found again by ``key``. Plugin filters stay in this process; the render process
    calls back for them, so they may be any callable (a lambda, a closure).
    """

    templates: Mapping[str, str]
    autoescape: bool = True
    filters: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    key: str = ""


def build_environment(
    templates: Mapping[str, str],
    *,
    autoescape: bool,
    filters: Mapping[str, Callable[..., Any]] | None = None,
) -> BudgetedSandbox:
    """The Jinja environment itself (the render process builds it)."""
    environment = BudgetedSandbox(DictLoader(dict(templates)), autoescape=autoescape)
    environment.filters.update(filters or {})
    return environment


def render_here(
    environment: BudgetedSandbox,
    source_name: str,
    context: Mapping[str, Any],
    limits: RenderLimits | None = None,
    *,
    where: str | None = None,
    source: str | None = None,
) -> str:
    """Render in this process with the sandbox's checks only (the render process's part)."""
    limits = limits or RenderLimits()
    token = _active_budget.set(_start_budget(limits))
    location = where or source_name
    try:
        if source is not None:
            template = environment.from_string(source)
        else:
            template = environment.get_template(source_name)
        return _collect(template.generate(dict(context)), limits)
    except TemplateBudgetExceeded as error:
        kind = RenderBudgetExceeded if error.retryable else TemplateError
        raise kind(f"stopped: {error}", where=location) from error
    except TemplateSyntaxError as error:
        raise TemplateError(f"line {error.lineno}: {error.message}", where=location) from error
    except TemplateNotFound as error:
        raise TemplateError(f"template {error.name!r} not found", where=location) from error
    except UndefinedError as error:
        raise TemplateError(f"undefined value: {error.message}", where=location) from error
    except SecurityError as error:
        raise TemplateError(f"refused by the sandbox: {error}", where=location) from error
    except JinjaTemplateError as error:
        raise TemplateError(str(error), where=location) from error
    except RecursionError as error:
        raise TemplateError("stopped: template recursion is too deep", where=location) from error
    except MemoryError as error:
        megabytes = limits.memory_bytes // (1024 * 1024)
        raise RenderBudgetExceeded(
            f"stopped: template needs more than {megabytes} MB of memory", where=location
        ) from error
    except TemplateError:
        raise
    except Exception as error:  # 1/0, a plugin filter's own error...
        message = f"{error} ({type(error).__name__})" if str(error) else type(error).__name__
        line = _template_line(error) if source is None else None  # an inline text: its place
        prefix = f"line {line}: " if line is not None else ""
        raise TemplateError(f"{prefix}{message}", where=location) from error
    finally:
        _active_budget.reset(token)


def _template_line(error: BaseException) -> int | None:
    """The template line the error was raised on (Jinja rewrites the traceback to it)."""
    line = None
    trace = error.__traceback__
    while trace is not None:
        code = trace.tb_frame.f_code
        if code.co_filename == "<template>" or code.co_name in (
            "template",
            "top-level template code",
        ):
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def _collect(chunks: Iterator[str], limits: RenderLimits) -> str:
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limits.output_chars:
            raise TemplateBudgetExceeded(
                f"template output is over {limits.output_chars:,} characters"
            )
        parts.append(chunk)
    return "".join(parts)
