"""Text that partners write: data, never template code.

A partner's editable field may hold plain text and the merge tokens the campaign allows
for that field (``{{ first_name }}``, say). Anything else that looks like template syntax
is refused when the customisation is saved (:func:`template_syntax_problems`), and at render
time the text is escaped and the allowed tokens become per-recipient merge markers
(:func:`partner_text`). The text is never handed to Jinja, so ``{{ ''.__class__ }}`` or
``<script>`` in a field can only ever show up as inert characters.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from markupsafe import Markup, escape

from partnercast.plugins.personalization import marker

MERGE_TOKEN = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
TEMPLATE_SYNTAX = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")


def template_syntax_problems(text: str, allowed_tokens: Collection[str]) -> list[str]:
    """Why ``text`` is not acceptable partner text; empty when it is."""
    problems: list[str] = []
    for match in MERGE_TOKEN.finditer(text):
        if match.group(1) not in allowed_tokens:
            allowed = ", ".join(f"{{{{ {token} }}}}" for token in allowed_tokens) or "none"
            problems.append(
                f"merge token {match.group(0)!r} is not allowed here (allowed: {allowed})"
            )
    remainder = MERGE_TOKEN.sub("", text)
    if TEMPLATE_SYNTAX.search(remainder):
        problems.append("template code is not allowed in partner text; write plain text")
    return problems


def partner_text(
    text: str, allowed_tokens: Collection[str], nonce: str, *, html: bool
) -> Markup | str:
    """Partner text ready for a template: escaped (for HTML), with tokens as markers."""
    pieces = MERGE_TOKEN.split(text)
    out: list[str] = []
    for index, piece in enumerate(pieces):
        if index % 2 == 1 and piece in allowed_tokens:
            out.append(marker(nonce, piece))
        elif index % 2 == 1:
            literal = f"{{{{ {piece} }}}}"
            out.append(str(escape(literal)) if html else literal)
        elif html:
            out.append(str(escape(piece)).replace("\n", Markup("<br>\n")))
        else:
            out.append(piece)
    joined = "".join(out)
    return Markup(joined) if html else joined
