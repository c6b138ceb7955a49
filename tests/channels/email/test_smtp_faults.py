"""SMTP failures injected by the test sink, run through real dispatches with tick().

Every test sends one partner's first touch (about ten contacts) to an aiosmtpd sink that
misbehaves on purpose (see partnercast.demo.smtp_sink.Fault), then looks only at behaviour:
what the sink received, the ledger's states, the dispatch's state and the concierge's
tasks. Transient trouble (4xx, 421, dropped connections, timeouts) leaves the deliveries
pending and the dispatch retrying, and the retry carries the same Message-IDs; a message
goes twice only when it was in flight as the connection broke. A permanent refusal of
one recipient bounces and suppresses that recipient while the others go; a permanent
refusal of the session (greeting, sender, login) fails the dispatch and opens a task.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select
from support.ledger_check import arrivals, copy_world
from support.world import START, World, respond, start

from partnercast.campaigns.ticking import tick
from partnercast.concierge.models import ConciergeTask
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core.accounts import ChannelAccount, connect_account
from partnercast.core.models import Delivery, Dispatch
from partnercast.core.secrets import secret_box
from partnercast.core.tenancy import tenant_session
from partnercast.core.timeutil import utcnow
from partnercast.demo.smtp_sink import BOUNCE_DOMAIN, DEFER_DOMAIN, Fault, SmtpSink
from partnercast.tenants.models import Contact, Partner, Suppression

DAY_1 = START + timedelta(days=1, hours=1)  # the first touch is due on day 1
TIMEOUT = 1.0  # the client's SMTP timeout in these tests (seconds)


@dataclass
class Run:
    world: World
    sink: SmtpSink

    def tick(self, at: datetime) -> None:
        tick(self.world.engine, self.world.settings, at, after=[scan_after_tick])

    def mailable(self) -> list[str]:
        """P001's consenting contacts that a healthy server accepts."""
        with tenant_session(self.world.engine, self.world.tenant_id) as session:
            emails = session.exec(
                select(Contact.email)
                .join(Partner, col(Partner.id) == Contact.partner_id)
                .where(Partner.external_id == "P001", Contact.consent == True)  # noqa: E712
            ).all()
        return sorted(
            e.lower() for e in emails if not e.endswith(("@" + BOUNCE_DOMAIN, "@" + DEFER_DOMAIN))
        )

    def received(self) -> Counter[str]:
        return Counter(a.to for a in arrivals(self.sink.received.raw))

    def message_ids(self) -> Counter[str]:
        return Counter(a.message_id for a in arrivals(self.sink.received.raw))

    def deliveries(self) -> dict[str, Delivery]:
        with tenant_session(self.world.engine, self.world.tenant_id) as session:
            rows = session.exec(select(Delivery)).all()
            for row in rows:
                session.expunge(row)
        return {row.email.lower(): row for row in rows}

    def dispatch(self) -> Dispatch:
        """The email dispatch of P001's first touch."""
        with tenant_session(self.world.engine, self.world.tenant_id) as session:
            row = session.exec(
                select(Dispatch).where(Dispatch.attempts > 0).order_by(col(Dispatch.id))
            ).first()
            assert row is not None, "no dispatch ran"
            session.expunge(row)
        return row

    def open_tasks(self) -> list[ConciergeTask]:
        with tenant_session(self.world.engine, self.world.tenant_id) as session:
            rows = session.exec(select(ConciergeTask).where(ConciergeTask.status == "open")).all()
            for row in rows:
                session.expunge(row)
        return list(rows)

    def suppressed(self) -> dict[str, str]:
        with tenant_session(self.world.engine, self.world.tenant_id) as session:
            return {s.email: s.reason for s in session.exec(select(Suppression)).all()}


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    """A fresh sample world whose partner P001 approved; its cycle starts at START."""
    with SmtpSink() as sink:
        world = copy_world(tmp_path / "world", sink.port, timeout_seconds=TIMEOUT)
        respond(world, {"P001": "approve"})
        start(world)
        try:
            yield Run(world, sink)
        finally:
            world.engine.dispose()


def _assert_everyone_once(run: Run, *, but: frozenset[str] = frozenset()) -> None:
    received = run.received()
    expected = [e for e in run.mailable() if e not in but]
    assert sorted(received) == expected
    assert [to for to, n in received.items() if n > 1] == []


# --- transient: nothing is lost, nothing goes twice, the retry keeps the Message-IDs ------

TRANSIENT = {
    "421 instead of the greeting": Fault("connect", reply="421 4.3.2 service shutting down"),
    "dropped right after the greeting": Fault("connect", drop=True),
    "greeting never comes (timeout)": Fault("connect", stall=math.inf, drop=True),
    "451 to MAIL FROM": Fault("mail", reply="451 4.3.0 try again later"),
    "451 to every RCPT": Fault("rcpt", reply="451 4.3.0 try again later"),
    "421 to RCPT (closing)": Fault("rcpt", reply="421 4.3.2 service shutting down"),
    "451 to the DATA command": Fault("data", reply="451 4.3.0 try again later"),
    "452 after the message": Fault("message", reply="452 4.3.1 insufficient storage"),
    "421 after the message": Fault("message", reply="421 4.3.2 service shutting down"),
    "dropped mid-DATA": Fault("message", drop=True),
}


