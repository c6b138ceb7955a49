"""The spec models on their own: localisation, field rules, campaign rules without a loader."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from partnercast.campaigns.loader import read_campaign
from partnercast.campaigns.spec import CAMPAIGN_RULE, CampaignSpec, EditableField, localize

from .conftest import EXAMPLE, SUFFIXES, CampaignFolder

EXAMPLE_DATA = read_campaign(EXAMPLE, SUFFIXES).spec.model_dump(mode="json")


@pytest.mark.parametrize(
    ("value", "locale", "expected"),
    [
        ("same everywhere", "de", "same everywhere"),
        ({"en": "Hello", "de": "Hallo"}, "de", "Hallo"),
        ({"en": "Hello", "de": "Hallo"}, "fr", "Hello"),
        ({"de": "Hallo"}, "fr", "Hallo"),
        (False, "de", False),
        (None, "de", None),
        (30, "de", 30),
    ],
    ids=["string", "mapping", "default-locale", "first-entry", "bool", "none", "number"],
)
def test_localize(value: Any, locale: str, expected: Any) -> None:
    assert localize(value, locale, "en") == expected


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"type": "choice"}, "a choice field needs a non-empty list of choices"),
        ({"type": "choice", "choices": ["a", "a"]}, "choices must not repeat"),
        ({"type": "bool", "choices": ["a"]}, "choices apply only to choice fields"),
        ({"type": "url", "max_length": 10}, "max_length needs a text field"),
        ({"type": "date", "merge_tokens": ["email"]}, "merge_tokens apply only to text fields"),
    ],
    ids=["no-choices", "repeated-choices", "choices-on-bool", "length-on-url", "tokens-on-date"],
)
def test_field_options_must_fit_the_type(definition: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EditableField.model_validate(definition)


@pytest.mark.parametrize(
    ("definition", "value", "problems"),
    [
        ({"type": "date"}, "2027-02-30", ["'2027-02-30' is not a date (YYYY-MM-DD)"]),
        ({"type": "date"}, "20270201", ["'20270201' is not a date (YYYY-MM-DD)"]),
        ({"type": "date"}, "2027-02-01", []),
        ({"type": "url"}, "ftp://x.example", ["'ftp://x.example' is not an http(s) URL"]),
        ({"type": "url"}, "https://x.example/a", []),
        ({"type": "bool"}, "yes", ["must be true or false, got 'yes'"]),
        ({"type": "text", "max_length": 3}, "abcd", ["is 4 characters long, more than 3"]),
        (
            {"type": "text"},
            "{{ company }}",
            ["merge token '{{ company }}' is not allowed here (allowed: none)"],
        ),
        (
            {"type": "text", "merge_tokens": ["company"]},
            "{% if x %}",
            ["template code is not allowed in partner text; write plain text"],
        ),
    ],
    ids=["bad-date", "compact-date", "date", "ftp", "url", "bool-text", "long", "token", "code"],
)
def test_value_problems(definition: dict[str, Any], value: Any, problems: list[str]) -> None:
    assert EditableField.model_validate(definition).value_problems(value) == problems


def _rule_messages(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as raised:
        CampaignSpec.model_validate(data)
    found = []
    for error in raised.value.errors():
        assert error["type"] == CAMPAIGN_RULE
        ctx = error["ctx"]
        found += ctx.get("violations", [(error["loc"], ctx.get("message"))])
    return found


def test_campaign_rules_apply_without_the_loader() -> None:
    data = copy.deepcopy(EXAMPLE_DATA)
    data["touches"][2]["day"] = 46
    data["locked"]["legal"] = {"en": "Only English"}
    data["variants"]["gold-emea"]["defaults"]["headline"] = "x" * 81

    assert _rule_messages(data) == [
        (("locked", "legal"), "locked.legal has no text for locale 'de'"),
        (
            ("variants", "gold-emea", "defaults", "headline"),
            "variants.gold-emea.defaults.headline: is 81 characters long, more than 80",
        ),
        (("touches", 2, "day"), "touch 'last-call' day 46 is outside the cycle (1 to 45)"),
    ]


def test_a_name_cannot_be_both_locked_and_editable() -> None:
    data = copy.deepcopy(EXAMPLE_DATA)
    data["locked"]["headline"] = "Vendor headline"

    assert _rule_messages(data) == [
        (("editable_fields", "headline"), "'headline' is both a locked zone and an editable field")
    ]


def test_yaml_1_1_booleans_do_not_eat_the_norwegian_locale(folder: CampaignFolder) -> None:
    folder.edit("campaign.yaml", "locales: [en, de]", "locales: [en, de, no]")

    problems = folder.problems()

    line = folder.line("campaign.yaml", "  discount:")
    assert f"campaign.yaml:{line}: variables.discount has no text for locale 'no'" in problems
    assert not any("False" in problem for problem in problems)
