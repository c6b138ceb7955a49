"""Every kind of problem in a campaign folder, reported with its exact file:line and message.

Each row breaks a fresh copy of the example in one way and lists every problem the loader
must report for it, nothing more. Lines are looked up in the broken files, so the rows
keep working when the example's wording changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from partnercast.campaigns.loader import read_campaign
from partnercast.core.errors import Problems, UserError

from .conftest import SUFFIXES, CampaignFolder

YAML = "campaign.yaml"
INTRO_EN = "templates/email/intro.en.mjml"
INTRO_DE = "templates/email/intro.de.mjml"
LAST_CALL_EN = "templates/email/last-call.en.mjml"
FIELD_NAMES = "call_to_action, event_date, headline, intro, show_event, signature_line"
CHOICES = "'Book a demo', 'Talk to us', 'Get the checklist'"
UNSUBSCRIBE = "the unsubscribe link: use {{ links.unsubscribe }}"


@dataclass(frozen=True)
class Row:
    id: str
    breaks: Callable[[CampaignFolder], None]
    expected: Callable[[CampaignFolder], list[str]]


def at(folder: CampaignFolder, file: str, needle: str, message: str, *, nth: int = 1) -> str:
    return f"{file}:{folder.line(file, needle, nth=nth)}: {message}"


def _cycle(value: str) -> Callable[[CampaignFolder], None]:
    return lambda f: f.edit(YAML, "cycle_days: 45", f"cycle_days: {value}")


def _no_unsubscribe(f: CampaignFolder) -> None:
    f.edit(
        LAST_CALL_EN,
        '{% include "email/_footer.mjml" %}',
        "<mj-section><mj-column><mj-text>{{ brand.legal_name }}, {{ brand.postal_address }}"
        "</mj-text></mj-column></mj-section>",
    )


def _several(f: CampaignFolder) -> None:
    f.edit(YAML, "cycle_days: 45", "cycle_days: 90")
    f.edit(YAML, "default: Book a demo", "default: Call us")
    f.edit(INTRO_DE, "{{ fields.intro }}", "{{ fields.intro }")
    f.edit(INTRO_EN, "{{ fields.intro }}", "{{ fields.introduction }}")
    _no_unsubscribe(f)


ROWS = [
    Row(
        "cycle-days-29",
        _cycle("29"),
        lambda f: [at(f, YAML, "cycle_days:", "cycle_days must be between 30 and 60, got 29")],
    ),
    Row(
        "cycle-days-61",
        _cycle("61"),
        lambda f: [at(f, YAML, "cycle_days:", "cycle_days must be between 30 and 60, got 61")],
    ),
    Row(
        "cycle-days-not-a-number",
        _cycle("abc"),
        lambda f: [at(f, YAML, "cycle_days:", "cycle_days must be a whole number, got 'abc'")],
    ),
    Row(
        "cycle-days-quoted",
        _cycle('"45"'),
        lambda f: [at(f, YAML, "cycle_days:", "cycle_days must be a whole number, got '45'")],
    ),
    Row(
        "unknown-locale",
        lambda f: f.edit(YAML, "locales: [en, de]", "locales: [en, de, xx]"),
        lambda f: [
            at(
                f,
                YAML,
                "locales:",
                "unknown locale 'xx' (use a CLDR locale id such as en, de or pt_BR)",
            )
        ],
    ),
    Row(
        "default-locale-not-declared",
        lambda f: f.edit(YAML, "default_locale: en", "default_locale: fr"),
        lambda f: [
            at(f, YAML, "default_locale:", "default_locale 'fr' is not one of locales (en, de)")
        ],
    ),
    Row(
        "touch-day-beyond-the-cycle",
        lambda f: f.edit(YAML, "day: 35", "day: 50"),
        lambda f: [
            at(f, YAML, "day: 50", "touch 'last-call' day 50 is outside the cycle (1 to 45)")
        ],
    ),
    Row(
        "touch-day-zero",
        lambda f: f.edit(YAML, "day: 1\n", "day: 0\n"),
        lambda f: [
            at(
                f,
                YAML,
                "day: 0",
                "touches[0].day: must be at least 1 (the cycle's first day), got 0",
            )
        ],
    ),
    Row(
        "duplicate-touch-key",
        lambda f: f.edit(YAML, "key: last-call", "key: follow-up"),
        lambda f: [
            at(
                f,
                YAML,
                "key: follow-up",
                "duplicate touch key 'follow-up' (already used by touches[1])",
                nth=2,
            )
        ],
    ),
    Row(
        "unknown-channel",
        lambda f: f.edit(YAML, "channel: email", "channel: sms"),
        lambda f: [
            at(
                f,
                YAML,
                "channel: sms",
                "touch 'intro' has unknown channel 'sms' (known: email, linkedin, microsite, "
                "search, x)",
            )
        ],
    ),
    Row(
        "missing-template-for-a-locale",
        lambda f: f.delete(INTRO_DE),
        lambda f: [
            at(
                f,
                YAML,
                "template: email/intro",
                "touch 'intro' has no template for locale 'de' "
                "(expected templates/email/intro.de.mjml)",
            )
        ],
    ),
    Row(
        "jinja-syntax-error",
        lambda f: f.edit(INTRO_DE, "{{ fields.intro }}", "{{ fields.intro }"),
        lambda f: [at(f, INTRO_DE, "{{ fields.intro }", "unexpected '}'")],
    ),
    Row(
        "jinja-syntax-error-in-a-partial",
        lambda f: f.edit("templates/email/_footer.mjml", "{% else %}", "{% els %}"),
        lambda f: [
            at(
                f,
                "templates/email/_footer.mjml",
                "{% els %}",
                "Encountered unknown tag 'els'. Jinja was looking for the following tags: "
                "'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'.",
            )
        ],
    ),
    Row(
        "unknown-field-reference",
        lambda f: f.edit(INTRO_EN, "{{ fields.intro }}", "{{ fields.introduction }}"),
        lambda f: [
            at(
                f,
                INTRO_EN,
                "fields.introduction",
                "fields.introduction is not an editable field of this campaign "
                "(did you mean fields.intro?)",
            )
        ],
    ),
    Row(
        "unknown-variable-reference-by-item",
        lambda f: f.edit(INTRO_EN, "{{ vars.vendor }}", "{{ vars['vendr'] }}"),
        lambda f: [
            at(
                f,
                INTRO_EN,
                "vars['vendr']",
                "vars.vendr is not a variable of this campaign (did you mean vars.vendor?)",
            )
        ],
    ),
    Row(
        "unknown-brand-attribute",
        lambda f: f.edit(INTRO_EN, "{{ partner.name }}", "{{ brand.logo }}"),
        lambda f: [
            at(
                f,
                INTRO_EN,
                "brand.logo }}",
                "brand.logo is not known (did you mean brand.logo_url?)",
            )
        ],
    ),
    Row(
        "unknown-name",
        lambda f: f.edit(INTRO_EN, "{{ partner.name }}", "{{ partner_name }}"),
        lambda f: [
            at(
                f,
                INTRO_EN,
                "partner_name",
                "unknown name 'partner_name' (did you mean partner.name?)",
            )
        ],
    ),
    Row(
        "unknown-field-in-a-subject",
        lambda f: f.edit(YAML, '"{{ fields.headline }}"', '"{{ fields.title }}"'),
        lambda f: [
            at(
                f,
                YAML,
                "fields.title",
                "touch 'intro' subject: fields.title is not an editable field of this campaign "
                f"(known: {FIELD_NAMES})",
            )
        ],
    ),
    Row(
        "email-without-unsubscribe",
        _no_unsubscribe,
        lambda f: [f"{LAST_CALL_EN}: email template must show {UNSUBSCRIBE}"],
    ),
    Row(
        "email-without-footer",
        lambda f: f.edit(LAST_CALL_EN, '{% include "email/_footer.mjml" %}', ""),
        lambda f: [
            f"{LAST_CALL_EN}: email template must show {UNSUBSCRIBE}",
            f"{LAST_CALL_EN}: email template must show the legal name: "
            "use {{ brand.legal_name }}",
            f"{LAST_CALL_EN}: email template must show the postal address: "
            "use {{ brand.postal_address }}",
        ],
    ),
    Row(
        "include-of-a-missing-partial",
        lambda f: f.edit(INTRO_EN, '"email/_cta.mjml"', '"email/_button.mjml"'),
        lambda f: [
            at(
                f,
                INTRO_EN,
                "_button.mjml",
                "includes 'email/_button.mjml', which is not in templates/",
            )
        ],
    ),
    Row(
        "choice-default-not-a-choice",
        lambda f: f.edit(YAML, "default: Book a demo", "default: Call us"),
        lambda f: [
            at(
                f,
                YAML,
                "default: Call us",
                f"editable_fields.call_to_action.default: 'Call us' is not one of {CHOICES}",
            )
        ],
    ),
    Row(
        "variant-default-not-a-choice",
        lambda f: f.edit(YAML, "call_to_action: Talk to us", "call_to_action: Call us"),
        lambda f: [
            at(
                f,
                YAML,
                "call_to_action: Call us",
                f"variants.gold-emea.defaults.call_to_action: 'Call us' is not one of {CHOICES}",
            )
        ],
    ),
    Row(
        "default-longer-than-max-length",
        lambda f: f.edit(YAML, "max_length: 80", "max_length: 40"),
        lambda f: [
            at(
                f,
                YAML,
                'en: "{{ first_name }}, is your',
                "editable_fields.headline.default.en: is 64 characters long, more than 40",
            ),
            at(
                f,
                YAML,
                'de: "{{ first_name }}, ist Ihre',
                "editable_fields.headline.default.de: is 69 characters long, more than 40",
            ),
        ],
    ),
    Row(
        "merge-token-not-allowed",
        lambda f: f.edit(YAML, "merge_tokens: [first_name, company]", "merge_tokens: [first_name]"),
        lambda f: [
            at(
                f,
                YAML,
                "en: >-",
                "editable_fields.intro.default.en: merge token '{{ company }}' is not allowed "
                "here (allowed: {{ first_name }})",
                nth=3,
            ),
            at(
                f,
                YAML,
                "de: >-",
                "editable_fields.intro.default.de: merge token '{{ company }}' is not allowed "
                "here (allowed: {{ first_name }})",
                nth=3,
            ),
        ],
    ),
    Row(
        "unknown-merge-token-kind",
        lambda f: f.edit(YAML, "merge_tokens: [first_name]", "merge_tokens: [first_name, phone]"),
        lambda f: [
            at(
                f,
                YAML,
                "phone]",
                "editable_fields.headline.merge_tokens[1] must be one of 'first_name', "
                "'last_name', 'company' or 'email', got 'phone'",
            )
        ],
    ),
    Row(
        "localised-text-missing-a-locale",
        lambda f: f.edit(YAML, "    de: 10 % Rabatt im ersten Jahr\n", ""),
        lambda f: [at(f, YAML, "  discount:", "variables.discount has no text for locale 'de'")],
    ),
    Row(
        "localised-text-with-an-undeclared-locale",
        lambda f: f.edit(
            YAML, "    de: 10 % Rabatt", "    fr: 10 % de remise\n    de: 10 % Rabatt"
        ),
        lambda f: [
            at(
                f,
                YAML,
                "fr: 10 % de remise",
                "variables.discount has text for 'fr', which is not one of locales (en, de)",
            )
        ],
    ),
    Row(
        "variable-not-a-finite-number",
        lambda f: f.edit(YAML, "demo_minutes: 30", "demo_minutes: .nan"),
        lambda f: [
            at(f, YAML, "demo_minutes:", "variables.demo_minutes: must be a finite number, got nan")
        ],
    ),
    Row(
        "variant-for-an-untargeted-segment",
        lambda f: f.edit(YAML, "  registered-apac:\n", "  registered-emea:\n"),
        lambda f: [
            at(
                f,
                YAML,
                "registered-emea:",
                "variant 'registered-emea' is not one of segments "
                "(gold-emea, silver-na, registered-apac)",
            )
        ],
    ),
    Row(
        "unknown-top-level-key",
        lambda f: f.edit(YAML, "auto_approve_allowed:", "auto_approve_alowed:"),
        lambda f: [
            at(
                f,
                YAML,
                "auto_approve_alowed:",
                "unknown key 'auto_approve_alowed' (did you mean 'auto_approve_allowed'?)",
            )
        ],
    ),
    Row(
        "unknown-field-option",
        lambda f: f.edit(YAML, "    label: Headline", "    lable: Headline"),
        lambda f: [
            at(
                f,
                YAML,
                "lable: Headline",
                "unknown key 'lable' in editable_fields.headline (did you mean 'label'?)",
            )
        ],
    ),
    Row(
        "missing-required-key",
        lambda f: f.edit(YAML, "name: Secure your hybrid cloud in 45 days\n", ""),
        lambda f: [at(f, YAML, "key: cloud-security", "missing required key 'name'")],
    ),
    Row(
        "yaml-syntax-error",
        lambda f: f.edit(YAML, "name: Secure your", "name: Secure: your"),
        lambda f: [
            at(f, YAML, "name: Secure:", "invalid YAML: mapping values are not allowed here")
        ],
    ),
    Row(
        "duplicate-yaml-key",
        lambda f: f.edit(YAML, "default_locale: en\n", "default_locale: en\ncycle_days: 45\n"),
        lambda f: [
            at(
                f,
                YAML,
                "cycle_days: 45",
                f"duplicate key 'cycle_days' (first at line {f.line(YAML, 'cycle_days: 45')})",
                nth=2,
            )
        ],
    ),
    Row(
        "stray-file-in-templates",
        lambda f: (f.path / "templates" / "notes.md").write_text("todo", encoding="utf-8"),
        lambda f: [
            "templates/notes.md: not a template of a known channel (suffixes: .html, .mjml, .txt)"
        ],
    ),
    Row(
        "template-for-an-undeclared-locale",
        lambda f: (f.path / "templates/email/intro.fr.mjml").write_text(
            f.text(INTRO_EN), encoding="utf-8"
        ),
        lambda f: [
            "templates/email/intro.fr.mjml: locale 'fr' is not one of the campaign's "
            "locales (en, de)"
        ],
    ),
    Row(
        "several-problems-at-once",
        _several,
        lambda f: [
            at(f, YAML, "cycle_days:", "cycle_days must be between 30 and 60, got 90"),
            at(
                f,
                YAML,
                "default: Call us",
                f"editable_fields.call_to_action.default: 'Call us' is not one of {CHOICES}",
            ),
            at(f, INTRO_DE, "{{ fields.intro }", "unexpected '}'"),
            at(
                f,
                INTRO_EN,
                "fields.introduction",
                "fields.introduction is not an editable field of this campaign "
                "(did you mean fields.intro?)",
            ),
            f"{LAST_CALL_EN}: email template must show {UNSUBSCRIBE}",
        ],
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_each_problem_is_reported_with_file_line_and_message(
    row: Row, folder: CampaignFolder
) -> None:
    row.breaks(folder)

    assert folder.problems() == row.expected(folder)


def test_the_error_names_the_folder_and_counts_the_problems(folder: CampaignFolder) -> None:
    _several(folder)

    with pytest.raises(Problems) as raised:
        folder.read()

    assert str(raised.value).startswith(f"5 problems in {folder.path}:\n  campaign.yaml:")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "nowhere", "no such campaign folder"),
        (lambda tmp: _touch(tmp / "campaign.yaml"), "not a folder"),
        (lambda tmp: _mkdir(tmp / "empty"), "no campaign.yaml in the campaign folder"),
    ],
    ids=["missing-folder", "a-file-not-a-folder", "no-campaign-yaml"],
)
def test_an_unusable_folder_is_one_user_error_with_its_path(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    path = make(tmp_path)

    with pytest.raises(UserError) as raised:
        read_campaign(path, SUFFIXES)

    assert not isinstance(raised.value, Problems)
    assert raised.value.where == str(path)
    assert raised.value.message.startswith(message)


def _touch(path: Path) -> Path:
    path.write_text("key: x\n", encoding="utf-8")
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def test_a_symlink_in_templates_is_refused(folder: CampaignFolder, tmp_path: Path) -> None:
    secret = tmp_path / "secret.mjml"
    secret.write_text("not for the database", encoding="utf-8")
    (folder.path / "templates" / "email" / "_leak.mjml").symlink_to(secret)

    assert folder.problems() == [
        "templates/email/_leak.mjml: is a symbolic link; a campaign folder holds plain files"
    ]
