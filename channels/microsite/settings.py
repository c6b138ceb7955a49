"""The microsite's own settings: ``[microsite]`` in partnercast.toml, or
``PARTNERCAST_MICROSITE_<FIELD>`` (``PARTNERCAST_MICROSITE_RATE_LIMIT=10``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from partnercast.channels.microsite.leadform import PAGE_TOKEN_SECONDS

NAMESPACE = "microsite"


class MicrositeSettings(BaseModel):
    """The lead form: at most ``rate_limit`` forms from one client address to one page
    within ``rate_window_seconds`` (per serving process); a served form's token lasts
    ``form_token_seconds`` (an exported page's lasts 400 days)."""

    model_config = ConfigDict(extra="forbid")

    rate_limit: int = Field(default=5, ge=1)
    rate_window_seconds: float = Field(default=600.0, gt=0)
    form_token_seconds: int = Field(default=PAGE_TOKEN_SECONDS, ge=60)
