"""Size checks made before an operation allocates: the sandbox's first line of defence.

Each guard estimates what one operation would build (a repeated string, a padded field, a
power, a join) and refuses it with a clear reason when it would pass the output limit, so
that the common runaway templates stop with a message instead of at the render process's
hard limits (campaigns/render_pool.py), which remain the guarantee for anything these
estimates miss.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.utils import _PassArg

MAX_INT_BITS = 100_000
"""About 30,000 decimal digits: more than any amount, far less than a slow power."""


class TemplateBudgetExceeded(SecurityError):
    """A template went over its budget. ``retryable``: the CPU-time budget (the machine's
    load may be why) as opposed to a limit the template itself passes every time."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def refuse(message: str) -> None:
    raise TemplateBudgetExceeded(message)


# --- format strings -------------------------------------------------------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_BRACE_SPEC_NUMBERS = re.compile(r"\d+")


def check_percent_format(template: str, args: Any, limit: int) -> None:
    """``'%9999999s' % x``, ``'%.*f' % (n, x)``: refuse widths and precisions over limit."""
    star = False
    for width, precision in _PERCENT_SPEC.findall(template):
        for number in (width, precision):
            if number == "*":
                star = True
            elif number and int(number) > limit:
                refuse("format width is too large")
    if star:
        values = args if isinstance(args, tuple) else (args,)
        if any(isinstance(value, int) and abs(value) > limit for value in values):
            refuse("format width is too large")


def check_format_spec(spec: str, limit: int) -> None:
    """A resolved ``{:...}`` spec (nested fields already filled in)."""
    if any(int(number) > limit for number in _BRACE_SPEC_NUMBERS.findall(spec)):
        refuse("format width is too large")


# --- operators ------------------------------------------------------------------------


def check_binop(operator: str, left: Any, right: Any, limit: int) -> None:
    if operator == "**":
        _check_power(left, right)
    elif operator == "*":
        for sequence, count in ((left, right), (right, left)):
            repeats = isinstance(sequence, str | list | tuple) and isinstance(count, int)
            if repeats and len(sequence) * count > limit:
                refuse("template repeats a value too many times")
        if (
            _is_int(left)
            and _is_int(right)
            and left.bit_length() + right.bit_length() > MAX_INT_BITS
        ):
            refuse("number is too large")
    elif operator == "%" and isinstance(left, str):
        check_percent_format(left, right, limit)
    elif operator == "+":
        sized = (str, list, tuple)
        if isinstance(left, sized) and isinstance(right, sized) and len(left) + len(right) > limit:
            refuse(f"template builds a value over {limit:,} characters")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_power(base: Any, exponent: Any) -> None:
    if not (_is_int(exponent) and isinstance(base, int | float)):
        return
    if isinstance(base, float):
        return  # a float power overflows at once, it never grows
    if exponent > 0 and abs(base) > 1 and base.bit_length() * exponent > MAX_INT_BITS:
        refuse("number is too large")
    if exponent < 0 and abs(exponent) > MAX_INT_BITS:
        refuse("number is too large")


# --- calls: globals and methods -------------------------------------------------------


def check_call(function: Any, args: tuple[Any, ...], kwargs: dict[str, Any], limit: int) -> None:
    """Methods of str and list, and lipsum, that build far more than they are given."""
    owner = getattr(function, "__self__", None)
    name = getattr(function, "__name__", "")
    if isinstance(owner, str):
        _check_str_method(owner, name, args, limit)
    elif isinstance(owner, list) and name == "extend" and args:
        incoming = args[0]
        if isinstance(incoming, list | tuple | str) and len(owner) + len(incoming) > limit:
            refuse(f"template builds a list over {limit:,} items")
    elif name == "generate_lorem_ipsum":
        _check_lipsum(args, kwargs, limit)


def _check_str_method(owner: str, name: str, args: tuple[Any, ...], limit: int) -> None:
    if name in ("ljust", "rjust", "center", "zfill") and args and _is_int(args[0]):
        if args[0] > limit:
            refuse("format width is too large")
    elif name == "expandtabs":
        size = args[0] if args and _is_int(args[0]) else 8
        if owner.count("\t") * size > limit:
            refuse("format width is too large")
    elif name == "join" and args:
        check_join(owner, args[0], limit)
    elif name == "replace" and len(args) >= 2:
        check_replace(owner, args[0], args[1], limit)


