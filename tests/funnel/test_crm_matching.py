"""CRM records find their lead by the CRM's own id, then by email, then attribute by UTM."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from sqlmodel import col, func, select
from support.funnel_world import Funnel, add_form_lead, write_csv
from support.world import START

from partnercast.campaigns.models import Campaign, Touch
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.funnel import rollups
from partnercast.funnel.crm_import import apply_records, import_leads
from partnercast.funnel.crm_secret import new_secret, signed_headers
from partnercast.funnel.leads import Lead
from partnercast.funnel.models import LeadStage
from partnercast.tenants.models import Partner, Tenant
from partnercast.web.app import make_http_server

HEADER = "partner,crm_id,email,stage,deal_value,currency,occurred_at\n"
# The funnel fixture ran the world to its day 2: what the CRM sends arrives then.
NOW = START + timedelta(days=2)


def _leads(funnel: Funnel) -> list[Lead]:
    with funnel.session() as session:
        return list(session.exec(select(Lead).order_by(col(Lead.id))).all())


def _stages(funnel: Funnel, lead_id: int | None) -> list[str]:
    with funnel.session() as session:
        rows = session.exec(select(LeadStage.stage).where(LeadStage.lead_id == lead_id)).all()
    return sorted(rows)


def _crm_leads(funnel: Funnel) -> list[Lead]:
    return [lead for lead in _leads(funnel) if lead.source == "crm" or lead.crm_id]


def test_a_lead_whose_email_changed_in_the_crm_keeps_its_history(
    funnel: Funnel, tmp_path: Path
) -> None:
    first = write_csv(
        tmp_path / "monday.csv",
        HEADER + "P001,SF-0042,old@client.example,mql,,,2026-12-05\n",
    )
    second = write_csv(
        tmp_path / "friday.csv",
        HEADER + "P001,SF-0042,new@client.example,opportunity,12000,EUR,2026-12-09\n",
    )
    with funnel.session() as session:
        assert import_leads(session, first, now=NOW).created == 1
    with funnel.session() as session:
        report = import_leads(session, second, now=NOW)
    assert (report.created, report.updated, report.rejected) == (0, 1, [])
    (lead,) = _crm_leads(funnel)
    assert (lead.crm_id, lead.email, lead.stage) == ("SF-0042", "new@client.example", "opportunity")
    assert _stages(funnel, lead.id) == sorted(["lead", "mql", "sql", "opportunity"])
    # The old address, now another person's in the CRM, is a new lead, not this one.
    third = write_csv(
        tmp_path / "later.csv", HEADER + "P001,SF-0077,old@client.example,mql,,,2026-12-10\n"
    )
    with funnel.session() as session:
        assert import_leads(session, third, now=NOW).created == 1
    assert len(_crm_leads(funnel)) == 2
    with funnel.session() as session:
        assert rollups.stored_rollups(session) == rollups.scan_rollups(session)


def test_importing_the_same_file_twice_changes_nothing(funnel: Funnel, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "crm.csv",
        HEADER
        + "P001,SF-1,ann@client.example,sql,,,2026-12-05\n"
        + "P001,SF-2,bob@client.example,won,5000,EUR,2026-12-06\n"
        + "P002,SF-1,cat@client.example,mql,,,2026-12-06\n",
    )
    with funnel.session() as session:
        first = import_leads(session, path, now=NOW)
    assert (first.created, first.rejected) == (3, [])
    with funnel.session() as session:
        before = rollups.stored_rollups(session)
        again = import_leads(session, path, now=NOW)
        after = rollups.stored_rollups(session)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    assert after == before
    # The same CRM id at two partners is two leads (each partner's CRM has its own ids).
    assert {(lead.partner_id, lead.crm_id) for lead in _crm_leads(funnel)} == {
        (funnel.partners["P001"], "SF-1"),
        (funnel.partners["P001"], "SF-2"),
        (funnel.partners["P002"], "SF-1"),
    }


def test_an_email_match_binds_the_crm_id_to_the_microsite_lead(
    funnel: Funnel, tmp_path: Path
) -> None:
    lead_id = add_form_lead(funnel, "P001", "dora@client.example")
    path = write_csv(
        tmp_path / "crm.csv", HEADER + "P001,HS-9,dora@client.example,mql,,,2026-12-05\n"
    )
    with funnel.session() as session:
        assert import_leads(session, path, now=NOW).updated == 1
    # Later records name only the CRM id: still the same lead.
    with funnel.session() as session:
        report = apply_records(
            session, [{"partner": "P001", "crm_id": "HS-9", "stage": "sql"}], now=NOW
        )
    assert (report.created, report.updated, report.rejected) == (0, 1, [])
    leads = [lead for lead in _leads(funnel) if lead.crm_id == "HS-9"]
    assert [lead.id for lead in leads] == [lead_id]
    assert leads[0].stage == "sql"


def test_utm_codes_attribute_a_new_crm_lead_to_campaign_and_touch(funnel: Funnel) -> None:
    with funnel.session() as session:
        campaign = session.exec(select(Campaign)).one()
        touch = session.exec(select(Touch).order_by(col(Touch.id).desc())).first()
        assert touch is not None
        report = apply_records(
            session,
            [
                {
                    "partner": "P002",
                    "crm_id": "Z-1",
                    "email": "eli@client.example",
                    "stage": "mql",
                    "occurred_at": "2026-12-04",
                    "utm_source": "partner-email",
                    "utm_campaign": campaign.key,
                    "utm_content": touch.key,
                }
            ],
            now=NOW,
        )
    assert report.created == 1, report.rejected
    (lead,) = [lead for lead in _leads(funnel) if lead.crm_id == "Z-1"]
    assert (lead.campaign_id, lead.touch_id) == (campaign.id, touch.id)
    assert lead.cycle_id is not None and lead.enrollment_id is not None
    assert lead.utm["utm_source"] == "partner-email"


def test_malformed_rows_are_rejected_with_their_line(funnel: Funnel, tmp_path: Path) -> None:
    header = "partner,crm_id,email,campaign,stage,utm_campaign,utm_content\n"
    path = write_csv(
        tmp_path / "crm.csv",
        header
        + "P001,OK-1,ok@client.example,,mql,cloud-security,\n"
        + "P001,BAD-1,x@client.example,,mql,no-such-campaign,\n"
        + "P001,BAD-2,y@client.example,,mql,cloud-security,no-such-touch\n"
        + "P001,BAD-3,z@client.example,,mql,,some-touch\n"
        + f"P001,{'x' * 101},w@client.example,,mql,,\n"
        + "P001,,,,mql,,\n",
    )
    with funnel.session() as session:
        report = import_leads(session, path, now=NOW)
    assert report.created == 1
    lines = {r.line: r.reason for r in report.rejected}
    assert set(lines) == {3, 4, 5, 6, 7}
    assert "utm_campaign 'no-such-campaign'" in lines[3]
    assert "utm_content 'no-such-touch'" in lines[4]
    assert "give utm_campaign or campaign" in lines[5]
    assert "crm_id" in lines[6] and "100" in lines[6]
    assert "give lead_id or email (or crm_id)" in lines[7]
    assert [lead.crm_id for lead in _crm_leads(funnel)] == ["OK-1"]


def test_a_crm_id_cannot_be_moved_onto_another_lead(funnel: Funnel) -> None:
    first = add_form_lead(funnel, "P001", "fred@client.example")
    second = add_form_lead(funnel, "P001", "gina@client.example")
    with funnel.session() as session:
        bound = apply_records(
            session,
            [{"partner": "P001", "lead_id": first, "crm_id": "C-1", "stage": "mql"}],
            now=NOW,
        )
        assert bound.rejected == []
        report = apply_records(
            session,
            [{"partner": "P001", "lead_id": second, "crm_id": "C-1", "stage": "mql"}],
            now=NOW,
        )
    assert len(report.rejected) == 1
    assert "already" in report.rejected[0].reason
    with funnel.session() as session:
        assert session.get(Lead, second).crm_id is None  # type: ignore[union-attr]


@pytest.fixture
def server(funnel: Funnel) -> Iterator[str]:
    http = make_http_server(funnel.engine, funnel.world.settings, "127.0.0.1", 0)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        http.server_close()


def _signed(secret: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers, sent now (the server checks the time on its clock)."""
    return signed_headers(secret, body, message_id=f"msg_{uuid.uuid4().hex}", sent_at=utcnow())


