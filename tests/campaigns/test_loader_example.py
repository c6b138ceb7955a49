"""The sample campaign: it validates clean, every template compiles, its hash is stable."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jinja2
import pytest
from mjml import mjml2html

from partnercast.campaigns.loader import read_campaign
from partnercast.campaigns.spec import CampaignSpec, localize

from .conftest import SUFFIXES, CampaignFolder

LOADED = read_campaign(
    Path(__file__).resolve().parents[2] / "examples" / "campaigns" / "cloud-security", SUFFIXES
)
SPEC = LOADED.spec


def test_the_example_validates_clean(example: Path) -> None:
    loaded = read_campaign(example, SUFFIXES)

    assert loaded.spec.key == "cloud-security"
    assert loaded.spec.name == "Secure your hybrid cloud in 45 days"
    assert loaded.spec.cycle_days == 45
    assert loaded.spec.locales == ["en", "de"]
    assert [(t.key, t.day) for t in loaded.spec.touches] == [
        ("intro", 1),
        ("follow-up", 14),
        ("last-call", 35),
    ]
    assert set(loaded.spec.editable_fields) == {
        "headline",
        "intro",
        "call_to_action",
        "show_event",
        "event_date",
        "signature_line",
    }
    assert "email/_footer.mjml" in loaded.templates
    assert len(loaded.content_hash) == 64


def test_a_stored_spec_reads_back_as_the_same_model() -> None:
    assert CampaignSpec.model_validate(SPEC.model_dump(mode="json")) == SPEC


def _context(touch_key: str, locale: str, segment: str | None, event: bool) -> dict[str, Any]:
    def local(values: dict[str, Any]) -> dict[str, Any]:
        return {
            name: localize(value, locale, SPEC.default_locale) for name, value in values.items()
        }

    variant = SPEC.variant(segment) if segment else None
    fields = {name: field.default for name, field in SPEC.editable_fields.items()}
    variables = dict(SPEC.variables)
    if variant is not None:
        fields.update(variant.defaults)
        variables.update(variant.variables)
    if event:
        fields.update(show_event=True, event_date="2027-03-18", signature_line="Dana Weiss, CTO")
    touch = SPEC.touch(touch_key)
    return {
        "brand": {
            "name": "Alpine Systems",
            "legal_name": "Alpine Systems GmbH",
            "postal_address": "Seestrasse 12, 8002 Zürich",
            "primary_color": "#0a7d5a",
        },
        "partner": {
            "name": "Alpine Systems",
            "contact_name": "Dana Weiss",
            "contact_email": "dana@alpine.example",
            "region": "EMEA",
            "tier": "gold",
        },
        "campaign": {"key": SPEC.key, "name": SPEC.name},
        "vars": local(variables),
        "fields": local(fields),
        "locked": local(SPEC.locked),
        "contact": {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "company": "Engines & Co",
            "email": "ada@x.example",
        },
        "links": {"unsubscribe": "https://alpine.example/u/abc"},
        "touch": {"key": touch.key, "day": touch.day},
        "locale": locale,
    }


CASES = [
    (touch.key, locale, segment, event)
    for touch in SPEC.touches
    for locale in SPEC.locales
    for segment, event in ((None, False), ("gold-emea", True))
]


@pytest.mark.parametrize(
    ("touch_key", "locale", "segment", "event"),
    CASES,
    ids=[f"{t}-{loc}-{s or 'default'}{'-event' if e else ''}" for t, loc, s, e in CASES],
)
def test_every_template_renders_and_compiles_to_html(
    touch_key: str, locale: str, segment: str | None, event: bool
) -> None:
    environment = jinja2.Environment(
        loader=jinja2.DictLoader(LOADED.templates),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    touch = SPEC.touch(touch_key)
    source = environment.get_template(touch.template_file(locale, ".mjml")).render(
        _context(touch_key, locale, segment, event)
    )

    html = mjml2html(source)

    assert "<html" in html
    assert "https://alpine.example/u/abc" in html
    assert "Alpine Systems GmbH" in html
    assert "Seestrasse 12, 8002 Zürich" in html
    assert "#0a7d5a" in html
    assert ("Meet us on 2027-03-18" in html or "Treffen Sie uns am 2027-03-18" in html) is (event)
    assert f'<html lang="{locale}"' in html
    if touch_key == "last-call":
        discount = _context(touch_key, locale, segment, event)["vars"]["discount"]
        assert discount.startswith("20" if segment == "gold-emea" else "10")
        assert discount in html


def test_german_emails_show_the_call_to_action_in_german() -> None:
    environment = jinja2.Environment(loader=jinja2.DictLoader(LOADED.templates), autoescape=True)
    html = environment.get_template("email/intro.de.mjml").render(
        _context("intro", "de", None, False)
    )

    assert "Demo vereinbaren" in html
    assert "Book a demo" not in html


def test_copying_the_folder_keeps_the_hash(folder: CampaignFolder, tmp_path: Path) -> None:
    elsewhere = Path(shutil.copytree(folder.path, tmp_path / "elsewhere" / "renamed"))
    (elsewhere / ".DS_Store").write_bytes(b"\x00\x01junk")
    (elsewhere / "templates" / "email" / ".DS_Store").write_bytes(b"\x00\x02junk")

    assert read_campaign(elsewhere, SUFFIXES).content_hash == LOADED.content_hash
    assert folder.read().content_hash == LOADED.content_hash


def test_windows_line_endings_keep_the_hash(folder: CampaignFolder) -> None:
    for path in (folder.path / "templates" / "email").iterdir():
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    yaml_path = folder.path / "campaign.yaml"
    yaml_path.write_bytes(yaml_path.read_bytes().replace(b"\n", b"\r\n"))

    assert folder.read().content_hash == LOADED.content_hash


def test_one_changed_template_character_changes_the_hash(folder: CampaignFolder) -> None:
    folder.edit("templates/email/intro.en.mjml", "No slides", "No Slides")

    assert folder.read().content_hash != LOADED.content_hash


def test_a_yaml_only_change_of_layout_keeps_the_hash(folder: CampaignFolder) -> None:
    folder.edit("campaign.yaml", "locales: [en, de]", "locales:\n  - en\n  - de  # both")

    assert folder.read().content_hash == LOADED.content_hash
