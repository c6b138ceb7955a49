"""The CRM webhook over real HTTP, signed by the Standard Webhooks scheme: signed records are
applied once, anything else writes nothing; a replayed message is refused, and an older
record never overwrites a newer one."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import requests
from sqlmodel import func, select
from support.funnel_world import Funnel
from support.world import START

from partnercast.core.models import Event
from partnercast.core.tenancy import plain_session, tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.funnel.crm_secret import (
    LEGACY_HEADER,
    SIGNATURE_HEADER,
    new_secret,
    signed_headers,
    verify,
    verify_secret,
)
from partnercast.funnel.leads import Lead
from partnercast.funnel.models import CrmSecret, LeadStage
from partnercast.tenants.models import Tenant
from partnercast.web.app import make_http_server


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


@pytest.fixture
def secret(funnel: Funnel) -> str:
    with funnel.session() as session:
        return new_secret(session, funnel.world.settings, now=START)


def _crm_rows(funnel: Funnel) -> tuple[int, int]:
    with funnel.session() as session:
        leads = session.exec(select(func.count()).select_from(Lead)).one()
        events = session.exec(
            select(func.count()).select_from(Event).where(Event.source == "crm")
        ).one()
    return leads, events


BODY = json.dumps(
    {
        "leads": [
            {"partner": "P001", "email": "ann@client.example", "stage": "sql"},
            {"partner": "P002", "email": "ben@client.example", "stage": "won", "deal_value": 900},
            {"partner": "P002", "email": "x@client.example", "stage": "maybe"},
        ]
    }
).encode()


def _signed(
    secret: str, body: bytes, *, sent_at: datetime | None = None, message_id: str | None = None
) -> dict[str, str]:
    """The Standard Webhooks headers a CRM sends, sent now (or at ``sent_at``)."""
    return signed_headers(
        secret,
        body,
        message_id=message_id or f"msg_{uuid.uuid4().hex}",
        sent_at=sent_at or utcnow(),
    )


def _post(base: str, body: bytes, headers: dict[str, str] | None, slug: str = "northwind"):
    sent = {"Content-Type": "application/json", **(headers or {})}
    return requests.post(f"{base}/crm/{slug}/leads", data=body, headers=sent, timeout=10)


def test_a_signed_call_is_applied(funnel: Funnel, server: str, secret: str) -> None:
    response = _post(server, BODY, _signed(secret, BODY))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["created"] == 2
    assert answer["rejected"] == [{"index": 2, "reason": answer["rejected"][0]["reason"]}]
    assert "maybe" in answer["rejected"][0]["reason"]
    assert _crm_rows(funnel)[1] == 2
    again = _post(server, BODY, _signed(secret, BODY)).json()  # the same records, a new message
    assert again["unchanged"] == 2 and _crm_rows(funnel)[1] == 2


def test_the_secret_is_stored_encrypted(funnel: Funnel, secret: str) -> None:
    with funnel.session() as session:
        row = session.exec(select(CrmSecret)).one()
    assert secret not in row.sealed


def _tampered(secret: str) -> dict[str, dict[str, str] | None]:
    good = _signed(secret, BODY)
    return {
        "unsigned": None,
        "empty": {key: "" for key in good},
        "wrong": {**good, SIGNATURE_HEADER: "v1," + "A" * 44},
        "other-version": {**good, SIGNATURE_HEADER: good[SIGNATURE_HEADER].replace("v1,", "v2,")},
        "garbage": {**good, SIGNATURE_HEADER: "v1,not base64 at all"},
        "another-id": {**good, "webhook-id": "msg_other"},
        "another-time": {**good, "webhook-timestamp": str(int(good["webhook-timestamp"]) + 1)},
        "no-id": {k: v for k, v in good.items() if k != "webhook-id"},
        "bad-time": {**good, "webhook-timestamp": "yesterday"},
    }


@pytest.mark.parametrize(
    "case",
    [
        "unsigned",
        "empty",
        "wrong",
        "other-version",
        "garbage",
        "another-id",
        "another-time",
        "no-id",
        "bad-time",
    ],
)
def test_unsigned_or_wrongly_signed_is_401_and_writes_nothing(
    funnel: Funnel, server: str, secret: str, case: str
) -> None:
    before = _crm_rows(funnel)
    response = _post(server, BODY, _tampered(secret)[case])
    assert response.status_code == 401, response.text
    assert _crm_rows(funnel) == before


def test_a_signature_over_another_body_is_401(funnel: Funnel, server: str, secret: str) -> None:
    response = _post(server, BODY, _signed(secret, BODY + b" "))
    assert response.status_code == 401


def test_malformed_json_is_400_with_a_reason(funnel: Funnel, server: str, secret: str) -> None:
    for body in (b"{not json", b'"a string"', b'{"leads": []}'):
        response = _post(server, body, _signed(secret, body))
        assert response.status_code == 400, body
        assert response.json()["error"]
    assert _crm_rows(funnel)[1] == 0


def test_another_tenants_slug_with_this_tenants_secret_is_401(
    funnel: Funnel, server: str, secret: str
) -> None:
    with plain_session(funnel.engine) as session:
        other = Tenant(slug="southwind", name="Southwind", created_at=utcnow())
        session.add(other)
    with tenant_session(funnel.engine, other.id or 0) as session:
        new_secret(session, funnel.world.settings, now=START)  # southwind has its own secret
    response = _post(server, BODY, _signed(secret, BODY), slug="southwind")
    assert response.status_code == 401
    with plain_session(funnel.engine) as session:
        assert session.exec(select(Tenant).where(Tenant.slug == "southwind")).one()
    with tenant_session(funnel.engine, other.id or 0) as session:
        assert session.exec(select(func.count()).select_from(Lead)).one() == 0
    assert _post(server, BODY, _signed(secret, BODY), slug="nobody").status_code == 401


def test_a_tenant_without_a_secret_refuses_everything(funnel: Funnel, server: str) -> None:
    guess = "whsec_" + "Z3Vlc3M=" * 4
    assert _post(server, BODY, _signed(guess, BODY)).status_code == 401


def test_cli_prints_a_new_secret_once(funnel: Funnel, cli) -> None:
    out = cli("crm", "secret", "--tenant", "northwind")
    printed = out.stdout.split()[0]
    assert printed.startswith("whsec_")
    assert printed not in out.stdout.split(maxsplit=1)[1]  # shown once, not twice
    with funnel.session() as session:
        stored = verify_secret(session, funnel.world.settings)
    now = utcnow()
    message = verify(stored, b"{}", _signed(printed, b"{}", sent_at=now, message_id="m1"), now=now)
    assert message.message_id == "m1"


def test_a_missing_signature_says_how_to_sign(funnel: Funnel, server: str, secret: str) -> None:
    for slug in ("northwind", "nobody"):  # the same answer whether the tenant exists or not
        response = _post(server, BODY, None, slug=slug)
        assert response.status_code == 401
        error = response.json()["error"]
        assert error.startswith("unsigned:") and SIGNATURE_HEADER in error
        assert "partnercast crm secret" in error
    wrong = _tampered(secret)["wrong"]
    assert _post(server, BODY, wrong).json()["error"] == "signature not valid"
    assert _crm_rows(funnel) == (0, 0)


def test_every_record_rejected_is_422_and_writes_nothing(
    funnel: Funnel, server: str, secret: str
) -> None:
    body = json.dumps(
        [
            {"partner": "P001", "email": "a@client.example", "stage": "hot"},
            {"partner": "P404", "email": "b@client.example", "stage": "sql"},
        ]
    ).encode()
    response = _post(server, body, _signed(secret, body))
    assert response.status_code == 422
    reasons = [r["reason"] for r in response.json()["rejected"]]
    assert "'hot'" in reasons[0] and "P404" in reasons[1]
    assert _crm_rows(funnel) == (0, 0)


def test_a_replayed_message_is_refused_and_changes_nothing(
    funnel: Funnel, server: str, secret: str
) -> None:
    """The attack of the issue: a captured call posted again, byte for byte, headers too."""
    first = json.dumps([_record("opportunity", 1000)]).encode()
    captured = _signed(secret, first)
    assert _post(server, first, captured).status_code == 200
    newer = json.dumps([_record("opportunity", 5000)]).encode()
    assert _post(server, newer, _signed(secret, newer)).status_code == 200
    replay = _post(server, first, captured)
    assert replay.status_code == 200  # delivered before: the sender stops retrying
    assert replay.json()["duplicate"] is True and "already received" in replay.json()["reason"]
    assert _opportunity_value(funnel) == 5000
    stale = _signed(secret, first, sent_at=utcnow() - timedelta(minutes=6))
    late = _post(server, first, stale)  # a replay after the ids are forgotten: too old
    assert late.status_code == 401 and "webhook-timestamp" in late.json()["error"]
    ahead = _signed(secret, first, sent_at=utcnow() + timedelta(minutes=6))
    assert _post(server, first, ahead).status_code == 401
    assert _opportunity_value(funnel) == 5000


def test_the_same_id_in_another_tenant_is_that_tenants_own(
    funnel: Funnel, server: str, secret: str
) -> None:
    """Ids are kept per tenant: another tenant's CRM may use the same id."""
    with plain_session(funnel.engine) as session:
        other = Tenant(slug="southwind", name="Southwind", created_at=utcnow())
        session.add(other)
    with tenant_session(funnel.engine, other.id or 0) as session:
        other_secret = new_secret(session, funnel.world.settings, now=START)
    body = json.dumps([{"partner": "P404", "email": "a@b.example", "stage": "sql"}]).encode()
    mine = _post(server, BODY, _signed(secret, BODY, message_id="msg_1"))
    theirs = _post(server, body, _signed(other_secret, body, message_id="msg_1"), "southwind")
    assert mine.status_code == 200 and theirs.status_code == 422  # applied, not a replay


