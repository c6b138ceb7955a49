"""Reading YAML that users write, within bounds.

PyYAML's SafeLoader builds no objects, but it still expands aliases (a "billion laughs"
file of a few hundred bytes becomes gigabytes), recurses once per level of nesting (5,000
``[`` end in a RecursionError traceback) and reads any size. :class:`BoundedLoader` refuses
aliases (``*name``; anchors alone are harmless), more than :data:`MAX_DEPTH` levels of
nesting, and :func:`compose_bounded` texts over :data:`MAX_YAML_CHARS` characters or with a
NUL byte; each as a ``yaml.MarkedYAMLError`` with the line, which the callers already turn
into one line. None of the engine's files needs an alias or that depth.

A caller reads a YAML file with ``core.boundedread.read_bounded(path, MAX_YAML_BYTES)``:
a regular file only (not ``/dev/zero`` or a pipe, which read for ever), and no more bytes
than :data:`MAX_YAML_CHARS` characters can take.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_YAML_CHARS = 1_000_000
"""The largest YAML text read (a campaign.yaml or a segments file is a few kilobytes)."""
MAX_YAML_BYTES = 4 * MAX_YAML_CHARS
"""The most bytes of a YAML file read: :data:`MAX_YAML_CHARS` characters of four bytes."""
MAX_DEPTH = 64
"""The deepest nesting of mappings and lists accepted."""


class YamlRefused(yaml.MarkedYAMLError):
    """A YAML text outside the bounds: an alias, too deep, or too long."""


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and nesting deeper than :data:`MAX_DEPTH`.

    A loader with other resolvers subclasses it (``class Mine(BoundedLoader)``)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
            raise YamlRefused(
                None, None, "aliases (*name) are not allowed: write the value out", event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]  # as above
                raise YamlRefused(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def compose_bounded(
    text: str, loader: type[BoundedLoader] = BoundedLoader
) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data of one YAML document, read with
    ``loader``; raises ``yaml.YAMLError`` (a :class:`YamlRefused` outside the bounds)."""
    if len(text) > MAX_YAML_CHARS:
        raise YamlRefused(None, None, f"longer than {MAX_YAML_CHARS:,} characters", None)
    if "\x00" in text:
        index = text.index("\x00")
        line = text.count("\n", 0, index)
        column = index - (text.rfind("\n", 0, index) + 1)
        mark = yaml.Mark("<text>", index, line, column, None, 0)  # no buffer: no snippet
        raise YamlRefused(None, None, "contains a NUL byte", mark)
    reader = loader(text)
    try:
        node = reader.get_single_node()
        data = None if node is None else reader.construct_document(node)
    finally:
        reader.dispose()
    return node, data
