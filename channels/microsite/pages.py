"""The HTML around a landing page: the shell, the lead form, the thank-you page, the CSS.

The templates are files of this package (``templates/shell.html``, ``form.html``,
``message.html``, ``site.css``), the channel's own (not partner-editable), rendered with
autoescape:
every value passed in is data and comes out escaped, except the page body, which is the
sandbox's output for the approved content (partner text already escaped there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from partnercast.channels.microsite.leadform import MAX_LENGTHS, LeadForm

INPUTS = (
    ("email", "email", "email"),
    ("name", "text", "name"),
    ("company", "text", "organization"),
    ("message", "textarea", "off"),
)

_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}){1,2}")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("partnercast.channels.microsite", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=True),
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
        .get_template("form.html")
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
    return Markup(_environment().get_template("message.html").render(heading=heading, text=text))


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
        .get_template("shell.html")
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
    return (
        _environment()
        .get_template("site.css")
        .render(
            primary=_color(brand.get("primary_color", ""), "#1f4e79"),
            secondary=_color(brand.get("secondary_color", ""), "#2e8b57"),
        )
    )


def _color(value: str, default: str) -> str:
    """Only ``#rgb``/``#rrggbb`` reach the stylesheet: a colour field cannot inject CSS."""
    return value if _COLOR.fullmatch(value or "") else default