def _check_lipsum(args: tuple[Any, ...], kwargs: dict[str, Any], limit: int) -> None:
    names = ("n", "html", "min", "max")
    given = dict(zip(names, args, strict=False)) | kwargs
    paragraphs, most = given.get("n", 5), given.get("max", 100)
    if _is_int(paragraphs) and _is_int(most) and paragraphs * max(most, 1) * 12 > limit:
        refuse("lipsum would be too long")


def check_join(separator: Any, items: Any, limit: int) -> list[Any] | None:
    """Refuse a join over ``limit``; the items, made a list (the join then reads it)."""
    if not isinstance(items, list | tuple | range):
        return None
    sized = list(items)
    total = len(str(separator)) * max(len(sized) - 1, 0)
    total += sum(len(item) for item in sized if isinstance(item, str))
    if total > limit:
        refuse(f"template builds a value over {limit:,} characters")
    return sized


def check_replace(text: Any, old: Any, new: Any, limit: int) -> None:
    if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
        grows = max(len(new) - len(old), 0)
        count = text.count(old) if old else len(text) + 1
        if len(text) + count * grows > limit:
            refuse(f"template builds a value over {limit:,} characters")


# --- filters --------------------------------------------------------------------------


def guard_filter(
    name: str, function: Callable[..., Any], limit: Callable[[], int]
) -> Callable[..., Any]:
    """``function`` (a built-in filter) with its size checked before it runs.

    The wrapper keeps the filter's ``jinja_pass_arg`` (functools.wraps copies it), so that
    filters taking the environment or context (truncate, wordwrap...) still get it.
    """
    passed = 1 if _PassArg.from_obj(function) is not None else 0
    check = _FILTER_CHECKS.get(name, _check_numbers)

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check(args[passed:], kwargs, limit())
        return function(*args, **kwargs)

    return guarded


_SIZE_KEYWORDS = ("width", "length", "linecount", "slices")


def _check_numbers(args: tuple[Any, ...], kwargs: dict[str, Any], limit: int) -> None:
    """The size argument (a width, a count) over the limit: center, batch, slice..."""
    sizes = [*args[1:2], *(kwargs[name] for name in _SIZE_KEYWORDS if name in kwargs)]
    for argument in sizes:
        if _is_int(argument) and abs(argument) > limit:
            refuse(f"filter argument {argument} is too large")


def _check_indent(args: tuple[Any, ...], kwargs: dict[str, Any], limit: int) -> None:
    _check_numbers(args, kwargs, limit)
    text = str(args[0]) if args else ""
    width = args[1] if len(args) > 1 else kwargs.get("width", 4)
    size = width if _is_int(width) else len(str(width))
    if len(text) + (text.count("\n") + 1) * size > limit:
        refuse(f"template builds a value over {limit:,} characters")


def _check_format(args: tuple[Any, ...], kwargs: dict[str, Any], limit: int) -> None:
    if args and isinstance(args[0], str):
        check_percent_format(args[0], tuple(args[1:]) or kwargs, limit)


def _check_join_filter(args: tuple[Any, ...], kwargs: dict[str, Any], limit: int) -> None:
    if args:
        separator = args[1] if len(args) > 1 else kwargs.get("d", "")
        check_join(separator, args[0], limit)


def _check_replace_filter(args: tuple[Any, ...], kwargs: dict[str, Any], limit: int) -> None:
    if len(args) >= 3:
        check_replace(str(args[0]), args[1], args[2], limit)


def _check_wordwrap(args: tuple[Any, ...], kwargs: dict[str, Any], limit: int) -> None:
    wrapstring = args[3] if len(args) > 3 else kwargs.get("wrapstring")
    text = str(args[0]) if args else ""
    if isinstance(wrapstring, str) and len(text) * (len(wrapstring) + 1) > limit:
        refuse(f"template builds a value over {limit:,} characters")


_FILTER_CHECKS: dict[str, Callable[[tuple[Any, ...], dict[str, Any], int], None]] = {
    "indent": _check_indent,
    "format": _check_format,
    "join": _check_join_filter,
    "replace": _check_replace_filter,
    "wordwrap": _check_wordwrap,
}

GUARDED_FILTERS: Iterable[str] = (
    "center",
    "indent",
    "wordwrap",
    "truncate",
    "format",
    "batch",
    "slice",
    "join",
    "replace",
)
