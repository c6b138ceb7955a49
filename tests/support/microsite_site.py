"""Helpers of the microsite tests: the sample campaign with a landing page, a served Site."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml
from sqlmodel import select

from partnercast.campaigns import approval
from partnercast.campaigns.enrollment import customise, find_enrollment
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.tenants.models import Partner
from support.world import CAMPAIGN, World

FIXTURES = Path(__file__).parents[1] / "channels" / "microsite" / "fixtures" / "cloud-security"
# The landing-page templates are the digital sample campaign's own, not a copy.
LANDING_TEMPLATES = CAMPAIGN.parent / "cloud-security-digital" / "templates" / "microsite"
TOKEN = re.compile(r'name="token" value="([^"]+)"')


def microsite_campaign(folder: Path) -> Path:
    """A copy of the sample campaign with the landing page of fixtures/ merged in."""
    shutil.copytree(CAMPAIGN, folder)
    shutil.copytree(LANDING_TEMPLATES, folder / "templates" / "microsite", dirs_exist_ok=True)
    spec = yaml.safe_load((folder / "campaign.yaml").read_text(encoding="utf-8"))
    extra = yaml.safe_load((FIXTURES / "campaign-microsite.yaml").read_text(encoding="utf-8"))
    spec["editable_fields"].update(extra["editable_fields"])
    spec["touches"].extend(extra["touches"])
    (folder / "campaign.yaml").write_text(
        yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    return folder


def approve(world: World, external_id: str, **fields: Any) -> None:
    """The partner customises (its own words), submits and approves."""
    with tenant_session(world.engine, world.tenant_id) as session:
        enrollment = find_enrollment(session, "cloud-security", external_id)
        words = {"signature_line": f"Team {external_id}", **fields}
        customise(session, enrollment, words, actor="partner", now=utcnow())
        approval.transition(session, enrollment, "submit", actor="concierge", now=utcnow())
        approval.transition(session, enrollment, "approve", actor="partner", now=utcnow())


def change_partner(world: World, partner_key: str, **values: Any) -> None:
    with tenant_session(world.engine, world.tenant_id) as session:
        partner = session.exec(select(Partner).where(Partner.external_id == partner_key)).one()
        for key, value in values.items():
            setattr(partner, key, value)


@dataclass
class Site:
    """Two tenants with the microsite campaign, served over real HTTP."""

    a: World
    b: World
    base: str
    http: requests.Session

    def url(self, slug: str, partner: str, sub: str = "") -> str:
        return f"{self.base}/p/{slug}/{partner}/cloud-security/{sub}"

    def get(self, slug: str, partner: str, sub: str = "", **params: str) -> requests.Response:
        return self.http.get(self.url(slug, partner, sub), params=params, timeout=10)

    def token(self, slug: str, partner: str) -> str:
        match = TOKEN.search(self.get(slug, partner).text)
        assert match, "the page has no form token"
        return match.group(1)

    def post_lead(
        self, slug: str, partner: str, fields: dict[str, str], **kwargs: Any
    ) -> requests.Response:
        return self.http.post(
            self.url(slug, partner, "lead"),
            data=fields,
            params={"lang": kwargs.pop("lang", "en")},  # as the form's action says
            allow_redirects=kwargs.pop("allow_redirects", True),
            timeout=10,
        )
