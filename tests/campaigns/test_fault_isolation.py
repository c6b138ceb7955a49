"""One tenant's failing dispatch fails alone: the other tenant's mail goes out in the same
tick, the failure is said in one line per reason, retried a bounded number of times, and
opens one concierge task (issue 12). SQLite and PostgreSQL, a real SMTP server (aiosmtpd).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from support.breakage import BREAKAGES, Breakage, received_by_dispatch, two_tenants
from support.world import START

from partnercast.campaigns.dispatching import MAX_ATTEMPTS
from partnercast.campaigns.ticking import tick
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.demo.smtp_sink import SmtpSink

FIRST = START + timedelta(hours=1)
LATER = timedelta(hours=7)  # past the longest back-off (RETRY_CAP): every retry is due


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_a_broken_tenant_fails_alone_and_the_other_gets_all_its_mail_in_the_same_tick(
    any_engine: Engine, tmp_path: Path, sink: SmtpSink, breakage: Breakage
) -> None:
    world = two_tenants(any_engine, tmp_path, sink, breakage, starts_at=START)

    first = tick(
        any_engine, world.alpha.settings, FIRST, plugins=world.plugins, after=[scan_after_tick]
    )

    # Beta: every first touch done and every consenting contact mailed, in this tick.
    assert world.beta_states()["done"] == 6
    audience = world.beta_audience()
    assert audience > 0 and world.beta_sent() == audience == sink.received.count
    got = received_by_dispatch(sink)
    assert set(got) <= world.dispatch_ids(world.beta)  # none of alpha's went out
    # Alpha: its dispatch failed or will be retried, and the tick says why in one line.
    dispatch = world.alpha_dispatch()
    assert dispatch.state in ("failed", "pending"), dispatch.last_error
    assert dispatch.last_error and dispatch.attempts == 1
    [line] = first.why()
    assert "alpha" in line and f"dispatch {dispatch.id}" in line and "beta" not in line
    assert "Traceback" not in line and "\n" not in line
    assert dispatch.last_error.removeprefix("retrying: ") in line

    # Each later tick retries it at most once and says so once, until it ends failed.
    lines = [line]
    at = FIRST
    for _ in range(MAX_ATTEMPTS + 2):
        if world.alpha_dispatch().state == "failed":
            break
        at += LATER
        report = tick(
            any_engine, world.alpha.settings, at, plugins=world.plugins, after=[scan_after_tick]
        )
        lines += [text for text in report.why() if "alpha" in text]
    dispatch = world.alpha_dispatch()
    assert dispatch.state == "failed"
    assert 1 <= dispatch.attempts <= MAX_ATTEMPTS
    assert len(lines) == dispatch.attempts  # one line per attempt, never more
    if dispatch.last_error.startswith("gave up after"):  # retried: every attempt made
        assert dispatch.attempts == MAX_ATTEMPTS
    else:  # a template error that is the same on every attempt: failed at the first
        assert dispatch.attempts == 1 and not breakage.plugin
    if breakage.plugin:  # nothing classified the error: retried up to the bound
        assert dispatch.attempts == MAX_ATTEMPTS
        assert dispatch.last_error.startswith(f"gave up after {MAX_ATTEMPTS} attempts: ")
    # One concierge task for it, in alpha only, whatever the number of attempts.
    [task] = world.tasks(world.alpha)
    assert task.cause_key == f"dispatch_failed:d{dispatch.id}" and task.status == "open"
    assert world.tasks(world.beta) == []
    assert sink.received.count == audience  # and beta got nothing twice


def test_an_unclassified_failure_opens_its_task_at_the_first_attempt_not_at_the_last(
    engine: Engine, tmp_path: Path, sink: SmtpSink
) -> None:
    world = two_tenants(engine, tmp_path, sink, Breakage(plugin=True), starts_at=START)
    tick(engine, world.alpha.settings, FIRST, plugins=world.plugins, after=[scan_after_tick])
    dispatch = world.alpha_dispatch()
    assert dispatch.state == "pending" and dispatch.last_error.startswith("retrying: TypeError")
    assert dispatch.scheduled_at.replace(tzinfo=None) > FIRST.replace(tzinfo=None)  # backed off
    [task] = world.tasks(world.alpha)
    assert "is failing and being retried" in task.title and "TypeError" in task.title
    # The same tick again (nothing due) and the next retry open no second task.
    tick(engine, world.alpha.settings, FIRST, plugins=world.plugins, after=[scan_after_tick])
    tick(
        engine, world.alpha.settings, FIRST + LATER, plugins=world.plugins, after=[scan_after_tick]
    )
    assert world.alpha_dispatch().attempts == 2
    assert [t.id for t in world.tasks(world.alpha)] == [task.id]
