"""`contacts erase` reaches the addresses inside events' data (a bounce's recipient and
diagnostic, a form's fields, a webhook's payload) and deliveries' error texts, in the
tenant that asked only. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from conftest import make_tenant
from sqlalchemy.engine import Engine
from sqlmodel import select

from partnercast.core.models import Event
from partnercast.core.tenancy import tenant_session
from partnercast.tenants.suppressions import erase

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ANNA = "anna_m@brauhaus.example"  # an underscore: a LIKE wildcard unless escaped
JURGEN = "jürgen@brauhaus.example"


def _events(engine: Engine, tenant_id: int) -> list[tuple[str, dict]]:
    with tenant_session(engine, tenant_id) as session:
        return [(e.kind, e.data) for e in session.exec(select(Event).order_by(Event.id)).all()]


def _add_events(engine: Engine, tenant_id: int) -> None:
    with tenant_session(engine, tenant_id) as session:
        for kind, data in (
            ("bounced", {"recipient": "Anna_M@Brauhaus.example", "status": "5.1.1",
                         "detail": "550 5.1.1 <ANNA_M@brauhaus.example>: no such user"}),
            ("form", {"lead_id": 3, "fields": [{"email": ANNA}, {"name": "Anna"}],
                      "by": {ANNA: "yes"}}),
            ("bounced", {"recipient": JURGEN.upper(), "detail": f"mailbox {JURGEN} full"}),
            ("bounced", {"recipient": "annaxm@brauhaus.example", "n": 1}),  # not hers
            ("sent", {"cycle_id": 1}),
        ):  # fmt: skip
            session.add(Event(kind=kind, occurred_at=AT, data=data))


def test_erasure_clears_the_address_from_event_data_in_its_tenant_only(
    any_engine: Engine,
) -> None:
    mine, other = make_tenant(any_engine, "vendor-a"), make_tenant(any_engine, "vendor-b")
    _add_events(any_engine, mine)
    _add_events(any_engine, other)
    before = _events(any_engine, other)
    with tenant_session(any_engine, mine) as session:
        done = erase(session, ANNA, now=AT)
        assert dict(done.others)["events"] == 2
        assert dict(erase(session, JURGEN, now=AT).others)["events"] == 1
    assert _events(any_engine, mine) == [
        ("bounced", {"recipient": "", "status": "5.1.1",
                     "detail": "550 5.1.1 <[erased]>: no such user"}),
        ("form", {"lead_id": 3, "fields": [{"email": ""}, {"name": "Anna"}],
                  "by": {"[erased]": "yes"}}),
        ("bounced", {"recipient": "", "detail": "mailbox [erased] full"}),
        ("bounced", {"recipient": "annaxm@brauhaus.example", "n": 1}),
        ("sent", {"cycle_id": 1}),
    ]  # fmt: skip
    assert _events(any_engine, other) == before
    # Again: nothing left to find.
    with tenant_session(any_engine, mine) as session:
        assert "events" not in dict(erase(session, ANNA, now=AT).others)


def test_erase_command_says_how_many_events_it_anonymised(
    cli, engine: Engine, tenant_a: int
) -> None:
    _add_events(engine, tenant_a)
    done = cli("contacts", "erase", ANNA, "--tenant", "vendor-a")
    assert ", 2 events anonymised" in done.stdout
    assert "brauhaus" not in str(_events(engine, tenant_a)[:2])
