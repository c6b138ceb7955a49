"""Building, checking and previewing a responsive search ad (no network)."""

from __future__ import annotations

from typing import Any

import pytest
from channels.search.helpers import CONTENT, NONCE, request

from partnercast.channels.search.ad import ad_length, with_utm
from partnercast.channels.search.channel import SearchChannel
from partnercast.channels.search.geo import UnknownRegion, countries, geo_target_constant
from partnercast.plugins import PermanentError
from partnercast.plugins.personalization import marker


def _problems(**changes: Any) -> list[str]:
    channel = SearchChannel()
    return channel.validate(channel.render(request({**CONTENT, **changes})))


def _headlines(count: int) -> list[str]:
    return [f"Headline number {n}" for n in range(1, count + 1)]


# (content changes, the problem reported, or "" for none)
ROWS = [
    pytest.param({}, "", id="good"),
    pytest.param(
        {"headlines": _headlines(2)}, "has 2 headlines (it needs 3 to 15)", id="2-headlines"
    ),
    pytest.param({"headlines": _headlines(15)}, "", id="15-headlines"),
    pytest.param(
        {"headlines": _headlines(16)}, "has 16 headlines (it needs 3 to 15)", id="16-headlines"
    ),
    pytest.param(
        {"headlines": [*_headlines(2), "A" * 31]},
        f"headline 3 '{'A' * 31}' is 31 characters (at most 30)",
        id="31-char-headline",
    ),
    pytest.param({"headlines": [*_headlines(2), "A" * 30]}, "", id="30-char-headline"),
    pytest.param(
        {"headlines": [*_headlines(2), "Sicherheit für Zürich & Genf äöü"[:30]]},
        "",
        id="unicode-umlauts-count-once",
    ),
    pytest.param(
        {"headlines": [*_headlines(2), "クラウドセキュリティの無料診断を今すぐ予約"]},
        "is 42 characters (at most 30)",
        id="unicode-cjk-counts-double",
    ),
    pytest.param(
        {"descriptions": ["Only one description here."]}, "has 1 descriptions", id="1-description"
    ),
    pytest.param(
        {"descriptions": [f"Description {n}" for n in range(5)]},
        "has 5 descriptions",
        id="5-descriptions",
    ),
    pytest.param(
        {"descriptions": ["B" * 91, "Fine description."]},
        "description 1 'BBB",
        id="91-char-description",
    ),
    pytest.param(
        {"headlines": [*_headlines(3), "Headline Number 1"]},
        "repeats an earlier headline",
        id="duplicate",
    ),
    pytest.param(
        {"headlines": [{"text": h, "pin": 1} for h in _headlines(3)]},
        "headline position(s) 2 cannot be filled",
        id="every-headline-pinned-to-1",
    ),
    pytest.param(
        {"descriptions": [{"text": "First description.", "pin": 3}, "Second description."]},
        "pinned to position 3 (a description has positions 1 to 2)",
        id="description-pin-3",
    ),
    pytest.param({"final_url": "   "}, "the final URL is empty", id="empty-url"),
    pytest.param(
        {"final_url": "javascript:alert(1)"}, "is not an http(s) address", id="javascript-url"
    ),
    pytest.param(
        {"final_url": "https://user:pw@example.com/"},
        "user name or password",
        id="credentials-in-url",
    ),
    pytest.param(
        {"path1": "a-very-long-display-path"},
        "path1 'a-very-long-display-path' is 24",
        id="long-path",
    ),
    pytest.param({"keywords": [" ".join(["word"] * 11)]}, "more than 10 words", id="long-keyword"),
    pytest.param(
        {"geo_targets": ["ATLANTIS"]}, "no geo target for 'ATLANTIS'", id="unknown-region"
    ),
    pytest.param(
        {"headlines": [*_headlines(2), f"Hi {marker(NONCE, 'first_name')}"]},
        "a search ad is not personal",
        id="contact-merge-field",
    ),
]