@pytest.mark.parametrize("fault", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_a_server_in_transient_trouble_delays_the_dispatch_and_loses_nobody(
    run: Run, fault: Fault
) -> None:
    run.sink.inject(fault)
    run.tick(DAY_1)
    assert fault.fired > 0
    assert run.sink.received.count == 0
    dispatch = run.dispatch()
    assert dispatch.state == "pending", dispatch.last_error  # retrying, not failed
    assert dispatch.scheduled_at.replace(tzinfo=DAY_1.tzinfo) > DAY_1
    ledger = run.deliveries()
    assert {row.state for row in ledger.values()} <= {"pending", "suppressed"}
    assert run.suppressed() == {}  # a transient refusal is nobody's bounce
    assert run.open_tasks() == [] or all(t.kind != "dispatch_failed" for t in run.open_tasks())
    first_ids = {email: row.message_id for email, row in ledger.items() if row.message_id}

    run.sink.clear_faults()
    run.tick(DAY_1 + timedelta(hours=7))  # past any backoff the first attempt chose
    _assert_everyone_once(run)
    assert run.dispatch().state == "done"
    for message in arrivals(run.sink.received.raw):
        assert message.message_id == first_ids[message.to]  # the retry kept its Message-ID


def test_a_server_that_fails_three_times_then_recovers_gets_everyone_once(run: Run) -> None:
    fault = run.sink.inject(Fault("rcpt", reply="451 4.7.1 greylisted", times=3))[0]
    run.tick(DAY_1)
    assert fault.fired == 3
    assert len(run.received()) == len(run.mailable()) - 3
    assert run.dispatch().state == "pending"
    run.tick(DAY_1 + timedelta(hours=7))
    _assert_everyone_once(run)
    assert run.dispatch().state == "done"


@pytest.mark.parametrize(
    "fault",
    [Fault("connect", drop=True, times=1), Fault("message", drop=True, times=1)],
    ids=["dropped after the greeting once", "dropped mid-DATA once"],
)
def test_one_dropped_connection_is_reopened_and_nobody_gets_two(run: Run, fault: Fault) -> None:
    run.sink.inject(fault)
    run.tick(DAY_1)
    run.tick(DAY_1 + timedelta(hours=7))
    assert fault.fired == 1
    _assert_everyone_once(run)
    assert run.dispatch().state == "done"


def test_a_timeout_mid_transaction_sends_nobody_twice(run: Run) -> None:
    fault = run.sink.inject(Fault("message", stall=math.inf, drop=True, times=1))[0]
    run.tick(DAY_1)
    run.sink.clear_faults()
    run.tick(DAY_1 + timedelta(hours=7))
    assert fault.fired == 1
    _assert_everyone_once(run)
    assert run.dispatch().state == "done"


@pytest.mark.parametrize(
    "fault",
    [
        Fault("message", drop=True, accept=True, times=1),
        Fault("message", stall=math.inf, drop=True, accept=True, times=1),
    ],
    ids=["cut before the 250", "timed out before the 250"],
)
def test_only_the_message_in_flight_when_the_connection_broke_may_arrive_twice(
    run: Run, fault: Fault
) -> None:
    run.sink.inject(fault)
    run.tick(DAY_1)
    run.sink.clear_faults()
    run.tick(DAY_1 + timedelta(hours=7))
    [in_flight] = run.sink.received.unacknowledged
    ids = run.message_ids()
    assert ids[in_flight] in (1, 2)  # resent with the same Message-ID, or not resent
    assert [mid for mid, n in ids.items() if n > 1 and mid != in_flight] == []
    assert sorted(set(run.received())) == run.mailable()
    assert run.dispatch().state == "done"


# --- permanent per recipient: that one bounces and is suppressed, the others go ----------


@pytest.mark.parametrize(
    "stage, reply",
    [("rcpt", "550 5.1.1 no such user"), ("message", "554 5.6.0 message refused")],
    ids=["550 to RCPT", "554 after the message"],
)
def test_a_recipient_refused_for_good_bounces_and_is_suppressed_while_the_others_go(
    run: Run, stage: str, reply: str
) -> None:
    victim = run.mailable()[0]
    run.sink.inject(Fault(stage, reply=reply, match=victim))
    run.tick(DAY_1)
    _assert_everyone_once(run, but=frozenset({victim}))
    assert run.deliveries()[victim].state == "bounced"
    assert run.suppressed().get(victim) == "hard_bounce"
    assert run.dispatch().state == "done"
    run.sink.clear_faults()
    run.tick(START + timedelta(days=14, hours=1))  # the next touch leaves the bounced out
    received = run.received()
    assert victim not in received
    assert set(received.values()) == {2}


# --- permanent for the whole session: the dispatch fails and the concierge is told ---------


@pytest.mark.parametrize(
    "fault",
    [
        Fault("connect", reply="554 5.3.2 no SMTP service here"),
        Fault("mail", reply="550 5.7.1 sender not allowed"),
    ],
    ids=["554 greeting", "550 to MAIL FROM"],
)
def test_a_server_that_refuses_the_session_for_good_fails_the_dispatch_with_a_task(
    run: Run, fault: Fault
) -> None:
    run.sink.inject(fault)
    run.tick(DAY_1)
    assert run.sink.received.count == 0
    dispatch = run.dispatch()
    assert dispatch.state == "failed", f"{dispatch.state}: {dispatch.last_error}"
    # Nobody is marked sent or bounced ("sending": the journal's mark of a message handed to
    # a connection whose outcome was never recorded, one per connection at most).
    states = Counter(row.state for row in run.deliveries().values())
    assert set(states) <= {"pending", "sending", "suppressed"}
    assert states["sending"] <= 2
    assert run.suppressed() == {}  # the server refused us, not a mailbox
    tasks = [t for t in run.open_tasks() if t.kind == "dispatch_failed"]
    assert len(tasks) == 1 and tasks[0].partner_id == dispatch.partner_id


def test_a_dispatch_that_never_gets_through_gives_up_and_opens_a_task(run: Run) -> None:
    run.sink.inject(Fault("rcpt", reply="451 4.3.0 try again later"))
    moment = DAY_1
    for _ in range(8):
        run.tick(moment)
        if run.dispatch().state != "pending":
            break
        moment += timedelta(hours=7)
    dispatch = run.dispatch()
    assert dispatch.state == "failed" and dispatch.attempts >= 2
    assert run.sink.received.count == 0
    assert [t.kind for t in run.open_tasks()].count("dispatch_failed") == 1


def test_a_refused_login_marks_the_account_for_reconnection_and_fails_the_dispatch(
    tmp_path: Path,
) -> None:
    from partnercast.channels.email.channel import EmailAccount

    with SmtpSink(logins={"p001": "right"}) as sink:
        world = copy_world(tmp_path / "world", sink.port, timeout_seconds=TIMEOUT)
        run = Run(world, sink)
        respond(world, {"P001": "approve"})
        start(world)
        with tenant_session(world.engine, world.tenant_id) as session:
            partner = session.exec(select(Partner).where(Partner.external_id == "P001")).one()
            connect_account(
                session,
                partner_id=partner.id or 0,
                channel="email",
                account=EmailAccount(
                    host="127.0.0.1",
                    port=sink.port,
                    username="p001",
                    password="changed-since",  # type: ignore[arg-type]
                    from_email="marketing@p001.example",
                    from_name="P001",
                    timeout_seconds=TIMEOUT,
                ),
                box=secret_box(world.settings),
                now=utcnow(),
            )
        run.tick(DAY_1)
        assert sink.received.count == 0
        dispatch = run.dispatch()
        assert dispatch.state == "failed"
        with tenant_session(world.engine, world.tenant_id) as session:
            account = session.exec(select(ChannelAccount)).one()
        assert account.status == "needs_reconnect"
        kinds = [t.kind for t in run.open_tasks()]
        assert "dispatch_failed" in kinds or "account_reconnect" in kinds
        # Until it is reconnected, nothing more is tried against the server.
        sessions = sink.received.sessions
        run.tick(START + timedelta(days=14, hours=1))
        assert sink.received.sessions == sessions
        world.engine.dispose()


# --- the delivery journal failing under the channel ----------------------------------------


def test_a_journal_that_fails_on_its_last_record_makes_publish_raise_not_hang(
    sink: SmtpSink,
) -> None:
    """A database error while recording the last outcome (PostgreSQL gone, SQLite busy past
    its timeout) must reach the engine as an error, not leave the worker stuck forever."""
    import threading

    from partnercast.channels.email.channel import EmailAccount, EmailChannel
    from partnercast.plugins import Recipient
    from partnercast.plugins.testing import kit_config, simple_request

    class FailingJournal:
        def record(self, done: object, handing_over: int | None) -> bool:
            if handing_over is None:
                raise RuntimeError("database is locked")
            return True

    channel = EmailChannel(kit_config())
    mjml = (
        "<mjml><mj-body><mj-section><mj-column><mj-text>Hi</mj-text>"
        "</mj-column></mj-section></mj-body></mjml>"
    )
    draft = channel.render(simple_request("email", {"subject": "Hello"}, mjml))
    account = EmailAccount(
        host="127.0.0.1", port=sink.port, from_email="a@p.example", from_name="A"
    )
    recipients = [Recipient(n, n, f"c{n}@x.example", f"<{n}@t>", {}) for n in range(1, 5)]
    outcome: list[BaseException | None] = []

    def send() -> None:
        try:
            channel.publish(
                draft, account, idempotency_key="k", recipients=recipients, journal=FailingJournal()
            )  # type: ignore[call-arg]
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=send, daemon=True)  # a hang must not hang the suite
    thread.start()
    thread.join(timeout=15)
    channel.close()
    assert not thread.is_alive(), "publish() hangs"
    assert outcome and isinstance(outcome[0], RuntimeError)
