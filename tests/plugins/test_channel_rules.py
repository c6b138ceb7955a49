"""A channel's own campaign rules reach every place a campaign is checked, through the
Channel contract (``template_must_show``, ``check_touch``): the email channel's are no
longer written into the campaign loader."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from partnercast.campaigns.loader import read_campaign
from partnercast.channels.email.channel import EmailChannel
from partnercast.core.errors import Problems
from partnercast.plugins.manager import installed_channels

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "campaigns" / "cloud-security"
LAST_CALL = "templates/email/last-call.en.mjml"
FOOTER = '{% include "email/_footer.mjml" %}'


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = Path(shutil.copytree(EXAMPLE, tmp_path / "cloud-security"))
    template = copy / LAST_CALL
    template.write_text(template.read_text(encoding="utf-8").replace(FOOTER, ""), "utf-8")
    return copy


def _problems(folder: Path, channels: Mapping[str, Any]) -> list[str]:
    with pytest.raises(Problems) as raised:
        read_campaign(folder, channels)
    return raised.value.problems


def test_the_email_channel_says_what_its_templates_must_show(folder: Path) -> None:
    assert _problems(folder, installed_channels()) == [
        f"{LAST_CALL}: email template must show {what}: use {{{{ {variable} }}}}"
        for what, variable in (
            ("the unsubscribe link", "links.unsubscribe"),
            ("the legal name", "brand.legal_name"),
            ("the postal address", "brand.postal_address"),
        )
    ]


def test_a_third_party_channel_declares_its_own(folder: Path) -> None:
    class Strict(EmailChannel):
        template_must_show: ClassVar[Mapping[str, str]] = {"touch.day": "the day"}

        @classmethod
        def check_touch(cls, touch_key: str, content: Mapping[str, Any]) -> list[str]:
            return [f"touch {touch_key!r} is too strict"] if touch_key == "intro" else []

    problems = _problems(folder, {"email": Strict})
    assert any(p.endswith("touch 'intro' is too strict") for p in problems)
    assert f"{LAST_CALL}: email template must show the day: use {{{{ touch.day }}}}" in problems
    assert not any("unsubscribe" in p for p in problems)  # the rules are the channel's


def test_a_bare_suffix_knows_no_channel_rules(folder: Path) -> None:
    assert read_campaign(folder, {"email": ".mjml"}).spec.key == "cloud-security"


def test_campaign_validate_applies_the_installed_channels_rules(folder: Path) -> None:
    from typer.testing import CliRunner

    from partnercast.cli import build_app

    result = CliRunner().invoke(build_app(), ["campaign", "validate", str(folder)])
    assert result.exit_code == 1
    assert "email template must show the unsubscribe link" in result.output
