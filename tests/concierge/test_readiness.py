"""The readiness checklist, and campaigns that enroll only ready partners."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.world import CAMPAIGN, START, World

from partnercast.campaigns.enrollment import enroll_partners
from partnercast.campaigns.loader import read_campaign
from partnercast.campaigns.store import store_campaign
from partnercast.concierge import readiness
from partnercast.concierge.readiness import missing_by_partner
from partnercast.core.errors import UserError
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.partners import get_partner

ALL_YES = {key: True for key in readiness.KEYS}


def _ready_only_campaign(tmp_path: Path) -> Path:
    folder = Path(shutil.copytree(CAMPAIGN, tmp_path / "ready-only"))
    spec = folder / "campaign.yaml"
    text = spec.read_text(encoding="utf-8")
    text = text.replace("key: cloud-security", "key: ready-only\nrequire_readiness: true", 1)
    spec.write_text(text, encoding="utf-8")
    return folder


def test_assignments_are_checked() -> None:
    assert readiness.parse_assignments(
        ["strategic=yes", "weekly-review=NO", "contact=unknown"]
    ) == {
        "strategic": True,
        "weekly_review": False,
        "contact": None,
    }
    for bad in ("strategic", "tall=yes", "strategic=maybe"):
        with pytest.raises(UserError):
            readiness.parse_assignments([bad])


def test_a_campaign_that_requires_readiness_skips_and_reports_the_unready(
    world: World, tmp_path: Path
) -> None:
    with tenant_session(world.engine, world.tenant_id) as session:
        readiness.set_readiness(session, get_partner(session, "P001"), ALL_YES, now=START)
        almost = {**ALL_YES, "feedback": False}
        readiness.set_readiness(session, get_partner(session, "P002"), almost, now=START)
        loaded = read_campaign(_ready_only_campaign(tmp_path), {"email": ".mjml"})
        report = enroll_partners(
            session,
            store_campaign(session, loaded, now=utcnow()).campaign,
            now=utcnow(),
            readiness=missing_by_partner,
        )
    assert report.invited == ["P001"]
    assert report.not_ready["P002"] == ["performance feedback shared"]
    assert len(report.not_ready) == 5
    assert "strategic fit" in report.not_ready["P003"]


def test_the_cli_shows_and_sets_the_checklist_and_enroll_reports_the_skipped(
    world: World, tmp_path: Path, cli
) -> None:
    args = ["partners", "readiness", "P001", "--tenant", "northwind"]
    shown = cli(*args)
    assert "not ready: misses strategic fit" in shown.stdout
    sets = [f"--set={key}=yes" for key in readiness.KEYS]
    assert cli(*args, *sets, "--note", "met at the partner day").stdout.rstrip().endswith("ready")
    cli("campaign", "load", str(_ready_only_campaign(tmp_path)), "--tenant", "northwind")
    enrolled = cli("enroll", "ready-only", "--tenant", "northwind")
    assert "invited 1 partners" in enrolled.stdout
    assert "not ready, skipped: P002 misses strategic fit" in enrolled.stdout
    bad = cli(*args, "--set", "strategic=perhaps", expect=1)
    assert "answer yes, no or unknown" in bad.stderr and "Traceback" not in bad.stderr
