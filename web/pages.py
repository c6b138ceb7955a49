"""The HTML around a landing page: the shell, the lead form, the thank-you page, the CSS.

These templates are the engine's own (not partner-editable), rendered with autoescape:
every value passed in is data and comes out escaped, except the page body, which is the
sandbox's output for the approved content (partner text already escaped there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from jinja2 import DictLoader, Environment, StrictUndefined
from markupsafe import Markup

from partnercast.web.leadform import MAX_LENGTHS, LeadForm

SHELL = """<!doctype html>
<html lang="{{ locale }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
{% if csp_meta %}<meta http-equiv="Content-Security-Policy" content="{{ csp_meta }}">
{% endif %}<meta name="referrer" content="strict-origin-when-cross-origin">
<title>{{ title }}</title>
{% if description %}<meta name="description" content="{{ description }}">
{% endif %}{% if css_href %}<link rel="stylesheet" href="{{ css_href }}">
{% endif %}</head>
<body>
<main class="pc-page">
{{ before }}
{{ form }}
{{ after }}
</main>
{% if pixel %}<img class="pc-pixel" src="{{ pixel }}" alt="" width="1" height="1">{% endif %}
</body>
</html>
"""

FORM = """<section class="pc-form" id="contact" aria-labelledby="pc-form-heading">
<h2 id="pc-form-heading">{{ heading }}</h2>
{% if notice %}<p class="pc-notice" role="alert">{{ notice }}</p>
{% endif %}<form method="post" action="{{ action }}" novalidate>
<input type="hidden" name="token" value="{{ token }}">
{% for key, value in utm.items() %}<input type="hidden" name="{{ key }}" value="{{ value }}">
{% endfor %}{% for name, kind, auto in inputs %}
<div class="pc-field{% if errors.get(name) %} pc-invalid{% endif %}">
<label for="pc-{{ name }}">{{ words[name] }}</label>
{% if kind == "textarea" %}<textarea id="pc-{{ name }}" name="{{ name }}" rows="5" \
maxlength="{{ max_lengths[name] }}"{{ described(name) }}>{{ values[name] }}</textarea>
{% else %}<input id="pc-{{ name }}" name="{{ name }}" type="{{ kind }}" \
value="{{ values[name] }}" autocomplete="{{ auto }}" maxlength="{{ max_lengths[name] }}"\
{{ described(name) }}>
{% endif %}{% if errors.get(name) %}<p class="pc-error" id="pc-{{ name }}-error">\
{{ errors[name] }}</p>
{% endif %}</div>
{% endfor %}
<div class="pc-field pc-consent{% if errors.get('consent') %} pc-invalid{% endif %}">
<label><input type="checkbox" name="consent" value="yes"{% if consent %} checked{% endif %}\
{{ described('consent') }}> {{ consent_text }}</label>
{% if errors.get("consent") %}<p class="pc-error" id="pc-consent-error">\
{{ errors.consent }}</p>
{% endif %}</div>
<div class="pc-hp" aria-hidden="true"><label for="pc-website">{{ words.honeypot }}</label>
<input id="pc-website" name="website" type="text" tabindex="-1" autocomplete="off" value=""></div>
<button type="submit">{{ words.submit }}</button>
</form>
</section>"""

MESSAGE = """<section class="pc-message"><h1>{{ heading }}</h1><p>{{ text }}</p></section>"""

INPUTS = (
    ("email", "email", "email"),
    ("name", "text", "name"),
    ("company", "text", "organization"),
    ("message", "textarea", "off"),
)

BASE_CSS = """:root{--pc-primary:%(primary)s;--pc-secondary:%(secondary)s}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2329;
background:#f6f7f9}
.pc-page{max-width:60rem;margin:0 auto;padding:2rem 1.25rem;background:#fff;min-height:100vh}
h1,h2,h3{line-height:1.2;color:var(--pc-primary)}
a{color:var(--pc-primary)}
.pc-hero{padding:1.5rem 0;border-bottom:4px solid var(--pc-primary)}
.pc-logo{max-height:3.5rem;max-width:14rem}
.pc-cta,.pc-form button{display:inline-block;background:var(--pc-primary);color:#fff;border:0;
border-radius:.35rem;padding:.7rem 1.4rem;font-size:1rem;text-decoration:none;cursor:pointer}
.pc-columns{display:grid;grid-template-columns:repeat(auto-fit,minmax(16rem,1fr));gap:1.5rem}
.pc-legal{font-size:.8rem;color:#5b6570;border-top:1px solid #dde2e7;margin-top:2rem;
padding-top:1rem}
.pc-form{margin:2rem 0;padding:1.5rem;border:1px solid #dde2e7;border-radius:.5rem;
background:#fbfcfd;max-width:36rem}
.pc-field{margin:0 0 1rem}
.pc-field label{display:block;font-weight:600;margin-bottom:.25rem}
.pc-field input[type=text],.pc-field input[type=email],.pc-field textarea{width:100%%;
padding:.55rem;border:1px solid #aab4bf;border-radius:.3rem;font:inherit}
.pc-consent label{font-weight:400}
.pc-invalid input,.pc-invalid textarea{border-color:#b3261e}
.pc-error,.pc-notice{color:#b3261e;margin:.25rem 0 0}
.pc-notice{font-weight:600;margin-bottom:1rem}
.pc-hp{position:absolute;left:-10000px;width:1px;height:1px;overflow:hidden}
.pc-pixel{position:absolute;width:1px;height:1px}
.pc-accent{color:#5b6570;border-left:4px solid var(--pc-secondary);padding-left:.5rem}
"""
_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=DictLoader({"shell": SHELL, "form": FORM, "message": MESSAGE}),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


@dataclass
class FormView:
    """Everything the lead form shows: the visitor's values and what is wrong with them."""

    action: str
    token: str
    words: Mapping[str, str]
    partner: str
    form: LeadForm = field(default_factory=LeadForm)
    errors: Mapping[str, str] = field(default_factory=dict)
    notice: str = ""


def form_html(view: FormView) -> Markup:
    """The lead form, with the visitor's values and a message next to each wrong field."""

    def described(name: str) -> Markup:
        if not view.errors.get(name):
            return Markup("")
        return Markup(' aria-invalid="true" aria-describedby="pc-{}-error"').format(name)

    html = (
        _environment()
        .get_template("form")
        .render(
            heading=view.words["form_heading"].format(partner=view.partner),
            notice=view.notice,
            action=view.action,
            token=view.token,
            utm=view.form.utm,
            inputs=INPUTS,
            words=view.words,
            values=view.form.values,
            max_lengths=MAX_LENGTHS,
            errors=view.errors,
            consent=view.form.consent,
            consent_text=consent_text(view.words, view.partner),
            described=described,
        )
    )
    return Markup(html)  # autoescaped template output


def consent_text(words: Mapping[str, str], partner: str) -> str:
    """The consent statement the visitor agrees to, word for word."""
    return words["consent"].format(partner=partner)


def message_html(heading: str, text: str) -> Markup:
    """A short heading and paragraph (thank-you and error pages)."""
    return Markup(_environment().get_template("message").render(heading=heading, text=text))


@dataclass(frozen=True)
class Shell:
    """The document around a page's content."""

    locale: str
    title: str
    css_href: str
    description: str = ""
    csp_meta: str = ""
    pixel: str = ""


def page_html(shell: Shell, before: Markup, form: Markup, after: Markup = Markup("")) -> str:
    """The whole HTML document."""
    return (
        _environment()
        .get_template("shell")
        .render(
            locale=shell.locale,
            title=shell.title,
            css_href=shell.css_href,
            description=shell.description,
            csp_meta=shell.csp_meta,
            pixel=shell.pixel,
            before=before,
            form=form,
            after=after,
        )
    )


def site_css(brand: Mapping[str, str]) -> str:
    """The stylesheet, with the partner's colours when they are plain hex colours."""
    return BASE_CSS % {
        "primary": _color(brand.get("primary_color", ""), "#1f4e79"),
        "secondary": _color(brand.get("secondary_color", ""), "#2e8b57"),
    }


def _color(value: str, default: str) -> str:
    """Only ``#rgb``/``#rrggbb`` reach the stylesheet: a colour field cannot inject CSS."""
    return value if _COLOR.fullmatch(value or "") else default