def test_an_older_record_arriving_late_does_not_overwrite_a_newer_one(
    funnel: Funnel, server: str, secret: str
) -> None:
    """Stage changes apply by the CRM's time: the message's webhook-timestamp, or the
    record's own occurred_at."""
    now = utcnow()
    older = json.dumps([_record("opportunity", 1000)]).encode()
    newer = json.dumps([_record("opportunity", 5000)]).encode()
    assert _post(server, newer, _signed(secret, newer, sent_at=now)).status_code == 200
    late = _post(server, older, _signed(secret, older, sent_at=now - timedelta(minutes=2)))
    assert late.status_code == 200 and late.json()["unchanged"] == 1
    assert _opportunity_value(funnel) == 5000
    dated = json.dumps(
        [_record("opportunity", 700, occurred_at=(now - timedelta(days=3)).isoformat())]
    ).encode()
    assert _post(server, dated, _signed(secret, dated)).json()["unchanged"] == 1
    assert _opportunity_value(funnel) == 5000
    later = json.dumps([_record("opportunity", 6000)]).encode()
    assert _post(server, later, _signed(secret, later, sent_at=now + timedelta(minutes=1))).ok
    assert _opportunity_value(funnel) == 6000  # a newer record still moves it


def test_an_older_lost_does_not_undo_a_newer_won(funnel: Funnel, server: str, secret: str) -> None:
    now = utcnow()
    won = json.dumps([_record("won", 5000)]).encode()
    lost = json.dumps([_record("lost", 0)]).encode()
    assert _post(server, won, _signed(secret, won, sent_at=now)).status_code == 200
    assert _post(server, lost, _signed(secret, lost, sent_at=now - timedelta(minutes=1))).ok
    assert _lead(funnel).stage == "won"
    relost = json.dumps([_record("lost", 0, email="zed@client.example")]).encode()
    assert _post(server, relost, _signed(secret, relost, sent_at=now + timedelta(minutes=1))).ok
    with funnel.session() as session:
        zed = session.exec(select(Lead).where(Lead.email == "zed@client.example")).one()
    assert zed.stage == "lost"


