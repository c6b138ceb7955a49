"""A responsive search ad: built from a render request, checked, previewed.

The ad copy comes from the touch's content (``headlines`` / ``descriptions`` as Jinja
strings) or, for whichever of the two the content leaves out, from the touch's template
file ``templates/<template>.<locale>.txt``::

    # Lines starting with "#" are comments; blank lines are skipped, so an optional
    # editable field left empty simply drops its headline.
    [headlines]
    {{ fields.search_headline }}
    {{ vars.product }} for {{ brand.name }}
    [descriptions]
    {{ fields.search_description }}

Google counts ad text in characters, with double-width (CJK) characters counting as two;
text is NFC-normalised first so that a decomposed "é" counts once.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from partnercast.channels.search.geo import UnknownRegion, countries
from partnercast.channels.search.models import AdText, SearchContent
from partnercast.plugins import PermanentError, RenderRequest
from partnercast.plugins.personalization import Personalizer

HEADLINES = (3, 15)
DESCRIPTIONS = (2, 4)
HEADLINE_MAX = 30
DESCRIPTION_MAX = 90
PATH_MAX = 15
KEYWORD_MAX = 80
KEYWORD_WORDS = 10
URL_MAX = 2048
# Positions that every ad shows, so some text must be able to fill them.
REQUIRED_POSITIONS = {"headline": (1, 2), "description": (1,)}
PIN_LIMIT = {"headline": 3, "description": 2}


def ad_length(text: str) -> int:
    """Length as Google Ads counts it: characters, double-width ones count twice."""
    normal = unicodedata.normalize("NFC", text)
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in normal)


@dataclass
class Line:
    """One headline or description as it will be sent."""

    text: str
    pin: int | None = None


@dataclass
class SearchAd:
    """Everything one partner's search campaign is made of; JSON-safe via :meth:`to_dict`."""

    campaign: str
    touch: str
    partner: str
    locale: str
    headlines: list[Line]
    descriptions: list[Line]
    final_url: str
    keywords: list[tuple[str, str]]
    """(text, match type) pairs; match types are broad, phrase or exact."""
    countries: list[str]
    daily_budget_micros: int
    status: str = "paused"
    path1: str = ""
    path2: str = ""
    max_cpc_micros: int | None = None
    nonce: str = ""
    problems: list[str] = field(default_factory=list)
    """Problems found while building (an unknown region, say), reported by validate."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchAd:
        values = dict(data)
        values["headlines"] = [Line(**line) for line in values["headlines"]]
        values["descriptions"] = [Line(**line) for line in values["descriptions"]]
        values["keywords"] = [tuple(pair) for pair in values["keywords"]]
        return cls(**values)

    def label(self) -> str:
        """A human name for the campaign: campaign · partner · touch."""
        return " · ".join(part for part in (self.campaign, self.partner, self.touch) if part)


# --- building ---------------------------------------------------------------------------


def build_ad(request: RenderRequest, content: SearchContent) -> SearchAd:
    """Render the ad's texts and URL for one partner and locale (no network)."""
    text = _text_renderer(request)
    template_sections: dict[str, list[str]] | None = None
    if not content.headlines or not content.descriptions:
        template_sections = _sections(request.render_template(request.template))
    headlines = _lines(content.headlines, text) if content.headlines else None
    descriptions = _lines(content.descriptions, text) if content.descriptions else None
    if headlines is None:
        headlines = [Line(t) for t in (template_sections or {}).get("headlines", [])]
    if descriptions is None:
        descriptions = [Line(t) for t in (template_sections or {}).get("descriptions", [])]
    # Older engines leave campaign_key empty; the layered context has it too.
    campaign = getattr(request, "campaign_key", "") or text("{{ campaign.key }}")
    partner = request.identity.get("name", "")
    partner_tag = getattr(request, "partner_external_id", "") or partner
    problems: list[str] = []
    try:
        targets = countries(content.geo_targets or text("{{ partner.region }}"))
    except UnknownRegion as error:
        targets, problems = [], [str(error)]
    final_url = text(content.final_url).strip()
    return SearchAd(
        campaign=campaign,
        touch=request.touch_key,
        partner=partner,
        locale=request.locale,
        headlines=headlines,
        descriptions=descriptions,
        final_url=with_utm(
            final_url, campaign=campaign, touch=request.touch_key, partner=partner_tag
        )
        if final_url
        else "",
        keywords=[(k.text, k.match_type or content.match_type) for k in content.keyword_list()],
        countries=targets,
        daily_budget_micros=content.daily_budget_micros,
        status=content.status,
        path1=text(content.path1).strip() if content.path1 else "",
        path2=text(content.path2).strip() if content.path2 else "",
        max_cpc_micros=content.max_cpc_micros,
        nonce=request.nonce,
        problems=problems,
    )


