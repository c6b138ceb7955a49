"""Partner regions and country codes as Google Ads geo target constants.

Google's country criteria are ``geoTargetConstants/<2000 + ISO 3166-1 numeric code>``
(Germany, ISO 276, is 2276; the United States, ISO 840, is 2840). A partner's region is
either one of the sales regions below or a comma-separated list of ISO alpha-2 country
codes. The sales regions are deliberately small lists of the largest markets, not every
country of the region: a small partner should narrow its touch with ``geo_targets``.

=======  ==================================================================
Region   Countries
=======  ==================================================================
NA       US, CA
LATAM    MX, BR, AR, CL, CO
EMEA     GB, DE, FR, ES, IT, NL, BE, CH, AT, SE, DK, NO, FI, IE, PL, PT,
         AE, SA, ZA, IL
DACH     DE, AT, CH
NORDICS  SE, DK, NO, FI
BENELUX  BE, NL, LU
UKI      GB, IE
APAC     AU, NZ, JP, SG, IN, KR, HK
ANZ      AU, NZ
=======  ==================================================================
"""

from __future__ import annotations

COUNTRIES: dict[str, int] = {
    "AE": 784, "AR": 32, "AT": 40, "AU": 36, "BE": 56, "BR": 76, "CA": 124, "CH": 756,
    "CL": 152, "CO": 170, "CZ": 203, "DE": 276, "DK": 208, "ES": 724, "FI": 246, "FR": 250,
    "GB": 826, "HK": 344, "IE": 372, "IL": 376, "IN": 356, "IT": 380, "JP": 392, "KR": 410,
    "LU": 442, "MX": 484, "NL": 528, "NO": 578, "NZ": 554, "PL": 616, "PT": 620, "SA": 682,
    "SE": 752, "SG": 702, "US": 840, "ZA": 710,
}  # fmt: skip
"""ISO 3166-1 alpha-2 -> numeric, for the countries partnercast knows how to target."""

ALIASES = {"UK": "GB"}

REGIONS: dict[str, tuple[str, ...]] = {
    "NA": ("US", "CA"),
    "LATAM": ("MX", "BR", "AR", "CL", "CO"),
    "EMEA": (
        "GB", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "SE",
        "DK", "NO", "FI", "IE", "PL", "PT", "AE", "SA", "ZA", "IL",
    ),
    "DACH": ("DE", "AT", "CH"),
    "NORDICS": ("SE", "DK", "NO", "FI"),
    "BENELUX": ("BE", "NL", "LU"),
    "UKI": ("GB", "IE"),
    "APAC": ("AU", "NZ", "JP", "SG", "IN", "KR", "HK"),
    "ANZ": ("AU", "NZ"),
}  # fmt: skip


class UnknownRegion(ValueError):
    """A region or country code that has no geo target here."""


def countries(codes: str | list[str] | tuple[str, ...]) -> list[str]:
    """Country codes for regions and country codes, in order, without duplicates.

    Accepts ``"EMEA"``, ``"DE, AT"``, ``["DACH", "GB"]``; case does not matter.
    """
    items = codes.split(",") if isinstance(codes, str) else list(codes)
    found: list[str] = []
    for item in items:
        code = item.strip().upper().replace("-", "")
        if not code:
            continue
        code = ALIASES.get(code, code)
        expanded = REGIONS.get(code) or ((code,) if code in COUNTRIES else None)
        if expanded is None:
            known = ", ".join(sorted(REGIONS))
            raise UnknownRegion(
                f"no geo target for {item.strip()!r} (regions: {known}; or ISO country codes)"
            )
        found.extend(country for country in expanded if country not in found)
    return found


def geo_target_constant(country: str) -> str:
    """The geo target constant resource name of one ISO alpha-2 country code."""
    return f"geoTargetConstants/{2000 + COUNTRIES[country]}"
