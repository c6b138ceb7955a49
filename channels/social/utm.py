"""UTM parameters on the links of a post, so that every visit names its source.

Each link gets ``utm_source=<network>``, ``utm_medium=social``, ``utm_campaign=<campaign
key>``, ``utm_content=<touch key>`` and ``utm_term=<partner>``. ``utm_term`` is meant for
paid-search keywords, which an organic post never has; carrying the partner there lets
every standard analytics tool report visits per partner without a custom dimension.
A parameter the link already has is kept: the vendor or partner chose it on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from partnercast.plugins.utm import tag_url

# http(s) links in free text; trailing punctuation belongs to the sentence, not the link.
_URL = re.compile(r"https?://[^\s<>\"']+")
_TRAILING = ".,;:!?)]}»"


@dataclass(frozen=True)
class Utm:
    """The UTM values of one post."""

    source: str
    campaign: str
    content: str
    partner: str

    def parameters(self) -> dict[str, str]:
        values = {
            "utm_source": self.source,
            "utm_medium": "social",
            "utm_campaign": self.campaign,
            "utm_content": self.content,
            "utm_term": self.partner,
        }
        return {key: value for key, value in values.items() if value}


def tag_links(text: str, parameters: Mapping[str, str]) -> str:
    """Every http(s) link in ``text`` tagged with ``parameters``."""

    def replace(match: re.Match[str]) -> str:
        found = match.group(0)
        url = found.rstrip(_TRAILING)
        return tag_url(url, parameters) + found[len(url) :]

    return _URL.sub(replace, text)


def links_in(text: str) -> list[str]:
    """The http(s) links in ``text``, without trailing punctuation."""
    return [match.group(0).rstrip(_TRAILING) for match in _URL.finditer(text)]
