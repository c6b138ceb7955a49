"""The campaign commands, run as a user would: validate, load, list, show."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from .conftest import EXAMPLE, CampaignFolder

if TYPE_CHECKING:  # the shared fixtures' runner, for the annotations only
    from conftest import Cli


def test_validate_prints_ok_for_the_example(cli: Cli, example: Path) -> None:
    result = cli("campaign", "validate", str(example))

    assert result.stdout == "ok: cloud-security v? — 3 touches, locales en, de\n"


def test_validate_prints_every_problem_on_stderr_and_exits_1(
    cli: Cli, folder: CampaignFolder
) -> None:
    folder.edit("campaign.yaml", "cycle_days: 45", "cycle_days: 90")
    folder.edit("templates/email/intro.de.mjml", "{{ fields.intro }}", "{{ fields.intro }")
    cycle_line = folder.line("campaign.yaml", "cycle_days:")
    jinja_line = folder.line("templates/email/intro.de.mjml", "{{ fields.intro }")

    result = cli("campaign", "validate", str(folder.path), expect=1)

    assert result.stdout == ""
    assert f"error: 2 problems in {folder.path}:" in result.stderr
    assert (
        f"  campaign.yaml:{cycle_line}: cycle_days must be between 30 and 60, got 90"
        in result.stderr
    )
    assert f"  templates/email/intro.de.mjml:{jinja_line}: unexpected '}}'" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_validate_a_missing_folder_is_one_line(cli: Cli, tmp_path: Path) -> None:
    result = cli("campaign", "validate", str(tmp_path / "nowhere"), expect=1)

    assert result.stderr.strip() == f"error: {tmp_path / 'nowhere'}: no such campaign folder"


def test_load_twice_stores_then_reports_unchanged(
    cli: Cli, engine: Engine, tenant_a: int, add_segments: Callable[..., None], example: Path
) -> None:
    add_segments(tenant_a)

    first = cli("campaign", "load", str(example), "--tenant", "vendor-a")
    second = cli("campaign", "load", str(example), "--tenant", "vendor-a")

    assert first.stdout == "cloud-security: stored version 1\n"
    assert second.stdout == "cloud-security: unchanged (version 1)\n"


def test_load_a_changed_folder_stores_version_2(
    cli: Cli,
    engine: Engine,
    tenant_a: int,
    add_segments: Callable[..., None],
    folder: CampaignFolder,
) -> None:
    add_segments(tenant_a)
    cli("campaign", "load", str(folder.path), "--tenant", "vendor-a")
    folder.edit("templates/email/intro.en.mjml", "No slides", "No slide decks")

    result = cli("campaign", "load", str(folder.path), "--tenant", "vendor-a")

    assert result.stdout == "cloud-security: stored version 2\n"


def test_load_without_the_segments_writes_nothing(
    cli: Cli, engine: Engine, tenant_a: int, example: Path
) -> None:
    result = cli("campaign", "load", str(example), "--tenant", "vendor-a", expect=1)

    assert "targets segments this tenant does not have" in result.stderr
    assert "Traceback" not in result.stderr
    assert "cloud-security" not in cli("campaign", "list", "--tenant", "vendor-a").stdout


def test_load_for_an_unknown_tenant_is_refused(cli: Cli, engine: Engine, example: Path) -> None:
    result = cli("campaign", "load", str(example), "--tenant", "nobody", expect=1)

    assert result.stderr.strip() == "error: --tenant: no tenant 'nobody'"


def test_list_and_show_see_only_the_tenants_own_campaign(
    cli: Cli,
    engine: Engine,
    tenant_a: int,
    tenant_b: int,
    add_segments: Callable[..., None],
    example: Path,
) -> None:
    add_segments(tenant_a)
    cli("campaign", "load", str(example), "--tenant", "vendor-a")

    listed = cli("campaign", "list", "--tenant", "vendor-a").stdout
    shown = cli("campaign", "show", "cloud-security", "--tenant", "vendor-a").stdout
    elsewhere = cli("campaign", "show", "cloud-security", "--tenant", "vendor-b", expect=1)

    assert "cloud-security" in listed
    assert "cloud-security" not in cli("campaign", "list", "--tenant", "vendor-b").stdout
    assert "Secure your hybrid cloud in 45 days" in shown
    assert "45-day cycle" in shown
    for touch in ("intro", "follow-up", "last-call"):
        assert touch in shown
    assert "latest" in shown
    assert elsewhere.stderr.strip() == "error: no campaign 'cloud-security'"


def test_touch_content_is_checked_against_each_channel_with_its_line(cli, tmp_path) -> None:
    import shutil

    digital = EXAMPLE.parent / "cloud-security-digital"
    broken = tmp_path / "digital"
    shutil.copytree(digital, broken)
    spec = broken / "campaign.yaml"
    text = spec.read_text(encoding="utf-8").replace(
        "daily_budget_micros: 20000000", "daily_budget_micros: lots"
    )
    spec.write_text(text, encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "daily_budget_micros" in row)
    assert "ok:" in cli("campaign", "validate", str(digital)).stdout
    result = cli("campaign", "validate", str(broken), expect=1)
    assert f"campaign.yaml:{line}: touch 'search-ad' content: daily_budget_micros:" in result.stderr
    assert "Traceback" not in result.stderr