def _post(server: str, slug: str, secret: str, records: list[dict]) -> dict:
    body = json.dumps({"leads": records}).encode()
    answer = requests.post(
        f"{server}/crm/{slug}/leads",
        data=body,
        headers={**_signed(secret, body), "Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_csv_and_webhook_with_the_same_crm_id_move_the_same_lead_in_one_tenant_only(
    funnel: Funnel, server: str, tmp_path: Path
) -> None:
    with funnel.session() as session:
        secret_a = new_secret(session, funnel.world.settings, now=NOW)
    with plain_session(funnel.engine) as session:
        slug_a = session.get(Tenant, funnel.world.tenant_id).slug  # type: ignore[union-attr]
        other = Tenant(slug="other-vendor", name="Other", brand={}, created_at=utcnow())
        session.add(other)
        session.flush()
        other_id = other.id or 0
    with tenant_session(funnel.engine, other_id) as session:
        session.add(
            Partner(
                external_id="P001",
                name="Same external id, other tenant",
                created_at=utcnow(),
                updated_at=utcnow(),
            )
        )
        session.flush()
        secret_b = new_secret(session, funnel.world.settings, now=NOW)

    path = write_csv(
        tmp_path / "crm.csv", HEADER + "P001,SF-7,hal@client.example,mql,,,2026-12-05\n"
    )
    with funnel.session() as session:
        assert import_leads(session, path, now=NOW).created == 1
    answer = _post(
        server,
        slug_a,
        secret_a,
        [{"partner": "P001", "crm_id": "SF-7", "stage": "opportunity", "deal_value": 20000}],
    )
    assert (answer["created"], answer["updated"], answer["rejected"]) == (0, 1, [])
    (lead,) = [lead for lead in _leads(funnel) if lead.crm_id == "SF-7"]
    assert lead.stage == "opportunity" and lead.email == "hal@client.example"

    # The other tenant's CRM uses the same id for its own lead: a different lead there,
    # and tenant A's lead does not move.
    answer = _post(
        server,
        "other-vendor",
        secret_b,
        [{"partner": "P001", "crm_id": "SF-7", "email": "ivy@elsewhere.example", "stage": "won"}],
    )
    assert (answer["created"], answer["rejected"]) == (1, [])
    # Tenant A's secret does not open tenant B's endpoint.
    body = json.dumps({"partner": "P001", "crm_id": "SF-7", "stage": "lost"}).encode()
    refused = requests.post(
        f"{server}/crm/other-vendor/leads",
        data=body,
        headers=_signed(secret_a, body),
        timeout=30,
    )
    assert refused.status_code == 401
    with tenant_session(funnel.engine, other_id) as session:
        theirs = session.exec(select(Lead).where(Lead.crm_id == "SF-7")).one()
        assert theirs.stage == "won" and theirs.email == "ivy@elsewhere.example"
        assert session.exec(select(func.count()).select_from(Lead)).one() == 1
    (mine,) = [lead for lead in _leads(funnel) if lead.crm_id == "SF-7"]
    assert (mine.id, mine.stage, mine.email) == (lead.id, "opportunity", "hal@client.example")
    with funnel.session() as session:
        assert rollups.stored_rollups(session) == rollups.scan_rollups(session)