def test_the_old_body_only_signature_is_refused_saying_what_to_send(
    funnel: Funnel, server: str, secret: str
) -> None:
    """X-Partnercast-Signature covered the body only, so a captured call could be replayed
    for ever: it is not kept as a fallback."""
    import hashlib
    import hmac

    digest = hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()
    response = _post(server, BODY, {LEGACY_HEADER: f"sha256={digest}"})
    assert response.status_code == 401
    error = response.json()["error"]
    assert "no longer accepted" in error and SIGNATURE_HEADER in error
    assert _crm_rows(funnel) == (0, 0)


def _record(stage: str, value: float, **extra: str) -> dict[str, object]:
    record: dict[str, object] = {
        "partner": "P001",
        "email": extra.pop("email", "deal@client.example"),
        "crm_id": extra.pop("crm_id", ""),
        "stage": stage,
        "deal_value": value,
    }
    return {**record, **extra}


def _lead(funnel: Funnel) -> Lead:
    with funnel.session() as session:
        return session.exec(select(Lead).where(Lead.email == "deal@client.example")).one()


def _opportunity_value(funnel: Funnel) -> float:
    lead = _lead(funnel)
    with funnel.session() as session:
        row = session.exec(
            select(LeadStage).where(LeadStage.lead_id == lead.id, LeadStage.stage == "opportunity")
        ).one()
    return row.value


def test_ids_are_claimed_once_per_tenant_and_forgotten_after_an_hour(any_engine) -> None:
    """On SQLite and PostgreSQL: the unique (tenant, id) refuses the second claim, inside
    the caller's transaction, which stays usable; old ids are pruned as new ones come."""
    from conftest import make_tenant

    from partnercast.funnel.crm_secret import KEEP_IDS, SignedMessage, claim_message
    from partnercast.funnel.models import WebhookMessage

    north, south = make_tenant(any_engine, "north"), make_tenant(any_engine, "south")
    now = utcnow()
    message = SignedMessage("msg_1", now)
    with tenant_session(any_engine, north) as session:
        assert claim_message(session, message, source="crm", now=now)
        assert not claim_message(session, message, source="feedback", now=now)
        assert session.exec(select(func.count()).select_from(WebhookMessage)).one() == 1
    with tenant_session(any_engine, south) as session:
        assert claim_message(session, message, source="crm", now=now)
    with tenant_session(any_engine, north) as session:
        assert not claim_message(session, message, source="crm", now=now + timedelta(minutes=9))
        later = now + KEEP_IDS + timedelta(seconds=1)
        assert claim_message(session, SignedMessage("msg_2", later), source="crm", now=later)
        ids = session.exec(select(WebhookMessage.message_id)).all()
        assert ids == ["msg_2"]  # msg_1 forgotten: its timestamp alone refuses it now
    with tenant_session(any_engine, south) as session:
        assert session.exec(select(WebhookMessage.message_id)).all() == ["msg_1"]
