"""The sandboxed Jinja environment every campaign template renders in, with a budget.

Jinja's SandboxedEnvironment stops templates from reaching Python internals; on top of it
this module bounds what a template may cost, so that a template that loops for ever or
renders gigabytes is stopped with a clear :class:`TemplateError` instead of hanging a
worker or eating its memory:

* every ``{% for %}`` loop draws from one per-render iteration budget and checks the
  deadline (the loops are rewritten at parse time to iterate through a guard);
* every call and every ``*``, ``**`` and ``%`` operation checks the deadline and the size
  of its result, and filters that pad or repeat (center, indent, format...) refuse widths
  beyond the output limit;
* the rendered output is streamed and cut off at the output limit.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import BaseLoader, DictLoader, StrictUndefined, TemplateNotFound, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.sandbox import SandboxedEnvironment

from partnercast.core.errors import TemplateError


@dataclass(frozen=True)
class RenderLimits:
    """What one render may cost."""

    seconds: float = 2.0
    iterations: int = 200_000
    output_chars: int = 2_000_000


class TemplateBudgetExceeded(SecurityError):
    """A template went over its time, iteration or size budget."""


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
        if time.monotonic() > self.deadline:
            raise TemplateBudgetExceeded(
                f"template took longer than {self.limits.seconds:g} seconds"
            )

    def check_size(self, value: Any) -> Any:
        if isinstance(value, str | bytes | list | tuple) and len(value) > self.limits.output_chars:
            raise TemplateBudgetExceeded(
                f"template builds a value over {self.limits.output_chars:,} characters"
            )
        return value


_active_budget: ContextVar[_Budget | None] = ContextVar("partnercast_budget", default=None)

_WIDE_FORMAT_SPEC = re.compile(r"\d{6,}")
_WIDTH_FILTERS = ("center", "indent", "wordwrap", "truncate", "format", "batch", "slice")


def _budget() -> _Budget:
    budget = _active_budget.get()
    if budget is None:  # rendering outside render_limited(): apply the default limits
        budget = _Budget(RenderLimits(), time.monotonic() + RenderLimits().seconds)
        _active_budget.set(budget)
    return budget


def _guard_loop(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _budget()
    for item in iterable:
        budget.step()
        yield item


def _guard_width(filter_function: Callable[..., Any]) -> Callable[..., Any]:
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        for argument in (*args[1:], *kwargs.values()):
            if isinstance(argument, int | float) and abs(argument) > budget.limits.output_chars:
                raise TemplateBudgetExceeded(f"filter argument {argument} is too large")
            if isinstance(argument, str) and _WIDE_FORMAT_SPEC.search(argument):
                raise TemplateBudgetExceeded("format width is too large")
        if args and isinstance(args[0], str) and _WIDE_FORMAT_SPEC.search(args[0]):
            raise TemplateBudgetExceeded("format width is too large")
        return budget.check_size(filter_function(*args, **kwargs))

    return guarded


class BudgetedSandbox(SandboxedEnvironment):
    """A SandboxedEnvironment whose loops, calls and operators spend a per-render budget."""

    intercepted_binops = frozenset({"*", "**", "%"})

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
        for name in _WIDTH_FILTERS:
            self.filters[name] = _guard_width(self.filters[name])

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(
                loop.iter, "_pc_loop_guard", [], [], None, None, lineno=loop.lineno
            )
        return tree

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = _budget()
        budget.check_time()
        return budget.check_size(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = _budget()
        budget.check_time()
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise TemplateBudgetExceeded("exponent is too large")
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                repeats = isinstance(sequence, str | list | tuple) and isinstance(count, int)
                if repeats and len(sequence) * count > budget.limits.output_chars:
                    raise TemplateBudgetExceeded("template repeats a value too many times")
        if operator == "%" and isinstance(left, str) and _WIDE_FORMAT_SPEC.search(left):
            raise TemplateBudgetExceeded("format width is too large")
        return budget.check_size(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Refuse ``str.format`` with huge widths before Python allocates them."""
        wrapped = super().wrap_str_format(value)
        if wrapped is not None and _WIDE_FORMAT_SPEC.search(value.__self__):
            raise TemplateBudgetExceeded("format width is too large")
        return wrapped


def render_limited(
    environment: BudgetedSandbox,
    source_name: str,
    context: Mapping[str, Any],
    limits: RenderLimits | None = None,
    *,
    where: str | None = None,
    source: str | None = None,
) -> str:
    """Render a named template (or ``source``) within ``limits``; failures are TemplateError."""
    limits = limits or RenderLimits()
    token = _active_budget.set(_Budget(limits, time.monotonic() + limits.seconds))
    location = where or source_name
    try:
        if source is not None:
            template = environment.from_string(source)
        else:
            template = environment.get_template(source_name)
        return _collect(template.generate(dict(context)), limits)
    except TemplateBudgetExceeded as error:
        raise TemplateError(f"stopped: {error}", where=location) from error
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
    finally:
        _active_budget.reset(token)


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


def template_environment(
    templates: Mapping[str, str],
    *,
    autoescape: bool = True,
    filters: Mapping[str, Callable[..., Any]] | None = None,
) -> BudgetedSandbox:
    """A budgeted sandbox over a campaign version's template sources."""
    environment = BudgetedSandbox(DictLoader(dict(templates)), autoescape=autoescape)
    for name, function in (filters or {}).items():
        if name in environment.filters:
            raise TemplateError(f"a plugin filter may not replace the built-in filter {name!r}")
        environment.filters[name] = function
    return environment
