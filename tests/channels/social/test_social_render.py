"""Rendering and validating posts: each network's length rule, UTM links, partner copy."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from partnercast.channels.social.linkedin import LinkedInChannel
from partnercast.channels.social.post import PARTNER_COPY_REQUIRED, SocialChannel
from partnercast.channels.social.utm import links_in
from partnercast.channels.social.x import XChannel
from partnercast.plugins import PermanentError
from partnercast.plugins.personalization import marker

from .conftest import NONCE

# X links only hosts with a real top-level domain, so the tests use one.
LONG_URL = "https://northwind.com/shield/" + "a" * 150
CHANNELS = {"x": XChannel, "linkedin": LinkedInChannel}


@pytest.mark.parametrize(
    ("channel", "text", "length", "problem"),
    [
        pytest.param("x", "a" * 280, 280, "", id="x-280-latin"),
        pytest.param("x", "a" * 281, 281, "the post is 281 characters, X allows 280", id="x-281"),
        pytest.param("x", "a" * 250 + " " + LONG_URL, 274, "", id="x-url-counts-23"),
        pytest.param(
            "x",
            "a" * 257 + " " + LONG_URL,
            281,
            "the post is 281 characters, X allows 280",
            id="x-url-counts-23-over",
        ),
        pytest.param("x", "日" * 140, 280, "", id="x-cjk-counts-2"),
        pytest.param("x", "日本" * 70 + "a", 281, "X allows 280", id="x-cjk-over"),
        pytest.param("x", "👍" * 140, 280, "", id="x-emoji-counts-2"),
        pytest.param("x", "👩‍💻" * 141, 282, "the post is 282 characters", id="x-zwj-emoji-over"),
        pytest.param("x", "é" * 280, 280, "", id="x-accented-latin-counts-1"),
        pytest.param("linkedin", "a" * 3000, 3000, "", id="linkedin-3000"),
        pytest.param(
            "linkedin",
            "a" * 3001,
            3001,
            "the post is 3,001 characters, LinkedIn allows 3,000",
            id="linkedin-3001",
        ),
        pytest.param("linkedin", "日" * 3000, 3000, "", id="linkedin-cjk-counts-1"),
        pytest.param(
            "linkedin", "👍" * 1501, 3002, "LinkedIn allows 3,000", id="linkedin-emoji-utf16"
        ),
    ],
)
def test_length_rules(channel: str, text: str, length: int, problem: str, make_request) -> None:
    social: SocialChannel = CHANNELS[channel]()
    draft = social.render(make_request(text, channel=channel))
    assert social.length(draft.parts["text"]) == length
    problems = social.validate(draft)
    if problem:
        assert any(problem in p for p in problems), problems
    else:
        assert problems == []


def test_a_long_tagged_link_still_counts_23_on_x(make_request) -> None:
    content = {"link": "https://northwind.com/shield", "hashtags": ["CloudSecurity"]}
    draft = XChannel().render(make_request("a" * 235, content=content))
    # 235 + 2 newlines + 23 (link, whatever its UTM length) + 2 newlines + 14 (#CloudSecurity)
    assert len(links_in(draft.parts["text"])[0]) > 100
    assert XChannel().length(draft.parts["text"]) == 235 + 2 + 23 + 2 + 14
    assert XChannel().validate(draft) == []


@pytest.mark.parametrize(
    ("channel", "link", "expected"),
    [
        pytest.param(
            "x",
            "https://northwind.example/shield",
            {
                "utm_source": "x",
                "utm_medium": "social",
                "utm_campaign": "cloud-security",
                "utm_content": "launch-post",
                "utm_term": "P001",
            },
            id="x",
        ),
        pytest.param(
            "linkedin",
            "https://northwind.example/shield?ref=abc#top",
            {
                "ref": "abc",
                "utm_source": "linkedin",
                "utm_medium": "social",
                "utm_campaign": "cloud-security",
                "utm_content": "launch-post",
                "utm_term": "P001",
            },
            id="linkedin-keeps-query-and-fragment",
        ),
        pytest.param(
            "x",
            "https://northwind.example/shield?utm_source=partner-newsletter",
            {
                "utm_source": "partner-newsletter",
                "utm_medium": "social",
                "utm_campaign": "cloud-security",
                "utm_content": "launch-post",
                "utm_term": "P001",
            },
            id="a-chosen-parameter-is-kept",
        ),
    ],
)
def test_the_link_carries_utm_parameters(channel, link, expected, make_request) -> None:
    draft = CHANNELS[channel]().render(make_request(content={"link": link}, channel=channel))
    tagged = links_in(draft.parts["text"])[-1]
    assert draft.meta["link"] == tagged
    assert {k: v[0] for k, v in parse_qs(urlsplit(tagged).query).items()} == expected
    assert urlsplit(tagged).fragment == urlsplit(link).fragment


def test_links_in_the_text_are_tagged_and_not_repeated(make_request) -> None:
    text = "Read our checklist (https://northwind.example/shield). Then call us."
    content = {"link": "https://northwind.example/shield", "hashtags": "#Shield cloud"}
    draft = XChannel().render(make_request(text, content=content))
    post = draft.parts["text"]
    assert post.count("https://northwind.example/shield") == 1  # not appended again
    assert "utm_term=P001). Then call us." in post  # the closing bracket stays outside
    assert post.endswith("\n\n#Shield #cloud")


def test_without_a_partner_id_the_partner_name_is_used(make_request) -> None:
    request = make_request(content={"link": "https://n.example/"})
    from dataclasses import replace

    draft = XChannel().render(replace(request, partner_external_id=""))
    assert "utm_term=acme-it-services" in draft.parts["text"]


def test_hashtags_already_in_the_text_are_not_repeated(make_request) -> None:
    draft = XChannel().render(
        make_request(
            "Secure your #cloudsecurity now", content={"hashtags": ["CloudSecurity", "45days"]}
        )
    )
    assert draft.parts["text"] == "Secure your #cloudsecurity now\n\n#45days"


@pytest.mark.parametrize(
    ("text", "vendor", "required", "refused"),
    [
        pytest.param("Vendor words here.", "Vendor words here.", True, True, id="word-for-word"),
        pytest.param(
            "Vendor  words\n here. ", "Vendor words here.", True, True, id="only-whitespace-differs"
        ),
        pytest.param("Our own words here.", "Vendor words here.", True, False, id="partner-edited"),
        pytest.param("Vendor words here.", "Vendor words here.", False, False, id="not-required"),
    ],
)
def test_require_partner_copy(text, vendor, required, refused, make_request) -> None:
    for channel in ("x", "linkedin"):
        social = CHANNELS[channel]()
        content = {"require_partner_copy": required, "link": "https://n.example/"}
        problems = social.validate(
            social.render(make_request(text, vendor=vendor, content=content, channel=channel))
        )
        assert (PARTNER_COPY_REQUIRED in problems) is refused
        assert problems == ([PARTNER_COPY_REQUIRED] if refused else [])


def test_without_the_vendor_default_partner_copy_cannot_be_proven(make_request) -> None:
    request = make_request(vendor=None, content={"require_partner_copy": True})
    problems = XChannel().validate(XChannel().render(request))
    assert problems == ["the partner must write the post text, and the vendor's default is unknown"]


def test_a_contact_field_has_no_place_in_a_post(make_request) -> None:
    draft = XChannel().render(make_request(f"Hello {marker(NONCE, 'first_name')}!"))
    assert any("contact field" in p for p in XChannel().validate(draft))


def test_an_empty_post_is_refused(make_request) -> None:
    assert LinkedInChannel().validate(LinkedInChannel().render(make_request("  \n "))) == [
        "the post is empty"
    ]


def test_plain_text_stays_plain_and_the_preview_escapes_it(make_request) -> None:
    draft = XChannel().render(make_request("R&D <fast> 'now'\n\n"))
    assert draft.parts["text"] == "R&D <fast> 'now'"
    assert (
        "R&amp;D &lt;fast&gt;" in draft.preview_html
        and "Acme IT Services on X" in draft.preview_html
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param({"hashtags": ["not a tag!"]}, "hashtags", id="bad-hashtag"),
        pytest.param({"text_field": "post"}, "text_field", id="unknown-key"),
        pytest.param({"require_partner_copy": "maybe"}, "require_partner_copy", id="not-a-bool"),
    ],
)
def test_bad_content_is_a_permanent_error(content, message, make_request) -> None:
    with pytest.raises(PermanentError, match=message):
        XChannel().render(make_request(content=content))
