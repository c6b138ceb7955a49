"""Brand colours that stay readable: WCAG 2.1 contrast, and the nearest colour that passes.

A partner's brand colour is used for headings, links and buttons. Many brand colours are
too light on white (WCAG 2.1 AA wants 4.5:1 for normal text); rather than refusing them,
:func:`readable_colour` keeps the hue and saturation and moves the lightness until the
colour passes against the background, and :func:`button_colours` picks white or
near-black text for a button of the brand colour, darkening (or lightening) the button
when neither passes. A colour that cannot be read at all (not a colour) is replaced by the
engine's default.

It lives with the plugin API because every page and message that shows a brand uses it:
the web's own pages, the rendering context of every campaign touch (campaigns.rendering:
``brand.primary_color`` is the readable one), and any channel plugin's templates.
"""

from __future__ import annotations

import colorsys
import re

AA_TEXT = 4.5
DEFAULT_BRAND = "#1a56db"
WHITE = "#ffffff"
INK = "#111111"
_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def parse_hex(colour: str) -> tuple[int, int, int] | None:
    """``#abc``/``#aabbcc`` (with or without ``#``) -> (r, g, b); None if not a colour."""
    found = _HEX.match((colour or "").strip())
    if not found:
        return None
    digits = found.group(1)
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def to_hex(rgb: tuple[float, float, float]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(max(0, min(255, round(c))) for c in rgb))


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    """WCAG relative luminance (0 black .. 1 white)."""
    rgb = parse_hex(colour)
    if rgb is None:
        raise ValueError(f"not a colour: {colour!r}")
    r, g, b = (_channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    """WCAG contrast ratio of two colours (1 .. 21)."""
    a, b = sorted((luminance(first), luminance(second)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def _with_lightness(rgb: tuple[int, int, int], lightness: float) -> str:
    h, _l, s = colorsys.rgb_to_hls(*(c / 255 for c in rgb))
    r, g, b = colorsys.hls_to_rgb(h, lightness, s)
    return to_hex((r * 255, g * 255, b * 255))


def _adjusted(colour: str, background: str, ratio: float) -> str:
    """The colour of the same hue, lightness moved away from the background's as little
    as passes ``ratio`` (binary search on HLS lightness)."""
    rgb = parse_hex(colour)
    assert rgb is not None
    _h, lightness, _s = colorsys.rgb_to_hls(*(c / 255 for c in rgb))
    darken = luminance(background) > 0.18  # light background: go darker
    low, high = (0.0, lightness) if darken else (lightness, 1.0)
    best = _with_lightness(rgb, 0.0 if darken else 1.0)
    for _ in range(24):
        middle = (low + high) / 2
        candidate = _with_lightness(rgb, middle)
        if contrast_ratio(candidate, background) >= ratio:
            best = candidate
            low, high = (middle, high) if darken else (low, middle)
        else:
            low, high = (low, middle) if darken else (middle, high)
    if contrast_ratio(best, background) < ratio:  # rounding at the edge: black or white
        return INK if darken else WHITE
    return best


def readable_colour(brand_hex: str, background: str = WHITE, *, ratio: float = AA_TEXT) -> str:
    """``brand_hex`` if it passes ``ratio`` (4.5:1) as text on ``background``, else the
    nearest colour of the same hue that does; the default brand for a non-colour."""
    colour = to_hex(parse_hex(brand_hex) or parse_hex(DEFAULT_BRAND))  # type: ignore[arg-type]
    if contrast_ratio(colour, background) >= ratio:
        return colour
    return _adjusted(colour, background, ratio)


def button_colours(brand_hex: str, *, ratio: float = AA_TEXT) -> tuple[str, str]:
    """(background, text) for a button of the brand colour: white or ink text, whichever
    reads better; when neither reaches ``ratio`` the button is darkened under white text."""
    colour = to_hex(parse_hex(brand_hex) or parse_hex(DEFAULT_BRAND))  # type: ignore[arg-type]
    on_white, on_ink = contrast_ratio(colour, WHITE), contrast_ratio(colour, INK)
    if on_white >= ratio:
        return colour, WHITE
    if on_ink >= ratio:
        return colour, INK
    return _adjusted(colour, WHITE, ratio), WHITE


__all__ = ["button_colours", "contrast_ratio", "luminance", "readable_colour"]
