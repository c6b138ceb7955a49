"""The worker's purge of expired Idempotency-Keys, with ``now`` passed in: rows older than
24 hours go, of every tenant, younger ones stay; a purged key is a new request, a kept one
still replays (through the engine's own server), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import requests
from conftest import make_tenant
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from support.api_world import build_side, served

from partnercast.core.tenancy import system_session
from partnercast.web.api.conventions import (
    KEY_LIFETIME,
    PURGE_JOB,
    idempotency_purge_job,
    purge_expired_keys,
)
from partnercast.web.api.models import IdempotencyKey


def _keys(engine: Engine) -> dict[str, IdempotencyKey]:
    with system_session(engine, reason="the test reads every tenant's keys") as session:
        rows = session.exec(select(IdempotencyKey).order_by(col(IdempotencyKey.id))).all()
        return {row.key: row for row in rows}


def test_expired_keys_are_purged_and_young_ones_kept(any_engine: Engine) -> None:
    a = build_side(any_engine, make_tenant(any_engine, "vendor-a"), "A")
    b = build_side(any_engine, make_tenant(any_engine, "vendor-b"), "B")

    def post(base: str, side_token: str, partner_id: int, key: str) -> requests.Response:
        body = {
            "partner_id": partner_id,
            "external_id": key,
            "email": f"{key}@example.com",
            "consent": True,
        }
        return requests.post(
            f"{base}/contacts",
            json=body,
            headers={"Authorization": f"Bearer {side_token}", "Idempotency-Key": key},
            timeout=60,
        )

    with served(any_engine) as base:
        for side, key in ((a, "old-a"), (b, "old-b"), (a, "young-a")):
            prefix = "A" if side is a else "B"
            made = post(base, side.tokens["admin"], side.partners[f"{prefix}1"], key)
            assert made.status_code == 201, made.text
        young_at = _keys(any_engine)["young-a"].created_at
        with system_session(any_engine, reason="the test ages two keys") as session:
            for row in session.exec(select(IdempotencyKey)).all():
                if row.key.startswith("old-"):
                    row.created_at = young_at - timedelta(hours=2)
                    session.add(row)

        # Just under 24 hours after the old keys: nothing is expired yet.
        assert purge_expired_keys(any_engine, young_at + timedelta(hours=22, minutes=-1)) == 0
        assert set(_keys(any_engine)) == {"old-a", "old-b", "young-a"}
        # 25 hours after the old keys, 23 after the young one: the old of both tenants go.
        later = young_at - timedelta(hours=2) + KEY_LIFETIME + timedelta(hours=1)
        assert purge_expired_keys(any_engine, later) == 2
        assert set(_keys(any_engine)) == {"young-a"}
        assert purge_expired_keys(any_engine, later) == 0

        # A purged key is a new request; the kept one still answers what it answered.
        again = post(base, a.tokens["admin"], a.partners["A1"], "old-a")
        assert again.status_code == 200 and "idempotent-replayed" not in again.headers
        kept = post(base, a.tokens["admin"], a.partners["A1"], "young-a")
        assert kept.status_code == 201 and kept.headers["idempotent-replayed"] == "true"

    # The worker's job runs the same purge at the instant it is given.
    job = idempotency_purge_job(any_engine)
    assert job.name == PURGE_JOB and job.once
    job.function(young_at + KEY_LIFETIME)  # exactly 24 hours old: gone; old-a is younger
    assert set(_keys(any_engine)) == {"old-a"}
