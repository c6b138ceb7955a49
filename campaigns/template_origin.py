"""Where a template's output and its errors come from: which template file, which line.

A campaign version's templates render from one dictionary, so Jinja's tracebacks and
output know no file names. Here the templates are loaded under their own names
(:class:`NamedLoader`): a render error's frames then name the template and line they ran
(:func:`origin`), and a render done again under a tracer notes which template line yields
each chunk of output (:func:`chunk_origins`), so that an offset in the rendered text (a
channel's finding: "this MJML element is never closed") maps back to the line that wrote
it (:func:`locate`). Used before launch and by ``preview``, never on the sending path.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any

from jinja2 import BaseLoader, Environment, TemplateNotFound

from partnercast.campaigns.sandbox import BudgetedSandbox


class NamedLoader(BaseLoader):
    """Templates by name, each compiled with its name as its file name, so that the
    frames of a render error say which template they are in."""

    def __init__(self, templates: Mapping[str, str]) -> None:
        self.templates = templates

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Any]:
        if template not in self.templates:
            raise TemplateNotFound(template)
        return self.templates[template], template, lambda: True


def render_here(environment: BudgetedSandbox, path: str, context: Mapping[str, Any]) -> str:
    """Render in this process, under the sandbox's default budget (a context of its own,
    so that the budget it starts is not left behind for the next render)."""
    template = environment.get_template(path)
    return contextvars.copy_context().run(lambda: "".join(template.generate(dict(context))))


def origin(error: BaseException, templates: Mapping[str, str]) -> tuple[str, int] | None:
    """The innermost template frame of the error (or of what caused it): file and line."""
    found: tuple[str, int] | None = None
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for frame, lineno in _frames(current.__traceback__):
            name = frame.f_code.co_filename
            if name in templates:
                found = (name, _template_line(frame, lineno))
        current = current.__cause__ or current.__context__
    return found


def from_a_template(error: BaseException) -> bool:
    """Whether template code raised it (a subject's ``{{ 1/0 }}``), whatever its type."""
    return any(
        frame.f_code.co_filename in ("<template>",) or "__jinja_template__" in frame.f_globals
        for frame, _ in _frames(error.__traceback__)
    )


def _frames(tb: TracebackType | None) -> Iterator[tuple[FrameType, int]]:
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def _template_line(frame: FrameType, lineno: int) -> int:
    """A template line: compiled frames map theirs, Jinja's rewritten frames hold it."""
    template = frame.f_globals.get("__jinja_template__")
    if template is not None:
        return int(template.get_corresponding_lineno(lineno))
    return lineno


# --- where a piece of output comes from ---------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    """A piece of output: where it starts in the text, and the template line that wrote it."""

    start: int
    text: str
    template: str
    line: int


def chunk_origins(
    environment: BudgetedSandbox,
    path: str,
    context: Mapping[str, Any],
    templates: Mapping[str, str],
) -> list[Chunk]:
    """Render ``path`` again, noting the template and line that yields each output chunk."""
    return contextvars.copy_context().run(_traced, environment, path, context, templates)


def _traced(
    environment: BudgetedSandbox,
    path: str,
    context: Mapping[str, Any],
    templates: Mapping[str, str],
) -> list[Chunk]:
    pending: list[tuple[str, int]] = []

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "return" and isinstance(arg, str) and not pending:
            pending.append((frame.f_code.co_filename, _template_line(frame, frame.f_lineno)))
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call" and frame.f_code.co_filename in templates:
            frame.f_trace_lines = False
            return local
        return None

    chunks: list[Chunk] = []
    start = 0
    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        for text in environment.get_template(path).generate(dict(context)):
            if pending:
                template, line = pending[0]
                chunks.append(Chunk(start, text, template, line))
            pending.clear()
            start += len(text)
    except Exception:  # the first render succeeded; a second failure locates nothing
        return chunks
    finally:
        sys.settrace(previous)
    return chunks


def locate(
    offset: int, chunks: list[Chunk], templates: Mapping[str, str]
) -> tuple[str, int] | None:
    """The template and line that wrote the character at ``offset`` of the output."""
    chunk = next((c for c in chunks if c.start <= offset < c.start + max(len(c.text), 1)), None)
    if chunk is None:
        chunk = chunks[-1] if chunks and offset >= chunks[-1].start else None
    if chunk is None:
        return None
    within = offset - chunk.start
    source = templates.get(chunk.template, "")
    # Template text is output as written (whitespace control only trims its ends): find it
    # in the source from its line on, and count the lines up to the offset inside it.
    line_start = _line_offset(source, chunk.line)
    found = source.find(chunk.text, line_start) if chunk.text else -1
    if found >= 0:
        return chunk.template, source.count("\n", 0, found + within) + 1
    return chunk.template, chunk.line


def _line_offset(source: str, line: int) -> int:
    at = 0
    for _ in range(line - 1):
        next_newline = source.find("\n", at)
        if next_newline < 0:
            return at
        at = next_newline + 1
    return at