def _text_renderer(request: RenderRequest) -> Any:
    def text(source: str) -> str:
        return " ".join(request.render_string(source, html=False).split())

    return text


def _lines(items: list[str | AdText], text: Any) -> list[Line]:
    lines: list[Line] = []
    for item in items:
        source, pin = (item, None) if isinstance(item, str) else (item.text, item.pin)
        rendered = text(source)
        if rendered:
            lines.append(Line(rendered, pin))
    return lines


_SECTION = re.compile(r"^\[(headlines|descriptions)\]$")


def _sections(rendered: str) -> dict[str, list[str]]:
    """The ``[headlines]`` and ``[descriptions]`` lines of a rendered template file.

    The engine renders ``.txt`` templates as plain text; the preview escapes what it shows.
    """
    sections: dict[str, list[str]] = {"headlines": [], "descriptions": []}
    current: str | None = None
    for number, raw in enumerate(rendered.splitlines(), start=1):
        line = " ".join(raw.split())
        if not line or line.startswith("#"):
            continue
        match = _SECTION.match(line)
        if match:
            current = match.group(1)
        elif current is None:
            raise PermanentError(
                f"line {number} of the search ad template comes before [headlines] or "
                "[descriptions]"
            )
        else:
            sections[current].append(line)
    return sections


def with_utm(url: str, *, campaign: str, touch: str, partner: str) -> str:
    """``url`` with UTM parameters naming the campaign, the touch and the partner.

    utm_source=google, utm_medium=cpc, utm_campaign=<campaign key>, utm_content=<touch
    key>, utm_partner=<the partner's external id, else its name, as a slug>. Other query
    parameters are kept; UTM parameters already in the URL are replaced.
    """
    parts = urlsplit(url)
    ours = {
        "utm_source": "google",
        "utm_medium": "cpc",
        "utm_campaign": campaign,
        "utm_content": touch,
        "utm_partner": slug(partner),
    }
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ours]
    query = urlencode([*kept, *((k, v) for k, v in ours.items() if v)])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


# --- checking ---------------------------------------------------------------------------


def problems(ad: SearchAd) -> list[str]:
    """Everything that would make Google refuse the ad, or make it unsafe to publish."""
    found = list(ad.problems)
    found += _text_problems("headline", ad.headlines, HEADLINES, HEADLINE_MAX)
    found += _text_problems("description", ad.descriptions, DESCRIPTIONS, DESCRIPTION_MAX)
    found += _pin_problems("headline", ad.headlines)
    found += _pin_problems("description", ad.descriptions)
    found += _url_problems(ad.final_url)
    for name, value in (("path1", ad.path1), ("path2", ad.path2)):
        if ad_length(value) > PATH_MAX:
            found.append(f"{name} {value!r} is {ad_length(value)} characters (at most {PATH_MAX})")
    if ad.path2 and not ad.path1:
        found.append("path2 is set without path1")
    found += _keyword_problems(ad.keywords)
    if not ad.countries and not ad.problems:
        found.append("the ad has no geo target: set the partner's region or geo_targets")
    markers = Personalizer(ad.nonce) if ad.nonce else None
    every_text = [line.text for line in (*ad.headlines, *ad.descriptions)]
    if markers and any(markers.has_markers(t) for t in [*every_text, ad.final_url]):
        found.append("a search ad is not personal: remove contact merge fields from its text")
    return found


def _text_problems(kind: str, lines: list[Line], bounds: tuple[int, int], limit: int) -> list[str]:
    low, high = bounds
    found: list[str] = []
    if not low <= len(lines) <= high:
        found.append(f"the ad has {len(lines)} {kind}s (it needs {low} to {high})")
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        length = ad_length(line.text)
        if length > limit:
            found.append(f"{kind} {number} {line.text!r} is {length} characters (at most {limit})")
        key = line.text.casefold()
        if key in seen:
            found.append(f"{kind} {number} {line.text!r} repeats an earlier {kind}")
        seen.add(key)
    return found


