"""The email channel's checks of a rendered template: each mistake that makes mjml-python
refuse a document, found where it is; what it compiles but drops (an unknown tag) as a
warning; an unsubscribe link missing from what was rendered.

Every "refused" row is checked against mjml-python itself first, so the table cannot
drift from what the compiler really refuses.
"""

from __future__ import annotations

import pytest
from mjml import mjml2html

from partnercast.channels.email.channel import EmailChannel
from partnercast.channels.email.mjml_check import check_mjml, explain
from partnercast.plugins import TemplateFinding
from partnercast.plugins.personalization import marker, new_nonce

BODY = (
    "<mjml>\n<mj-body>\n<mj-section>\n<mj-column>\n"
    "{}\n"
    "</mj-column>\n</mj-section>\n</mj-body>\n</mjml>\n"
)


def document(inner: str) -> str:
    return BODY.format(inner)


REFUSED = [
    ("<mj-text>hi", "<mj-text>", "MJML: <mj-text> is not closed before </mj-column>"),
    (
        '<mj-image src="x.png">',
        "<mj-image",
        "MJML: <mj-image> is not closed before </mj-column> (write <mj-image ... />)",
    ),
    ("<mj-text><p>a</mj-text>", "<p>", "MJML: <p> is not closed before </mj-text>"),
    ("<mj-text>a</p></mj-text>", "</p>", "MJML: </p> closes no open <p>"),
    (
        "<mj-text>a < b</mj-text>",
        "< b",
        "MJML: '<' that starts no tag (write &lt; for a less-than sign)",
    ),
    (
        "<mj-text padding=10px>x</mj-text>",
        "padding=",
        'MJML: <mj-text>: the value of padding must be in quotes (padding="10px")',
    ),
    (
        "<mj-text>x</mj-text><!-- note",
        "<!--",
        "MJML: <!-- is never closed (end the comment with -->)",
    ),
]


@pytest.mark.parametrize(("inner", "at", "message"), REFUSED, ids=[r[2] for r in REFUSED])
def test_a_refused_document_is_explained_at_its_offset(inner: str, at: str, message: str) -> None:
    text = document(inner)
    with pytest.raises(ValueError):
        mjml2html(text)  # the compiler itself refuses it

    assert check_mjml(text) == [TemplateFinding(message, offset=text.index(at))]
    assert explain(text) == f"{message} (line 5 of the rendered MJML)"


@pytest.mark.parametrize(
    "inner",
    [
        "<mj-text>fine</mj-text>",
        "<mj-text>a<br>b <img src='x.png'> &amp; c</mj-text>",
        '<mj-button href="https://x.example">Go</mj-button>',
        '<mj-image src="x.png" />',
        "<mj-text><!-- a comment --><p>closed</p></mj-text>",
    ],
)
def test_a_document_that_compiles_has_no_findings(inner: str) -> None:
    text = document(inner)
    mjml2html(text)

    assert check_mjml(text) == []
    assert explain(text) == ""


def test_an_unknown_tag_compiles_and_is_a_warning_with_the_nearest_tag() -> None:
    text = document("<mj-txt>dropped by the compiler</mj-txt>")
    mjml2html(text)

    assert check_mjml(text) == [
        TemplateFinding(
            "unknown MJML tag <mj-txt> (did you mean <mj-text>?)",
            offset=text.index("<mj-txt>"),
            warning=True,
        )
    ]


def test_a_template_that_is_not_mjml_says_so() -> None:
    assert check_mjml("Hello {{ name }}") == [
        TemplateFinding("MJML: an email template starts with <mjml>", offset=0)
    ]
    assert check_mjml("  \n") == [
        TemplateFinding(
            "MJML: the template renders to nothing (an email starts with <mjml>)", offset=0
        )
    ]


def test_the_channel_also_wants_the_unsubscribe_link_in_what_is_rendered() -> None:
    """The loader checks that a template uses links.unsubscribe; a condition may still
    leave it out of one locale or variant, which only the rendered text shows."""
    link = f'<a href="{marker(new_nonce(), "unsubscribe_url")}">Unsubscribe</a>'
    shown = document(f"<mj-txt>x</mj-txt><mj-text>{link}</mj-text>")
    hidden = document("<mj-text>Reply STOP to stop.</mj-text>")

    assert [f.message for f in EmailChannel.check_rendered(shown)] == [
        "unknown MJML tag <mj-txt> (did you mean <mj-text>?)"
    ]
    assert EmailChannel.check_rendered(hidden) == [
        TemplateFinding(
            "the email shows no unsubscribe link when rendered: use {{ links.unsubscribe }} "
            "where no condition can hide it"
        )
    ]
