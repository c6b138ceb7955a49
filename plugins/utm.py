"""UTM tagging shared by every channel that puts links in front of people.

A parameter the link already has is kept: the vendor or partner chose it on purpose.
Social posts (channels/social/utm.py) and tracked email links
(campaigns/tracking_links.py) both tag through :func:`tag_url`.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def tag_url(url: str, parameters: Mapping[str, str]) -> str:
    """``url`` with each parameter it does not already carry appended to its query."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {key for key, _ in query}
    query += [(key, value) for key, value in parameters.items() if key not in present and value]
    return urlunsplit(parts._replace(query=urlencode(query)))
