"""Jinja syntax errors said where the author can fix them.

Jinja reports a block left open (``{% if %}`` without ``{% endif %}``) at the end of the
file, or at the end tag of the block around it: neither is the line to edit. This module
finds the line where the unclosed block opens by lexing the source (the lexer succeeds
where the parser fails) and keeping a stack of open block tags.
"""

from __future__ import annotations

import re

from jinja2 import Environment
from jinja2.exceptions import TemplateSyntaxError

BLOCK_TAGS = frozenset(
    {"if", "for", "block", "macro", "call", "filter", "with", "autoescape", "trans", "set"}
)
"""Tags that open a block closed by ``end<tag>`` (``set`` only without ``=``)."""
_INNERMOST = re.compile(r"The innermost block that needs to be closed is '(\w+)'")
_END_OF_TEMPLATE = "Unexpected end of template"
_UNKNOWN_END = re.compile(r"Encountered unknown tag '(end\w+)'")


def unclosed_block(
    environment: Environment, source: str, error: TemplateSyntaxError
) -> tuple[int | None, str]:
    """The line and message to report for ``error``, a syntax error of ``source``.

    An unclosed block is reported at its opening tag, whether Jinja found it at the end of
    the file or at the end tag of an outer block; any other error as Jinja reports it.
    """
    message = error.message or str(error)
    match = _INNERMOST.search(message)
    if match is None:
        return error.lineno, message
    tag = match[1]
    at_end = message.startswith(_END_OF_TEMPLATE)
    # At the end of the file every block still open is unclosed; at a wrong end tag, the
    # blocks open before that line are (the end tag itself is not counted).
    opened = _open_blocks(environment, source, before_line=None if at_end else error.lineno)
    line = next((lineno for name, lineno in reversed(opened) if name == tag), None)
    if line is None:
        return error.lineno, message
    if at_end:
        return line, f"{{% {tag} %}} is never closed (add {{% end{tag} %}})"
    found = _UNKNOWN_END.match(message)
    if found is None:
        return error.lineno, message
    return line, (
        f"{{% {tag} %}} is not closed before {{% {found[1]} %}} at line {error.lineno} "
        f"(add {{% end{tag} %}})"
    )


def _open_blocks(
    environment: Environment, source: str, *, before_line: int | None
) -> list[tuple[str, int]]:
    """The block tags still open, outermost first, with the line each opens on."""
    try:
        tokens = [
            (lineno, kind, value)
            for lineno, kind, value in environment.lex(source)
            if kind != "whitespace"
        ]
    except TemplateSyntaxError:
        return []
    stack: list[tuple[str, int]] = []
    for index, (lineno, kind, _) in enumerate(tokens):
        if before_line is not None and lineno >= before_line:
            break
        if kind != "block_begin" or index + 1 >= len(tokens):
            continue
        _, next_kind, tag = tokens[index + 1]
        if next_kind != "name":
            continue
        if tag.startswith("end") and stack and stack[-1][0] == tag[3:]:
            stack.pop()
        elif tag in BLOCK_TAGS and not (tag == "set" and _assigns(tokens, index + 2)):
            stack.append((tag, lineno))
    return stack


def _assigns(tokens: list[tuple[int, str, str]], start: int) -> bool:
    """Whether the tag starting at ``start`` holds ``=`` before its end (``set x = 1``)."""
    for _, kind, value in tokens[start:]:
        if kind == "block_end":
            return False
        if kind == "operator" and value == "=":
            return True
    return False
