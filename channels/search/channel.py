"""The search channel: one Google Ads search campaign with a responsive search ad per
partner and dispatch, previewed as a search result, published through the Google Ads API
(REST), or exported as a Google Ads Editor CSV for partners who upload by hand."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from partnercast.channels.search.ad import SearchAd, build_ad, plain_text, preview_html, problems
from partnercast.channels.search.editor_csv import editor_csv, write_editor_csv
from partnercast.channels.search.googleads import GoogleAdsClient, is_duplicate_name
from partnercast.channels.search.models import SearchAccount, SearchContent
from partnercast.channels.search.operations import (
    campaign_name,
    lookup_query,
    metrics_query,
    mutate_operations,
    resource_names,
)
from partnercast.plugins import (
    Channel,
    Draft,
    PermanentError,
    PublishResult,
    Recipient,
    RenderRequest,
)

log = logging.getLogger(__name__)


class SearchChannel(Channel):
    """Google Ads responsive search ads, one paused (or enabled) campaign per partner.

    ``publish`` returns two external ids: the campaign's resource name, then its
    budget's. The ad group, ad, keywords and locations hang off the campaign. A retried
    dispatch finds the campaign by its name (which embeds the idempotency key) and
    returns the same ids without creating anything.
    """

    name: ClassVar[str] = "search"
    title: ClassVar[str] = "Search ads (Google Ads)"
    template_suffix: ClassVar[str] = ".txt"
    audience: ClassVar[bool] = False
    Account: ClassVar[type[BaseModel]] = SearchAccount
    Content: ClassVar[type[BaseModel]] = SearchContent

    # --- rendering ----------------------------------------------------------------------

    def render(self, request: RenderRequest) -> Draft:
        try:
            content = SearchContent.model_validate(dict(request.content))
        except ValidationError as error:
            problems_text = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'content'}: {e['msg']}"
                for e in error.errors()
            )
            raise PermanentError(f"search touch content: {problems_text}") from error
        ad = build_ad(request, content)
        return Draft(
            channel=self.name,
            touch_key=request.touch_key,
            locale=request.locale,
            nonce=request.nonce,
            parts={
                "text": plain_text(ad),
                "headlines": "\n".join(line.text for line in ad.headlines),
                "descriptions": "\n".join(line.text for line in ad.descriptions),
                "final_url": ad.final_url,
                "keywords": "\n".join(text for text, _ in ad.keywords),
            },
            preview_html=preview_html(ad),
            meta={"ad": ad.to_dict()},
        )

    def validate(self, draft: Draft) -> list[str]:
        ad = _ad(draft)
        return problems(ad) if ad else ["the draft holds no search ad"]

    # --- publishing ---------------------------------------------------------------------

    def publish(
        self,
        draft: Draft,
        account: BaseModel,
        *,
        idempotency_key: str,
        recipients: Sequence[Recipient] = (),
    ) -> PublishResult:
        if not isinstance(account, SearchAccount):
            raise PermanentError("the search channel needs a SearchAccount")
        ad = _ad(draft)
        if ad is None:
            raise PermanentError("the draft holds no search ad")
        found = problems(ad)
        if found:
            raise PermanentError("; ".join(found))
        client = GoogleAdsClient(account)
        name = campaign_name(ad, idempotency_key)
        existing = _existing(client, name)
        if existing:
            log.info("search campaign for %s already exists: %s", idempotency_key, existing[0])
            return PublishResult(external_ids=existing)
        operations = mutate_operations(ad, account.customer_id, name)
        try:
            created = resource_names(client.mutate(operations))
        except PermanentError as error:
            existing = _existing(client, name) if is_duplicate_name(error) else []
            if not existing:
                raise
            return PublishResult(external_ids=existing)  # a racing attempt created it
        log.info("created search campaign for %s: %s", idempotency_key, ", ".join(created))
        by_kind = {name.split("/")[2]: name for name in created}
        ids = [by_kind.get("campaigns", ""), by_kind.get("campaignBudgets", "")]
        return PublishResult(external_ids=[i for i in ids if i])

    def find_published(
        self,
        draft: Draft,
        account: BaseModel,
        *,
        idempotency_key: str,
        since: datetime | None = None,
    ) -> list[str] | None:
        """The campaign a previous attempt created, found by its name (which embeds the
        idempotency key): a GAQL lookup, certain either way. ``since`` is not needed."""
        if not isinstance(account, SearchAccount):
            raise PermanentError("the search channel needs a SearchAccount")
        ad = _require(draft)
        return _existing(GoogleAdsClient(account), campaign_name(ad, idempotency_key))

    def fetch_metrics(
        self, account: BaseModel, external_ids: Sequence[str]
    ) -> list[dict[str, Any]]:
        """Lifetime impressions, clicks, cost and conversions per campaign, in order.

        One ``googleAds:searchStream`` of :func:`metrics_query` over the campaign resource
        names among ``external_ids`` (a budget's name is skipped); each dict holds
        ``external_id`` and ``impression_count``, ``click_count``, ``cost_micros``,
        ``conversions``. A campaign Google no longer returns keeps ``external_id`` only.
        """
        if not isinstance(account, SearchAccount):
            raise PermanentError("the search channel needs a SearchAccount")
        campaigns = [i for i in external_ids if "/campaigns/" in i]
        found: dict[str, dict[str, Any]] = {}
        if campaigns:
            for row in GoogleAdsClient(account).search_stream(metrics_query(campaigns)):
                name = (row.get("campaign") or {}).get("resourceName")
                metrics = row.get("metrics") or {}
                if isinstance(name, str):
                    found[name] = {
                        "impression_count": int(metrics.get("impressions") or 0),
                        "click_count": int(metrics.get("clicks") or 0),
                        "cost_micros": int(metrics.get("costMicros") or 0),
                        "conversions": float(metrics.get("conversions") or 0.0),
                    }
        return [{"external_id": i, **found.get(i, {})} for i in external_ids]

    # --- Google Ads Editor --------------------------------------------------------------

    def editor_csv(self, draft: Draft, idempotency_key: str) -> str:
        """The draft as a Google Ads Editor CSV (see :mod:`.editor_csv` for the columns)."""
        ad = _require(draft)
        return editor_csv(ad, campaign_name(ad, idempotency_key))

    def write_editor_csv(self, draft: Draft, idempotency_key: str, path: str | Path) -> Path:
        ad = _require(draft)
        return write_editor_csv(ad, campaign_name(ad, idempotency_key), path)


def _ad(draft: Draft) -> SearchAd | None:
    data = draft.meta.get("ad")
    return SearchAd.from_dict(data) if isinstance(data, dict) else None


def _require(draft: Draft) -> SearchAd:
    ad = _ad(draft)
    if ad is None:
        raise PermanentError("the draft holds no search ad")
    return ad


def _existing(client: GoogleAdsClient, name: str) -> list[str]:
    """[campaign, budget] resource names of the campaign called ``name``, if any."""
    for row in client.search(lookup_query(name)):
        campaign = row.get("campaign") or {}
        ids = [campaign.get("resourceName"), campaign.get("campaignBudget")]
        found = [i for i in ids if isinstance(i, str) and i]
        if found:
            return found
    return []


__all__ = ["SearchAccount", "SearchChannel", "SearchContent"]
