"""CRM lead stages by CSV: upserts, idempotent, rejected rows with their lines, no half rows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import func, select
from support.funnel_world import Funnel, add_form_lead, write_csv
from support.world import START

from partnercast.core.models import Event
from partnercast.core.timeutil import utcnow
from partnercast.funnel import crm_import, rollups
from partnercast.funnel.crm_import import import_leads
from partnercast.funnel.leads import Lead
from partnercast.funnel.models import LeadStage

HEADER = "partner,email,campaign,stage,deal_value,currency,occurred_at\n"
# The funnel fixture ran the world to its day 2: what the CRM sends arrives then.
NOW = START + timedelta(days=2)


def _counts(funnel: Funnel) -> tuple[int, int, int, dict]:
    with funnel.session() as session:
        leads = session.exec(select(func.count()).select_from(Lead)).one()
        stages = session.exec(select(func.count()).select_from(LeadStage)).one()
        events = session.exec(select(func.count()).select_from(Event)).one()
        stored = rollups.stored_rollups(session)
    return leads, stages, events, stored


def test_import_upserts_and_a_second_import_changes_nothing(funnel: Funnel, tmp_path: Path) -> None:
    lead_id = add_form_lead(funnel, "P001", "ada@client.example")
    path = write_csv(
        tmp_path / "crm.csv",
        HEADER
        + "P001,ada@client.example,cloud-security,mql,,,2026-12-06\n"
        + "P001,ada@client.example,cloud-security,opportunity,12000,EUR,2026-12-10\n"
        + "P002,bob@client.example,cloud-security,sql,,,2026-12-07\n",
    )
    with funnel.session() as session:
        first = import_leads(session, path, now=NOW)
    assert (first.created, first.updated, first.unchanged, first.rejected) == (1, 2, 0, [])
    with funnel.session() as session:
        ada = session.get(Lead, lead_id)
        assert ada is not None and ada.stage == "opportunity"
        kinds = [e.kind for e in session.exec(select(Event).where(Event.source == "crm")).all()]
        assert sorted(kinds) == ["mql", "opportunity", "sql"]
        opportunity = session.exec(select(Event).where(Event.kind == "opportunity")).one()
        assert opportunity.value == 12000 and opportunity.partner_id == funnel.partners["P001"]
        assert opportunity.data["cycle_id"] is not None and opportunity.campaign_id is not None
    before = _counts(funnel)
    with funnel.session() as session:
        second = import_leads(session, path, now=NOW)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 3)
    assert _counts(funnel) == before


def test_rejected_rows_name_their_physical_line_and_good_rows_are_kept(
    funnel: Funnel, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "crm.csv",
        HEADER
        + 'P001,"carol@client.example",cloud-security,won,5000,EUR,2026-12-08\n'
        + "P001,dan@client.example,cloud-security,closed,,,\n"
        + 'P999,"eve\n@client.example",,mql,,,\n'
        + "P002,fay@client.example,,sql,-4,,\n"
        + "P002,,,sql,,,\n"
        + "P002,gus@client.example,nope,sql,,EURO,yesterday\n"
        + "P002,too,few\n",
    )
    with funnel.session() as session:
        report = import_leads(session, path, now=NOW)
    assert report.created == 1
    lines = {r.line: r.reason for r in report.rejected}
    assert set(lines) == {3, 4, 6, 7, 8, 9}
    assert "stage 'closed'" in lines[3]
    assert "unknown partner 'P999'" in lines[4]
    assert "zero or more" in lines[6]
    assert "give lead_id or email" in lines[7]
    assert "unknown campaign" in lines[8] and "currency" in lines[8] and "occurred_at" in lines[8]
    assert "fields" in lines[9]
    with funnel.session() as session:
        carol = session.exec(select(Lead).where(Lead.email == "carol@client.example")).one()
        reached = session.exec(select(LeadStage.stage).where(LeadStage.lead_id == carol.id)).all()
    assert sorted(reached) == sorted(["lead", "mql", "sql", "opportunity", "won"])


def test_a_row_failing_while_written_leaves_nothing_behind(
    funnel: Funnel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = crm_import._event

    def flaky(lead: Lead, update, **kwargs):  # type: ignore[no-untyped-def]
        if lead.email == "bad@client.example":
            raise SQLAlchemyError("disk full")
        return real(lead, update, **kwargs)

    monkeypatch.setattr(crm_import, "_event", flaky)
    before = _counts(funnel)
    path = write_csv(
        tmp_path / "crm.csv",
        HEADER
        + "P001,bad@client.example,cloud-security,opportunity,900,,\n"
        + "P001,ok@client.example,cloud-security,mql,,,\n",
    )
    with funnel.session() as session:
        report = import_leads(session, path, now=NOW)
    assert report.created == 1 and [r.line for r in report.rejected] == [2]
    assert "not saved" in report.rejected[0].reason
    with funnel.session() as session:
        assert session.exec(select(Lead).where(Lead.email == "bad@client.example")).first() is None
        stored = rollups.stored_rollups(session)
    leads, stages, events, _ = _counts(funnel)
    assert (leads, stages, events) == (before[0] + 1, before[1] + 2, before[2] + 1)
    assert sum(c for (_, _, _, _, m), (c, _) in stored.items() if m == "opportunity") == 0


def test_a_changed_deal_value_is_an_adjustment(funnel: Funnel, tmp_path: Path) -> None:
    first = write_csv(
        tmp_path / "a.csv", HEADER + "P001,x@c.example,cloud-security,opportunity,100,,\n"
    )
    second = write_csv(
        tmp_path / "b.csv", HEADER + "P001,x@c.example,cloud-security,opportunity,250,,\n"
    )
    with funnel.session() as session:
        import_leads(session, first, now=NOW)
    with funnel.session() as session:
        report = import_leads(session, second, now=NOW)
        assert report.updated == 1
        stored = rollups.stored_rollups(session)
    opportunity = [v for (_, _, _, _, m), v in stored.items() if m == "opportunity"]
    assert opportunity == [(1, 250.0)]


def test_cli_import_prints_rejections_and_fails_when_nothing_is_kept(
    funnel: Funnel, cli, tmp_path: Path
) -> None:
    good = write_csv(tmp_path / "good.csv", HEADER + "P001,z@c.example,cloud-security,mql,,,\n")
    bad = write_csv(tmp_path / "bad.csv", HEADER + "P001,z@c.example,cloud-security,maybe,,,\n")
    out = cli("leads", "import", str(good), "--tenant", "northwind")
    assert "1 new leads" in out.stdout
    again = cli("leads", "import", str(good), "--tenant", "northwind")
    assert "1 unchanged" in again.stdout
    failed = cli("leads", "import", str(bad), "--tenant", "northwind", expect=1)
    assert "every row was rejected" in failed.stderr and "maybe" in failed.stdout


def test_a_lead_id_of_another_partner_or_tenant_is_rejected(funnel: Funnel, tmp_path: Path) -> None:
    from partnercast.core.tenancy import plain_session, tenant_session
    from partnercast.tenants.models import Partner, Tenant

    lead_id = add_form_lead(funnel, "P001", "own@client.example")
    with plain_session(funnel.engine) as session:
        other = Tenant(slug="southwind", name="Southwind", created_at=utcnow())
        session.add(other)
    with tenant_session(funnel.engine, other.id or 0) as session:
        session.add(
            Partner(
                external_id="P001", name="Southern P001", created_at=utcnow(), updated_at=utcnow()
            )
        )
    path = write_csv(
        tmp_path / "crm.csv",
        f"partner,lead_id,stage\nP002,{lead_id},mql\nP001,{lead_id},sql\nP001,x1,mql\n",
    )
    with tenant_session(funnel.engine, other.id or 0) as session:
        foreign = import_leads(session, path, now=NOW)
    assert [r.line for r in foreign.rejected] == [2, 3, 4]
    assert f"no lead {lead_id}" in foreign.rejected[1].reason
    with funnel.session() as session:
        mine = import_leads(session, path, now=NOW)
        assert session.get(Lead, lead_id).stage == "sql"  # type: ignore[union-attr]
    assert mine.updated == 1 and [r.line for r in mine.rejected] == [2, 4]
    assert "not a number" in mine.rejected[1].reason
