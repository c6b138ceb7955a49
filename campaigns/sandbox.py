"""The sandboxed Jinja environment every campaign template renders in, with a budget.

Jinja's SandboxedEnvironment stops templates from reaching Python internals; on top of it
two layers bound what one render may cost, so that a template that loops for ever or
builds gigabytes can take down neither the worker nor the web server:

* **the render process** (campaigns/render_pool.py): every render runs in a separate,
  long-lived process whose address space is capped (RLIMIT_AS) and whose CPU time is
  capped by a kernel timer that ends it even inside one long C operation (a huge power,
  ``lipsum(10**6)``). Only that process dies; the caller gets a
  :class:`RenderBudgetExceeded` and the pool starts a fresh process.
* **the sandbox** (campaigns/budgeted_jinja.py, run inside that process): every
  ``{% for %}`` loop draws from one per-render iteration budget and checks the CPU-time
  deadline; every call and ``*``, ``**``, ``%``, ``+`` checks the deadline and what it is
  about to build (campaigns/render_guards.py), as do the filters that pad or repeat
  (center, indent, join, format...); the output is streamed and cut off at the output
  limit. These stop the usual runaway templates early, with a reason, before the hard
  limits are reached.

Time is CPU time (the render thread's), not wall time: a loaded machine slows a render
down but does not make it fail. Running out of it, or of memory, is
:class:`RenderBudgetExceeded`, which a dispatcher retries; every other failure (syntax,
an undefined name, ``1/0``, a refused operation) is a plain :class:`TemplateError`, the
same on every attempt.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from partnercast.campaigns.budgeted_jinja import (
    BudgetedSandbox,
    RenderBudgetExceeded,
    RenderLimits,
    TemplateSet,
    render_here,
)
from partnercast.campaigns.render_pool import shared_pool
from partnercast.core.errors import TemplateError

__all__ = [
    "BudgetedSandbox",
    "RenderBudgetExceeded",
    "RenderLimits",
    "TemplateSet",
    "render_here",
    "render_limited",
    "template_environment",
]


def template_environment(
    templates: Mapping[str, str],
    *,
    autoescape: bool = True,
    filters: Mapping[str, Callable[..., Any]] | None = None,
) -> TemplateSet:
    """A budgeted template set over a campaign version's template sources."""
    filters = dict(filters or {})
    built_in = BudgetedSandbox().filters
    for name in filters:
        if name in built_in:
            raise TemplateError(f"a plugin filter may not replace the built-in filter {name!r}")
    body = json.dumps([dict(templates), autoescape, sorted(filters)], sort_keys=True)
    key = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return TemplateSet(dict(templates), autoescape, filters, key)


def render_limited(
    templates: TemplateSet,
    source_name: str,
    context: Mapping[str, Any],
    limits: RenderLimits | None = None,
    *,
    where: str | None = None,
    source: str | None = None,
) -> str:
    """Render a named template (or ``source``) within ``limits``, in a render process.

    Raises :class:`RenderBudgetExceeded` when it ran out of CPU time or memory and
    :class:`TemplateError` for anything else the template did wrong.
    """
    return shared_pool().render(
        templates, source_name, context, limits or RenderLimits(), where=where, source=source
    )