@pytest.mark.parametrize(("changes", "problem"), ROWS)
def test_validate_reports_each_problem_with_its_text(changes: dict[str, Any], problem: str) -> None:
    found = _problems(**changes)
    if problem:
        assert any(problem in p for p in found), found
    else:
        assert found == []


def test_ad_length_counts_characters_not_bytes_and_composes_accents() -> None:
    assert ad_length("Zürich") == 6
    assert ad_length("Zu\u0308rich") == 6  # decomposed ü counts once
    assert ad_length("東京") == 4


def test_bad_content_is_a_permanent_error_naming_the_field() -> None:
    with pytest.raises(PermanentError, match="daily_budget_micros"):
        SearchChannel().render(request({**CONTENT, "daily_budget_micros": 12_345}))


def test_copy_comes_from_the_template_file_when_the_content_has_none() -> None:
    content = {k: v for k, v in CONTENT.items() if k not in ("headlines", "descriptions")}
    template = (
        "# the ad copy\n[headlines]\n{{ vars.product }} & More\n{{ fields.search_headline }}\n"
        "{{ fields.missing }}\nCloud Security Review\n[descriptions]\n"
        "Close the gaps with {{ brand.name }}.\nBook a review today.\n"
    )
    draft = SearchChannel().render(request(content, template=template))
    assert draft.parts["headlines"].splitlines() == [
        "Northwind Shield & More",  # autoescaped by the engine, plain text again here
        "Hybrid Cloud sicher in 45 Tag",
        "Cloud Security Review",  # an empty field's line is dropped
    ]
    assert (
        draft.parts["descriptions"].splitlines()[0] == "Close the gaps with Nordlicht Systemhaus."
    )


def test_template_text_outside_a_section_is_refused() -> None:
    content = {k: v for k, v in CONTENT.items() if k != "headlines"}
    with pytest.raises(PermanentError, match="before \\[headlines\\]"):
        SearchChannel().render(request(content, template="stray line\n[headlines]\nA\n"))


def test_preview_looks_like_a_search_result_and_escapes_partner_text() -> None:
    context = {"fields": {"search_headline": "<script>x</script>"}, "brand": {"name": "A&B <i>"}}
    draft = SearchChannel().render(request(context=context))
    html = draft.preview_html
    assert '<span style="font-weight:bold">Ad</span> · northwind.example/shield' in html
    assert "&lt;script&gt;x&lt;/script&gt; | Northwind Shield Partner | Free Cloud" in html
    assert "A&amp;B &lt;i&gt;" in html
    assert "<script>" not in html and "<i>" not in html


def test_final_url_carries_utm_parameters_naming_campaign_touch_and_partner() -> None:
    url = with_utm(
        "https://x.example/p?utm_source=old&a=1",
        campaign="c1",
        touch="t1",
        partner="Alpenrand IT AG",
    )
    assert url == (
        "https://x.example/p?a=1&utm_source=google&utm_medium=cpc&utm_campaign=c1"
        "&utm_content=t1&utm_partner=alpenrand-it-ag"
    )


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        pytest.param("NA", ["US", "CA"], id="na"),
        pytest.param("dach", ["DE", "AT", "CH"], id="dach-lowercase"),
        pytest.param("DE, uk", ["DE", "GB"], id="country-codes"),
        pytest.param(["DACH", "DE", "GB"], ["DE", "AT", "CH", "GB"], id="no-duplicates"),
    ],
)
def test_regions_map_to_countries(region: Any, expected: list[str]) -> None:
    assert countries(region) == expected


def test_countries_are_2000_plus_their_iso_number() -> None:
    assert geo_target_constant("US") == "geoTargetConstants/2840"
    assert geo_target_constant("DE") == "geoTargetConstants/2276"
    with pytest.raises(UnknownRegion):
        countries("MARS")


def test_utm_uses_the_engines_campaign_key_and_partner_external_id() -> None:
    req = request(campaign_key="cloud-q3", partner_external_id="P1001")
    url = SearchChannel().render(req).parts["final_url"]
    assert "utm_campaign=cloud-q3" in url and "utm_partner=p1001" in url
