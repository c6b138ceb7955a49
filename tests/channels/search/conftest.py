"""Each test starts with no cached Google access token (the cache is per process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from partnercast.channels.search.googleads import TOKENS


@pytest.fixture(autouse=True)
def _no_cached_tokens() -> Iterator[None]:
    TOKENS.clear()
    yield
    TOKENS.clear()