def _pin_problems(kind: str, lines: list[Line]) -> list[str]:
    found: list[str] = []
    limit = PIN_LIMIT[kind]
    for number, line in enumerate(lines, start=1):
        if line.pin is not None and not 1 <= line.pin <= limit:
            found.append(
                f"{kind} {number} {line.text!r} is pinned to position {line.pin} "
                f"(a {kind} has positions 1 to {limit})"
            )
    pinned = {line.pin for line in lines if line.pin is not None}
    free = sum(1 for line in lines if line.pin is None)
    unfilled = [p for p in REQUIRED_POSITIONS[kind] if p not in pinned]
    if pinned and len(unfilled) > free:
        where = ", ".join(str(p) for p in unfilled)
        found.append(
            f"{kind} position(s) {where} cannot be filled: every {kind} is pinned elsewhere "
            f"({free} unpinned)"
        )
    return found


def _url_problems(url: str) -> list[str]:
    if not url:
        return ["the final URL is empty"]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"the final URL {url!r} is not an http(s) address"]
    if parts.username or parts.password:
        return ["the final URL must not carry a user name or password"]
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in url):
        return ["the final URL contains spaces or control characters"]
    if len(url) > URL_MAX:
        return [f"the final URL is {len(url)} characters (at most {URL_MAX})"]
    return []


def _keyword_problems(keywords: list[tuple[str, str]]) -> list[str]:
    found: list[str] = []
    if not keywords:
        found.append("the ad has no keywords")
    for text, _ in keywords:
        if not text:
            found.append("a keyword is empty")
        elif len(text) > KEYWORD_MAX:
            found.append(f"keyword {text!r} is {len(text)} characters (at most {KEYWORD_MAX})")
        elif len(text.split()) > KEYWORD_WORDS:
            found.append(f"keyword {text!r} has more than {KEYWORD_WORDS} words")
    return found


# --- preview ----------------------------------------------------------------------------


def display_url(ad: SearchAd) -> str:
    """The green-ish URL line of a search result: host, then path1 and path2."""
    host = urlsplit(ad.final_url).hostname or ""
    host = host.removeprefix("www.")
    return "/".join(part for part in (host, ad.path1, ad.path2) if part)


def preview_html(ad: SearchAd) -> str:
    """The ad as a search result shows it: "Ad · url", blue headlines, description.

    Shows the first three headlines (pinned ones in their positions) and the first two
    descriptions; every text is escaped.
    """
    headlines = " | ".join(html.escape(t) for t in _shown(ad.headlines, 3))
    description = " ".join(html.escape(t) for t in _shown(ad.descriptions, 2))
    return (
        '<div class="pc-search-ad" style="font-family:Arial,sans-serif;max-width:600px;'
        'padding:12px 0">'
        '<div style="font-size:14px;color:#202124;line-height:20px">'
        f'<span style="font-weight:bold">Ad</span> · {html.escape(display_url(ad))}</div>'
        '<div style="font-size:20px;line-height:26px;color:#1a0dab;padding:4px 0">'
        f"{headlines}</div>"
        f'<div style="font-size:14px;line-height:22px;color:#4d5156">{description}</div>'
        "</div>"
    )


def _shown(lines: list[Line], count: int) -> list[str]:
    """The texts in the first ``count`` positions: pinned ones first, then the others."""
    slots: list[str | None] = [None] * count
    for line in lines:
        if line.pin and line.pin <= count and slots[line.pin - 1] is None:
            slots[line.pin - 1] = line.text
    free = iter(line.text for line in lines if not line.pin)
    filled = [slot if slot is not None else next(free, None) for slot in slots]
    return [text for text in filled if text]


def plain_text(ad: SearchAd) -> str:
    """The ad as text, for the CLI preview."""
    lines = [f"Ad · {display_url(ad)}", " | ".join(_shown(ad.headlines, 3))]
    lines.append(" ".join(_shown(ad.descriptions, 2)))
    lines.append("")
    lines += [f"Headline {n}: {line.text}" for n, line in enumerate(ad.headlines, start=1)]
    lines += [f"Description {n}: {line.text}" for n, line in enumerate(ad.descriptions, 1)]
    lines.append("Keywords: " + ", ".join(f"{t} ({m})" for t, m in ad.keywords))
    lines.append("Final URL: " + ad.final_url)
    return "\n".join(lines) + "\n"
