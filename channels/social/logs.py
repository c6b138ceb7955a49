"""Keep account secrets out of third-party debug logs.

oauthlib and requests-oauthlib log the OAuth parameters of every signed request at DEBUG,
the access token among them. While a channel talks to a network, a filter on those
loggers replaces any secret value of the account with asterisks. Logger filters apply
only to records created on that very logger, hence the explicit list of module loggers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import quote

MASK = "**********"
NOISY_LOGGERS = (
    "oauthlib.oauth1.rfc5849",
    "oauthlib.oauth1.rfc5849.signature",
    "requests_oauthlib.oauth1_auth",
    "tweepy.client",
    "urllib3.connectionpool",
)


class _Redact(logging.Filter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, MASK)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


@contextmanager
def secrets_redacted(secrets: Iterable[str]) -> Iterator[None]:
    """Mask ``secrets`` in what the HTTP and OAuth libraries log inside this block."""
    # OAuth carries values percent-encoded, and its signature base string encodes them
    # twice: mask every spelling.
    spellings = {
        form
        for secret in secrets
        if secret
        for form in (secret, quote(secret, "~"), quote(quote(secret, "~"), "~"))
    }
    values = sorted(spellings, key=len, reverse=True)
    redact = _Redact(values)
    loggers = [logging.getLogger(name) for name in NOISY_LOGGERS]
    for logger in loggers:
        logger.addFilter(redact)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(redact)
