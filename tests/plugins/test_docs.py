"""docs/plugins.md documents every hook and every kit row group, as the code has them."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from partnercast.plugins import hookspecs
from partnercast.plugins.testing import HTTP_FAILURES

DOC = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text(encoding="utf-8")
HOOKS = [
    name
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(function, "partnercast_spec")
]


def test_there_are_hooks() -> None:
    assert "register_channels" in HOOKS and "register_jobs" in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook: str) -> None:
    assert f"`{hook}(" in DOC


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docstring_saying_when_it_is_called(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert "Called" in doc


@pytest.mark.parametrize("failure", HTTP_FAILURES, ids=lambda failure: failure.id)
def test_every_http_failure_row_is_documented(failure) -> None:  # type: ignore[no-untyped-def]
    name = failure.id.removeprefix("http-")
    assert name in DOC
