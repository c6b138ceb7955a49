"""Per-recipient merge markers: how one rendered draft becomes many personal messages.

The engine renders a touch once per (partner, locale) with every contact value replaced
by a marker ``⟦pc:<nonce>:<name>⟧``. A channel then fills the markers for each recipient
with :class:`Personalizer`, a single regex pass instead of a template render. The nonce is
random per draft, so text a partner or a contact typed can never forge a marker.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Mapping

MERGE_FIELDS = ("first_name", "last_name", "company", "email", "unsubscribe_url")


def new_nonce() -> str:
    """A fresh random nonce for one draft."""
    return secrets.token_hex(6)


def marker(nonce: str, name: str) -> str:
    """The marker that stands for ``name`` in a draft rendered with ``nonce``."""
    return f"⟦pc:{nonce}:{name}⟧"


class Personalizer:
    """Fills the markers of one draft with one recipient's values."""

    def __init__(self, nonce: str) -> None:
        self.nonce = nonce
        self._pattern = re.compile(r"⟦pc:" + re.escape(nonce) + r":([a-z_]+)⟧")

    def has_markers(self, text: str) -> bool:
        return self._pattern.search(text) is not None

    def fill(self, text: str, values: Mapping[str, str], *, html_escape: bool) -> str:
        """Replace every marker; values are escaped for HTML when ``html_escape``."""

        def replace(match: re.Match[str]) -> str:
            value = _single_line(values.get(match.group(1), ""))
            return html.escape(value, quote=True) if html_escape else value

        return self._pattern.sub(replace, text)

    def compile(self, text: str, *, html_escape: bool) -> Filler:
        """``text`` split at its markers once, to be filled for many recipients.

        Filling a compiled text joins its pieces with the values: no regex scan per
        recipient, which matters when one draft becomes thousands of messages a second.
        """
        return Filler(self._pattern.split(text), html_escape=html_escape)


class Filler:
    """A text split at its markers: static pieces at even indexes, names at odd ones."""

    __slots__ = ("_html_escape", "_pieces")

    def __init__(self, pieces: list[str], *, html_escape: bool) -> None:
        self._pieces = pieces
        self._html_escape = html_escape

    @property
    def names(self) -> list[str]:
        return self._pieces[1::2]

    def fill(self, values: Mapping[str, str]) -> str:
        pieces = self._pieces
        if len(pieces) == 1:
            return pieces[0]
        out = pieces.copy()
        escape = self._html_escape
        for index in range(1, len(pieces), 2):
            value = _single_line(values.get(pieces[index], ""))
            out[index] = html.escape(value, quote=True) if escape else value
        return "".join(out)


def _single_line(value: str) -> str:
    """Contact data never carries line breaks into a message (header injection)."""
    return " ".join(str(value).splitlines())
