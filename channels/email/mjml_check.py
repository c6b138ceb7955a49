"""Checking rendered MJML before launch: does it compile, and where is it broken if not.

mjml-python (mrml) says little when it refuses a document ("unexpected end of stream in
root template", rarely a position). :func:`check_mjml` compiles the document and, when
that fails, finds the first structural mistake itself with a small scanner that follows
the parser's rules (every element but HTML's void ones is closed, attribute values are
quoted, ``<`` starts a tag), so the engine can name the template file and line. Unknown
``mj-`` tags compile (mrml drops them silently) and are reported as warnings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mjml import mjml2html
from rapidfuzz import fuzz, process

from partnercast.plugins import TemplateFinding

MJML_TAGS = frozenset(
    {
        "mjml",
        "mj-head",
        "mj-body",
        "mj-attributes",
        "mj-all",
        "mj-class",
        "mj-breakpoint",
        "mj-font",
        "mj-html-attributes",
        "mj-html-attribute",
        "mj-selector",
        "mj-preview",
        "mj-style",
        "mj-title",
        "mj-include",
        "mj-accordion",
        "mj-accordion-element",
        "mj-accordion-title",
        "mj-accordion-text",
        "mj-button",
        "mj-carousel",
        "mj-carousel-image",
        "mj-column",
        "mj-divider",
        "mj-group",
        "mj-hero",
        "mj-image",
        "mj-navbar",
        "mj-navbar-link",
        "mj-raw",
        "mj-section",
        "mj-social",
        "mj-social-element",
        "mj-spacer",
        "mj-table",
        "mj-text",
        "mj-wrapper",
    }
)
"""The tags of MJML 4 (https://documentation.mjml.io)."""
VOID_HTML = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)
"""HTML elements without an end tag: the only ones MJML accepts unclosed."""
RAW_CONTENT = frozenset({"mj-style", "mj-raw"})
"""MJML elements whose content mrml does not parse as markup (CSS, raw HTML)."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9:_.-]*")
_ATTRIBUTE = re.compile(
    r"""\s+(?P<name>[^\s"'<>/=]+)(?:\s*=\s*(?:"[^"]*"|'[^']*'|(?P<bare>[^\s"'<>=`]+)))?"""
)
_TAG_END = re.compile(r"\s*(/?)>")
_POSITION = re.compile(r"at position (\d+)")
_STARTS_WITH_MJML = re.compile(r"\s*(?:<!--.*?-->\s*)*<mjml[\s>]", re.DOTALL)
EMPTY_TAGS = frozenset(
    {"mj-image", "mj-divider", "mj-spacer", "mj-carousel-image", "mj-breakpoint", "mj-font"}
    | {"mj-all", "mj-class", "mj-include", "mj-html-attribute"}
)
"""MJML elements that usually hold nothing, written ``<mj-image ... />``."""


@dataclass(frozen=True)
class _Open:
    name: str
    offset: int


def check_mjml(rendered: str) -> list[TemplateFinding]:
    """Why ``rendered`` would not compile (one finding), and its unknown MJML tags."""
    scan = _Scanner(rendered)
    scan.run()
    try:
        mjml2html(rendered)
    except Exception as error:  # mjml-python raises plain exceptions for bad markup
        cause = scan.errors[0] if scan.errors else _mrml_finding(str(error))
        return [cause, *scan.warnings]
    return scan.warnings


def explain(rendered: str) -> str:
    """One line on why ``rendered`` does not compile, with its line in the rendered MJML."""
    findings = [f for f in check_mjml(rendered) if not f.warning]
    if not findings:
        return ""
    finding = findings[0]
    if finding.offset is None:
        return finding.message
    line = rendered.count("\n", 0, finding.offset) + 1
    return f"{finding.message} (line {line} of the rendered MJML)"


def _mrml_finding(message: str) -> TemplateFinding:
    position = _POSITION.search(message)
    return TemplateFinding(
        f"MJML does not compile: {message}", offset=int(position[1]) if position else None
    )


class _Scanner:
    """One pass over the document: tags, comments and text, with a stack of open elements."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.stack: list[_Open] = []
        self.errors: list[TemplateFinding] = []
        self.warnings: list[TemplateFinding] = []

    def run(self) -> None:
        text, at = self.text, 0
        if not text.strip():
            self._error("the template renders to nothing (an email starts with <mjml>)", 0)
            return
        while True:
            at = text.find("<", at)
            if at < 0:
                break
            at = self._markup(at)
        for element in reversed(self.stack):
            self._error(f"<{element.name}> is never closed{_self_closing(element)}", element.offset)
        if not _STARTS_WITH_MJML.match(text):
            self._error("an email template starts with <mjml>", 0)

    def _markup(self, at: int) -> int:
        """Read the markup at ``at`` (a ``<``); return where to go on."""
        text = self.text
        if text.startswith("<!--", at):
            end = text.find("-->", at + 4)
            if end < 0:
                self._error("<!-- is never closed (end the comment with -->)", at)
                return len(text)
            return end + 3
        if self.stack and self.stack[-1].name in RAW_CONTENT:
            closing = f"</{self.stack[-1].name}"
            if not text.startswith(closing, at):
                return at + 1
        if text.startswith("</", at):
            return self._end_tag(at)
        name = _NAME.match(text, at + 1)
        if name is None:
            self._error("'<' that starts no tag (write &lt; for a less-than sign)", at)
            return at + 1
        return self._start_tag(at, name.group())

    def _start_tag(self, at: int, name: str) -> int:
        text = self.text
        position = at + 1 + len(name)
        while True:
            attribute = _ATTRIBUTE.match(text, position)
            if attribute is None:
                break
            if attribute["bare"] is not None:
                self._error(
                    f"<{name}>: the value of {attribute['name']} must be in quotes "
                    f'({attribute["name"]}="{attribute["bare"]}")',
                    attribute.start("name"),
                )
            position = attribute.end()
        end = _TAG_END.match(text, position)
        if end is None:
            self._error(f"<{name}> is not a complete tag (it has no closing >)", at)
            return position
        lowered = name.lower()
        if lowered.startswith("mj-") and lowered not in MJML_TAGS:
            self._warning(f"unknown MJML tag <{name}>{_nearest_tag(lowered)}", at)
        if not end[1] and lowered not in VOID_HTML:
            self.stack.append(_Open(name, at))
        return end.end()

    def _end_tag(self, at: int) -> int:
        text = self.text
        name = _NAME.match(text, at + 2)
        end = _TAG_END.match(text, name.end()) if name else None
        if name is None or end is None or end[1]:
            self._error("'</' that starts no closing tag", at)
            return at + 2
        closing = name.group()
        names = [element.name for element in self.stack]
        if closing not in names:
            self._error(f"</{closing}> closes no open <{closing}>", at)
            return end.end()
        while self.stack[-1].name != closing:
            unclosed = self.stack.pop()
            self._error(
                f"<{unclosed.name}> is not closed before </{closing}>{_self_closing(unclosed)}",
                unclosed.offset,
            )
        self.stack.pop()
        return end.end()

    def _error(self, message: str, offset: int) -> None:
        self.errors.append(TemplateFinding(f"MJML: {message}", offset=offset))

    def _warning(self, message: str, offset: int) -> None:
        self.warnings.append(TemplateFinding(message, offset=offset, warning=True))


def _self_closing(element: _Open) -> str:
    if element.name.lower() in EMPTY_TAGS:
        return f" (write <{element.name} ... />)"
    return ""


def _nearest_tag(name: str) -> str:
    nearest = process.extractOne(name, sorted(MJML_TAGS), scorer=fuzz.ratio, score_cutoff=70)
    return f" (did you mean <{nearest[0]}>?)" if nearest else ""
