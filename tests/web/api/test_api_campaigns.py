"""Campaigns and enrollments through the API, on the test world (one vendor, six partners,
the sample email campaign, all enrolled): upload, validate, customise, submit, decide
(as the partner, and on the partner's behalf with a reason), preview; and another
tenant's token finds none of it."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import make_tenant
from sqlmodel import select
from support.api_world import Client, make_token
from support.world import CAMPAIGN, World

from partnercast.campaigns.models import ApprovalRecord, Enrollment
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.access import Role
from partnercast.tenants.models import Partner


def zipped(
    folder: Path, *, top: str = "cloud-security", change: dict[str, str] | None = None
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = f"{top}/{path.relative_to(folder).as_posix()}"
                data = path.read_bytes()
                if change and path.name in change:
                    data = change[path.name].encode()
                archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def tokens(world: World) -> dict[str, Any]:
    with tenant_session(world.engine, world.tenant_id) as session:
        partners = {p.external_id: p.id for p in session.exec(select(Partner)).all()}
        enrollments = {e.partner_id: e.id for e in session.exec(select(Enrollment)).all()}
    first = sorted(partners)[0]
    other_tenant = make_tenant(world.engine, "other-vendor")
    return {
        "admin": make_token(world.engine, world.tenant_id, Role.AGENCY_ADMIN),
        "concierge": make_token(world.engine, world.tenant_id, Role.CONCIERGE),
        "partner": make_token(
            world.engine, world.tenant_id, Role.PARTNER, partner_id=partners[first]
        ),
        "stranger": make_token(world.engine, other_tenant, Role.AGENCY_ADMIN),
        "own": enrollments[partners[first]],
        "other": enrollments[partners[sorted(partners)[1]]],
    }


def test_a_campaign_folder_is_validated_and_loaded_from_an_archive(
    client: Client, tokens: dict[str, Any]
) -> None:
    admin = tokens["admin"]
    archive = zipped(CAMPAIGN)
    answer = client.post("/campaigns/validations", token=admin, files={"file": ("c.zip", archive)})
    assert answer.status_code == 200, answer.text
    assert answer.json()["key"] == "cloud-security" and answer.json()["touches"]
    stored = client.post("/campaigns", token=admin, files={"file": ("c.zip", archive)})
    assert stored.status_code in (200, 201), stored.text
    campaign_id = stored.json()["campaign"]["id"]
    detail = client.get(f"/campaigns/{campaign_id}", token=admin).json()
    assert detail["key"] == "cloud-security" and detail["versions"]
    broken = zipped(CAMPAIGN, change={"campaign.yaml": "key: [unclosed\n"})
    answer = client.post("/campaigns/validations", token=admin, files={"file": ("c.zip", broken)})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "file"
    answer = client.post("/campaigns", token=admin, files={"file": ("c.zip", b"not an archive")})
    assert answer.status_code == 422
    mine = client.get("/campaigns", token=tokens["partner"])
    assert mine.status_code == 200 and [c["id"] for c in mine.json()["data"]] == [campaign_id]
    enrolled = client.post(f"/campaigns/{campaign_id}/enrollments", token=admin)
    assert enrolled.status_code == 200 and enrolled.json()["invited"] == []
    assert len(enrolled.json()["already"]) == 6
    assert (
        client.post(f"/campaigns/{campaign_id}/enrollments", token=tokens["partner"]).status_code
        == 403
    )
    assert client.get(f"/campaigns/{campaign_id}", token=tokens["stranger"]).status_code == 404
    assert client.get("/campaigns", token=tokens["stranger"]).json()["data"] == []


def test_an_enrollment_is_customised_submitted_and_decided(
    client: Client, tokens: dict[str, Any], world: World
) -> None:
    partner, concierge = tokens["partner"], tokens["concierge"]
    url = f"/enrollments/{tokens['own']}"
    listed = client.get("/enrollments", token=partner).json()["data"]
    assert [item["id"] for item in listed] == [tokens["own"]]
    assert client.get(f"/enrollments/{tokens['other']}", token=partner).status_code == 404
    read = client.get(url, token=partner)
    changed = client.patch(
        url,
        token=partner,
        json={"customization": {"signature_line": "Team One"}},
        headers={"If-Match": read.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["customization"]["signature_line"] == "Team One"
    bad = client.patch(
        url,
        token=partner,
        json={"customization": {"no_such_field": "x"}},
        headers={"If-Match": changed.headers["etag"]},
    )
    assert bad.status_code == 422 and "no_such_field" in bad.json()["detail"]
    submitted = client.post(f"{url}/submissions", token=concierge, json={})
    assert submitted.status_code == 200 and submitted.json()["state"] == "submitted"
    shown = submitted.json()["fingerprint"]
    # Agency staff decide on the partner's behalf only with a reason.
    answer = client.post(f"{url}/decisions", token=concierge, json={"decision": "approve"})
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "body.reason"
    stale = client.post(
        f"{url}/decisions", token=partner, json={"decision": "approve", "fingerprint": "0" * 64}
    )
    assert stale.status_code == 412
    decided = client.post(
        f"{url}/decisions", token=partner, json={"decision": "approve", "fingerprint": shown}
    )
    assert decided.status_code == 201, decided.text
    assert decided.json()["state_after"] == "approved" and decided.json()["on_behalf"] is False
    other = f"/enrollments/{tokens['other']}"
    client.post(f"{other}/submissions", token=concierge, json={})
    behalf = client.post(
        f"{other}/decisions",
        token=concierge,
        json={"decision": "decline", "reason": "the partner asked by phone"},
    )
    assert behalf.status_code == 201, behalf.text
    assert behalf.json()["on_behalf"] is True and behalf.json()["state_after"] == "declined"
    again = client.post(
        f"{other}/decisions", token=concierge, json={"decision": "decline", "reason": "again"}
    )
    assert again.status_code in (201, 409)
    with tenant_session(world.engine, world.tenant_id) as session:
        records = session.exec(select(ApprovalRecord)).all()
    assert any(r.reason == "the partner asked by phone" and r.on_behalf for r in records)
    assert all(r.token_id is not None for r in records)
    # A partner token never decides for another partner; another tenant sees nothing.
    answer = client.post(f"{other}/decisions", token=partner, json={"decision": "approve"})
    assert answer.status_code == 404
    for path in (url, f"{url}/preview?touch=intro"):
        assert client.get(path, token=tokens["stranger"]).status_code == 404


def test_a_touch_is_previewed_for_the_partner(client: Client, tokens: dict[str, Any]) -> None:
    detail = client.get(f"/enrollments/{tokens['own']}", token=tokens["partner"]).json()
    campaign = client.get(f"/campaigns/{detail['campaign_id']}", token=tokens["admin"]).json()
    touch = campaign["versions"][-1]["touches"][0]
    answer = client.get(
        f"/enrollments/{tokens['own']}/preview", token=tokens["partner"], params={"touch": touch}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["html"] and answer.json()["subject"]
    answer = client.get(
        f"/enrollments/{tokens['own']}/preview", token=tokens["partner"], params={"touch": "nope"}
    )
    assert answer.status_code == 422
