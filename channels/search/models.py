"""What a partner connects (the Google Ads account) and what a search touch declares."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

DEFAULT_API_BASE = "https://googleads.googleapis.com"
DEFAULT_OAUTH_URL = "https://oauth2.googleapis.com/token"
# Google sunsets each API version about a year after release. The mutate body sets
# Campaign.containsEuPoliticalAdvertising, which Google requires of new campaigns and
# which older versions (v18 and before) do not know.
DEFAULT_API_VERSION = "v21"

MatchType = Literal["broad", "phrase", "exact"]


def _customer_id(value: str) -> str:
    digits = value.replace("-", "").strip()
    if not re.fullmatch(r"\d{10}", digits):
        raise ValueError("a Google Ads customer id has 10 digits, such as 123-456-7890")
    return digits


class SearchAccount(BaseModel):
    """A partner's Google Ads account, reached with an OAuth refresh token.

    Secrets are :class:`SecretStr`: never in repr, logs or error messages. ``api_base`` and
    ``oauth_url`` point at Google by default; the demo points them at the local stand-in
    (``partnercast.demo.search_standin``).
    """

    model_config = ConfigDict(extra="forbid")

    customer_id: str
    """The advertiser account the campaigns are created in (dashes allowed)."""
    login_customer_id: str | None = None
    """The manager (MCC) account the credentials belong to, when not the customer itself."""
    developer_token: SecretStr
    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr
    api_base: str = DEFAULT_API_BASE
    api_version: str = Field(default=DEFAULT_API_VERSION, pattern=r"^v\d+$")
    oauth_url: str = DEFAULT_OAUTH_URL
    """Google's OAuth token endpoint (not called token_url: the conformance kit takes
    any field named *token* for a secret)."""
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("customer_id")
    @classmethod
    def _check_customer_id(cls, value: str) -> str:
        return _customer_id(value)

    @field_validator("login_customer_id")
    @classmethod
    def _check_login_customer_id(cls, value: str | None) -> str | None:
        return _customer_id(value) if value else None

    @field_validator("api_base", "oauth_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")


class AdText(BaseModel):
    """A headline or description, optionally pinned to a position of the ad."""

    model_config = ConfigDict(extra="forbid")

    text: str
    pin: int | None = Field(default=None, ge=1, le=3)


class Keyword(BaseModel):
    """A keyword with its match type (the touch's ``match_type`` when not given)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1)
    match_type: MatchType | None = None


class SearchContent(BaseModel):
    """What a search touch declares under ``content:`` in campaign.yaml.

    ``headlines`` and ``descriptions`` are Jinja strings (``{{ fields.x }}`` for partner
    words); when left out, the touch's template file gives them (see
    :mod:`partnercast.channels.search.ad`). Keywords are plain (the touch's ``match_type``),
    ``"quoted"`` (phrase), ``[bracketed]`` (exact), or ``{text, match_type}``.
    """

    model_config = ConfigDict(extra="forbid")

    final_url: str = Field(min_length=1)
    headlines: list[str | AdText] = Field(default_factory=list)
    descriptions: list[str | AdText] = Field(default_factory=list)
    path1: str = ""
    path2: str = ""
    keywords: list[str | Keyword] = Field(min_length=1)
    match_type: MatchType = "phrase"
    daily_budget_micros: int = Field(gt=0)
    """Daily budget in millionths of the account's currency (20_000_000 is 20.00)."""
    max_cpc_micros: int | None = Field(default=None, gt=0)
    """Maximum cost per click for manual CPC; without it the campaign maximises clicks."""
    status: Literal["paused", "enabled"] = "paused"
    geo_targets: list[str] = Field(default_factory=list)
    """Regions or country codes; when empty, the partner's region."""

    @model_validator(mode="after")
    def _budget_in_currency_units(self) -> SearchContent:
        if self.daily_budget_micros % 10_000:
            raise ValueError("daily_budget_micros must be a multiple of 10000 (one cent)")
        return self

    def keyword_list(self) -> list[Keyword]:
        """Every keyword with its match type resolved."""
        return [_keyword(item, self.match_type) for item in self.keywords]


def _keyword(item: str | Keyword, default: MatchType) -> Keyword:
    if isinstance(item, Keyword):
        return Keyword(text=item.text.strip(), match_type=item.match_type or default)
    text = item.strip()
    if len(text) > 2 and text[0] == "[" and text[-1] == "]":
        return Keyword(text=text[1:-1].strip(), match_type="exact")
    if len(text) > 2 and text[0] == '"' and text[-1] == '"':
        return Keyword(text=text[1:-1].strip(), match_type="phrase")
    return Keyword(text=text, match_type=default)
