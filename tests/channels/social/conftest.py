"""Fixtures of the social channel tests: render requests, accounts with known secrets."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from partnercast.channels.social.linkedin import LinkedInAccount
from partnercast.channels.social.x import XAccount
from partnercast.plugins import RenderRequest

NONCE = "5eed01"
X_SECRETS = ("x-consumer-SECRET-41", "1234567-x-access-TOKEN-42", "x-token-SECRET-43")
LINKEDIN_SECRET = "AQV-linkedin-access-TOKEN-44"
MakeRequest = Callable[..., RenderRequest]


@pytest.fixture
def make_request() -> MakeRequest:
    """A RenderRequest whose template renders to ``text`` (and the vendor's to ``vendor``)."""

    def make(
        text: str = "We help teams harden their hybrid cloud in 45 days.",
        *,
        vendor: str | None = "Northwind Shield watches your hybrid cloud around the clock.",
        content: Mapping[str, Any] | None = None,
        channel: str = "x",
    ) -> RenderRequest:
        vendor_template = (lambda _name: vendor) if vendor is not None else None
        return RenderRequest(
            channel=channel,
            touch_key="launch-post",
            template="social/launch",
            locale="en",
            content=dict(content or {}),
            nonce=NONCE,
            render_template=lambda _name: text,
            render_string=lambda source, html=False: source,
            identity={"name": "Acme IT Services"},
            render_vendor_template=vendor_template,
            render_vendor_string=lambda source, html=False: source,
            campaign_key="cloud-security",
            partner_external_id="P001",
        )

    return make


@pytest.fixture
def x_account() -> XAccount:
    consumer_secret, access_token, token_secret = X_SECRETS
    return XAccount(
        consumer_key="x-consumer-key",
        consumer_secret=consumer_secret,
        access_token=access_token,
        access_token_secret=token_secret,
        timeout_seconds=5,
    )


@pytest.fixture
def linkedin_account() -> LinkedInAccount:
    return LinkedInAccount(
        access_token=LINKEDIN_SECRET, author_urn="urn:li:person:8675309", timeout_seconds=5
    )
