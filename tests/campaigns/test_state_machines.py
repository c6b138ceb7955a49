"""Property-based (stateful) test of the enrollment, approval and dispatch state machines.

Hypothesis drives random sequences of what partners, concierges, contacts, the clock and
the infrastructure do: customise, submit, approve, decline, ask for changes, reinvite,
turn auto-approval on, change content behind an approval, unsubscribe or suppress a
contact, add contacts (one of them with a suppressed address in other letters), start a
cycle, tick after some hours, crash a worker mid-dispatch, lose a lease mid-dispatch, and
make the SMTP server hiccup. After every step the messages a real SMTP server (aiosmtpd)
received are checked against an independent model and the ledger:

* a message goes out only for a partner whose approval (by the model's own state machine)
  holds at that tick, and it carries exactly the content approved (the signature the
  partner approved is in the text, and nothing changed since);
* no message reaches an address suppressed before the tick that sent it;
* no delivery (one contact, one dispatch: one Message-ID) arrives twice, except one the
  SMTP server kept while the client never got its reply (in flight when the connection
  broke) or, when the ledger has ``Delivery.uncertain``, one flagged uncertain. Without
  that column (before the per-connection delivery journal), a delivery sent by a worker
  that crashed or lost its lease before recording it may also arrive again: it is still
  ``pending`` in the ledger when the crash is over, and it is resent with the same
  Message-ID;
* the ledger does not lie: every delivery it marks sent arrived, no message arrived that
  the ledger does not know, none arrived for a delivery it marks suppressed unless it
  arrived before the address was suppressed (its outcome lost in a crash).

Sizes: 30 examples of up to 20 steps, no deadline. A step that sends costs 0.1-0.5 s
(MJML, SMTP to the sink, SQLite commits) and a fresh world is a file copy, so a run takes
about 35 s of CPU (measured 50 s wall on a 2-core machine, 2.5 min when the machine was
shared with other test runs): affordable on every CI run, while most steps also move the
clock and tick, so that 30 examples reach sends, crashes mid-send and uncertain repeats in
most of them (--hypothesis-show-statistics prints how many). Hypothesis ends many runs early,
so more steps add little; PARTNERCAST_HYPOTHESIS_EXAMPLES / _STEPS raise the numbers for a
longer local run. A failure shrinks for up to 5 minutes before it prints its steps.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from sqlalchemy import update
from sqlmodel import col, select
from support.ledger_check import (
    Arrival,
    arrivals,
    copy_world,
    has_uncertain_column,
    ledger,
)
from support.world import START

from partnercast.campaigns import approval
from partnercast.campaigns.cycles import start_cycle
from partnercast.campaigns.enrollment import customise, find_enrollment, set_auto_approve
from partnercast.campaigns.models import Cycle
from partnercast.campaigns.store import get_campaign
from partnercast.campaigns.ticking import tick
from partnercast.channels.email.channel import EmailChannel
from partnercast.concierge.scan_schedule import scan_after_tick
from partnercast.core.models import Delivery, Dispatch
from partnercast.core.tenancy import tenant_session
from partnercast.demo.smtp_sink import Fault, SmtpSink
from partnercast.tenants.models import Contact, Partner
from partnercast.tenants.suppressions import (
    normalise_email,
    suppress,
    unsubscribe_by_token,
    unsubscribe_token,
)

PARTNERS = ("P001", "P002", "P003")
CAMPAIGN = "cloud-security"
# After most steps, time moves on and the engine ticks (hours; 0: it does not): Hypothesis
# ends many runs after a few steps, and only ticks send.
THEN = st.sampled_from([0, 0, 6, 24, 72, 24 * 7])
OPENING = ["approve", "approve", "auto", "submit", "none"]  # how each partner starts

# The model's own approval state machine (action -> allowed from, leads to), written out
# here rather than imported, so that a change to the engine's table shows up as a failure.
MODEL: dict[str, tuple[set[str], str]] = {
    "customise": ({"invited", "customising", "changes_requested", "submitted", "approved"}, "c"),
    "submit": ({"invited", "customising", "changes_requested"}, "submitted"),
    "approve": ({"submitted"}, "approved"),
    "request_changes": ({"submitted"}, "changes_requested"),
    "decline": ({"invited", "customising", "submitted", "changes_requested", "approved"}, "d"),
    "reinvite": ({"declined"}, "invited"),
}
TARGET = {"c": "customising", "d": "declined"}


class WorkerDied(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs (not an Exception)."""


class DispatchMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sink = SmtpSink().__enter__()
        self.folder = Path(tempfile.mkdtemp(prefix="partnercast-sm-"))
        self.world = copy_world(self.folder, self.sink.port)
        self.now = START - timedelta(days=1)
        self.cycle_ends: datetime | None = None
        self.version = 0
        # The model: per partner its approval state, the signature its content carries now,
        # and the signature it approved (None when no approval stands).
        self.state = dict.fromkeys(PARTNERS, "invited")
        self.auto = dict.fromkeys(PARTNERS, False)
        self.content: dict[str, str] = dict.fromkeys(PARTNERS, "")
        self.approved: dict[str, str | None] = dict.fromkeys(PARTNERS, None)
        self.suppressed: set[str] = set()
        self.contacts_added = 0
        self.checked = 0  # arrivals already checked
        self.seen: list[Arrival] = []
        self.may_repeat: set[str] = set()  # Message-IDs allowed to arrive again (see top)
        self.armed: Any = None
        self.crashes = 0
        self.arrived_before_suppression: set[str] = set()
        self.approved_ticks = 0  # a crash waiting for the next publish
        with tenant_session(self.world.engine, self.world.tenant_id) as session:
            rows = session.exec(select(Partner).where(col(Partner.external_id).in_(PARTNERS)))
            self.sender = {p.external_id: (p.sender_email or "").lower() for p in rows.all()}

    def teardown(self) -> None:
        # --hypothesis-show-statistics tells how much of the space the examples reached
        sent = len(self.sink.received.raw)
        event(f"messages received: {'none' if not sent else '<50' if sent < 50 else '50+'}")
        event(f"crashed while sending: {'yes' if self.crashes else 'no'}")
        sending = self.approved_ticks
        event(f"ticks that could send: {'5+' if sending >= 5 else sending}")
        repeats = sum(n > 1 for n in Counter(a.message_id for a in self.seen).values())
        event(f"messages that arrived twice: {'yes' if repeats else 'no'}")
        self.world.engine.dispose()
        self.sink.__exit__(None, None, None)

    # --- partners and concierges ----------------------------------------------------------

    def _act(self, partner: str, action: str, **values: Any) -> None:
        allowed, target = MODEL[action]
        refused = False
        with tenant_session(self.world.engine, self.world.tenant_id) as session:
            enrollment = find_enrollment(session, CAMPAIGN, partner)
            try:
                if action == "customise":
                    customise(session, enrollment, values, actor="concierge", now=self.now)
                else:
                    approval.transition(session, enrollment, action, actor="partner", now=self.now)
            except approval.TransitionRefused:
                refused = True
        assert refused == (self.state[partner] not in allowed), (partner, action)
        if refused:
            return
        new = TARGET.get(target, target)
        if action == "submit" and self.auto[partner]:
            new = "approved"
        if action == "customise":
            self.content[partner] = values["signature_line"]
        self.state[partner] = new
        self.approved[partner] = self.content[partner] if new == "approved" else None

    @initialize(
        answers=st.tuples(
            *(st.sampled_from(["approve", "approve", "auto", "submit", "none"]),) * 3
        ),
        starts_in_hours=st.integers(1, 30),
    )
    def begin(self, answers: tuple[str, ...], starts_in_hours: int) -> None:
        """Most runs start with some partners approved and a cycle about to start."""
        for partner, answer in zip(PARTNERS, answers, strict=True):
            if answer == "auto":
                self.auto_approve(partner, True)
            if answer != "none":
                self.customise(partner)
                self._act(partner, "submit")
            if answer == "approve":
                self._act(partner, "approve")
        self.start_a_cycle_at(self.now + timedelta(hours=starts_in_hours))

    @rule(partner=st.sampled_from(PARTNERS), then=THEN)
    def customise(self, partner: str, then: int = 0) -> None:
        self.version += 1
        self._act(partner, "customise", signature_line=f"Signed {partner} ~{self.version}~")
        self._then(then)

    @rule(partner=st.sampled_from(PARTNERS), then=THEN)
    def approve_new_content(self, partner: str, then: int = 0) -> None:
        """The happy path in one step: customise, submit, approve (as far as allowed)."""
        self.customise(partner)
        self._act(partner, "submit")
        self._act(partner, "approve")
        self._then(then)

    @rule(
        partner=st.sampled_from(PARTNERS),
        action=st.sampled_from(["submit", "approve", "request_changes", "decline", "reinvite"]),
        then=THEN,
    )
    def answer(self, partner: str, action: str, then: int = 0) -> None:
        self._act(partner, action)
        self._then(then)

    @rule(partner=st.sampled_from(PARTNERS), enabled=st.booleans(), then=THEN)
    def auto_approve(self, partner: str, enabled: bool, then: int = 0) -> None:
        with tenant_session(self.world.engine, self.world.tenant_id) as session:
            set_auto_approve(session, find_enrollment(session, CAMPAIGN, partner), enabled)
        self.auto[partner] = enabled
        self._then(then)

    @rule(partner=st.sampled_from(PARTNERS), then=THEN)
    def change_content_behind_the_approval(self, partner: str, then: int = 0) -> None:
        """Someone writes the customisation without going through customise()."""
        self.version += 1
        signature = f"Sneaked {partner} ~{self.version}~"
        with tenant_session(self.world.engine, self.world.tenant_id) as session:
            enrollment = find_enrollment(session, CAMPAIGN, partner)
            enrollment.customization = {**enrollment.customization, "signature_line": signature}
            session.add(enrollment)
        self.content[partner] = signature  # the approval (if any) stays, for other content
        self._then(then)

    # --- contacts -------------------------------------------------------------------------

    def _contacts(self) -> list[Contact]:
        with tenant_session(self.world.engine, self.world.tenant_id) as session:
            rows = session.exec(
                select(Contact)
                .join(Partner, col(Partner.id) == Contact.partner_id)
                .where(col(Partner.external_id).in_(PARTNERS))
                .order_by(col(Contact.id))
            ).all()
            for row in rows:
                session.expunge(row)
            return list(rows)

    @rule(pick=st.integers(0, 10_000), by_link=st.booleans(), then=THEN)
    def unsubscribe(self, pick: int, by_link: bool, then: int = 0) -> None:
        contacts = self._contacts()
        contact = contacts[pick % len(contacts)]
        with tenant_session(self.world.engine, self.world.tenant_id) as session:
            dispatch_id = session.exec(select(Dispatch.id)).first()
        if by_link and dispatch_id is not None:  # the signed one-click link of a message
            token = unsubscribe_token(
                self.world.settings,
                tenant_id=self.world.tenant_id,
                contact_id=contact.id or 0,
                dispatch_id=dispatch_id,
                now=self.now,
            )
            unsubscribe_by_token(self.world.engine, self.world.settings, token, now=self.now)
        else:  # a complaint or a concierge's suppression
            with tenant_session(self.world.engine, self.world.tenant_id) as session:
                suppress(session, contact.email, reason="complaint", now=self.now)
        address = normalise_email(contact.email)
        self.suppressed.add(address)
        self.arrived_before_suppression |= {a.message_id for a in self.seen if a.to == address}
        self._then(then)

    @rule(partner=st.sampled_from(PARTNERS), reuse_suppressed=st.booleans(), then=THEN)
    def add_contact(self, partner: str, reuse_suppressed: bool, then: int = 0) -> None:
        self.contacts_added += 1
        email = f"new{self.contacts_added}@contacts.example"
        if reuse_suppressed and self.suppressed:
            email = sorted(self.suppressed)[0].upper()  # the same address in other letters
        with tenant_session(self.world.engine, self.world.tenant_id) as session:
            owner = session.exec(select(Partner).where(Partner.external_id == partner)).one()
            session.add(
                Contact(
                    partner_id=owner.id or 0,
                    external_id=f"added-{self.contacts_added}",
                    email=email,
                    first_name="Nova",
                    consent=True,
                    created_at=self.now,
                    updated_at=self.now,
                )
            )
        self._then(then)

    # --- cycles, the clock and the infrastructure -------------------------------------------

    @precondition(lambda self: self.cycle_ends is None or self.now >= self.cycle_ends)
    @rule(days_ahead=st.integers(0, 3))
    def start_a_cycle(self, days_ahead: int) -> None:
        self.start_a_cycle_at(self.now + timedelta(days=days_ahead))

    def start_a_cycle_at(self, when: datetime) -> None:
        with tenant_session(self.world.engine, self.world.tenant_id) as session:
            cycle: Cycle = start_cycle(session, get_campaign(session, CAMPAIGN), when, now=self.now)
            self.cycle_ends = cycle.ends_at.replace(tzinfo=self.now.tzinfo)

    @rule(hours=st.sampled_from([1, 6, 24, 72, 24 * 7, 24 * 14]))
    def tick(self, hours: int) -> None:
        self._tick(hours)

    @rule(hours=st.sampled_from([24, 24 * 5, 24 * 13]))
    def tick_later(self, hours: int) -> None:
        """A second tick rule: Hypothesis picks rules evenly, and most steps should tick."""
        self._tick(hours)

    @rule(after=st.integers(0, 4), then=THEN)
    def crash_mid_dispatch(self, after: int, then: int = 0) -> None:
        """The worker of the next tick that sends dies once ``after`` messages got their 250
        and before that last one is recorded (a BaseException: nothing after it runs, as with
        SIGKILL). Without a delivery journal: it dies after handing ``after`` over."""
        self.armed = ("die", after)
        self._then(then)

    @rule(after=st.integers(0, 4), then=THEN)
    def lose_the_lease_mid_dispatch(self, after: int, then: int = 0) -> None:
        """In the next tick that sends, another worker takes the dispatch over (and then
        dies) once ``after`` messages were sent, while this one goes on as long as it can."""
        self.armed = ("steal", after)
        self._then(then)

    def _steal(self, delivery_id: int) -> None:
        with self.world.engine.begin() as connection:
            dispatch = select(Delivery.dispatch_id).where(Delivery.id == delivery_id)
            connection.execute(
                update(Dispatch)
                .where(col(Dispatch.id).in_(dispatch.scalar_subquery()))
                .values(lease_owner="thief", lease_until=self.now + timedelta(minutes=30))
            )

    def _sabotaged_publish(self, how: str, after: int) -> Any:
        """EmailChannel.publish, sabotaged at the ``after``-th message (see the two rules)."""
        original = EmailChannel.publish
        machine = self

        class Journal:  # wraps the engine's DeliveryJournal (plugins.channel)
            def __init__(self, inner: Any) -> None:
                self.inner, self.done, self.lock = inner, 0, threading.Lock()

            def record(self, done: Any, handing_over: int | None) -> bool:
                with self.lock:
                    self.done += done is not None
                    # Only while handing a message over: a lane whose LAST record raises
                    # hangs publish() (a channel bug, see tests/channels/email/test_smtp_faults.py).
                    strike = (
                        machine.armed is not None
                        and self.done >= after
                        and handing_over is not None
                    )
                    if strike:
                        machine.armed = None
                if strike and how == "die":
                    raise WorkerDied("SIGKILL")
                if strike:
                    machine._steal(done.delivery_id if done is not None else handing_over or 0)
                return bool(self.inner.record(done, handing_over))

        def publish(channel: EmailChannel, draft: Any, account: Any, **kwargs: Any) -> Any:
            if kwargs.get("journal") is not None:
                kwargs["journal"] = Journal(kwargs["journal"])
                return original(channel, draft, account, **kwargs)
            machine.armed = None  # no journal: sabotage between messages
            recipients = list(kwargs.get("recipients", ()))
            kwargs["recipients"] = recipients[:after]
            first = original(channel, draft, account, **kwargs)
            if how == "die":
                raise WorkerDied("SIGKILL")
            if recipients:
                machine._steal(recipients[0].delivery_id)
            kwargs["recipients"] = recipients[after:]
            first.outcomes.extend(original(channel, draft, account, **kwargs).outcomes)
            return first

        return publish

    @rule(
        kind=st.sampled_from(["in-flight drop", "defer twice", "421 at data", "drop at greeting"]),
        then=THEN,
    )
    def smtp_hiccup(self, kind: str, then: int = 0) -> None:
        self.sink.clear_faults()
        fault = {
            "in-flight drop": Fault("message", drop=True, accept=True, times=1),
            "defer twice": Fault("rcpt", reply="451 4.3.0 try later", times=2),
            "421 at data": Fault("data", reply="421 4.3.2 shutting down", times=1),
            "drop at greeting": Fault("connect", drop=True, times=1),
        }[kind]
        self.sink.inject(fault)
        self._then(then)

    # --- the tick and what it sent -----------------------------------------------------------

    def _then(self, hours: int) -> None:
        if hours:
            self._tick(hours)

    def _tick(self, hours: int) -> None:
        self.now += timedelta(hours=hours)
        crash = self.armed is not None
        patch = self._sabotaged_publish(*self.armed) if crash else None
        may_send = {
            self.sender[p]: self.approved[p]
            for p in PARTNERS
            if self.approved[p] is not None and self.approved[p] == self.content[p]
        }
        suppressed_before = set(self.suppressed)
        self.approved_ticks += bool(may_send)
        before = len(self.sink.received.raw)
        original = EmailChannel.publish
        if patch is not None:
            EmailChannel.publish = patch  # type: ignore[method-assign]
        try:
            tick(self.world.engine, self.world.settings, self.now, after=[scan_after_tick])
        except WorkerDied:
            pass
        finally:
            EmailChannel.publish = original  # type: ignore[method-assign]
        new = arrivals(self.sink.received.raw[before:])
        for arrival in new:
            address = arrival.sender.split("<")[-1].rstrip(">").strip().lower()
            assert address in may_send, f"{arrival.to} got mail from {address} without approval"
            assert may_send[address] in arrival.text, (
                f"{arrival.to} got content that {address} did not approve: "
                f"expected {may_send[address]!r}"
            )
            assert arrival.to not in suppressed_before, f"{arrival.to} was suppressed"
        crash = crash and self.armed is None  # the patched publish ran: a crash happened
        self.crashes += crash
        if crash:  # sent but not recorded by the dead worker: may arrive again (see top)
            pending = {
                mid
                for mid, row in ledger(
                    self.world.engine, self.world.tenant_id
                ).by_message_id.items()
                if row.state == "pending"
            }
            self.may_repeat |= {a.message_id for a in new if a.message_id in pending}

    @invariant()
    def no_delivery_arrives_twice_and_the_ledger_tells_the_truth(self) -> None:
        self.seen += arrivals(self.sink.received.raw[len(self.seen) :])
        assert self.sink.received.unparsable == 0
        view = ledger(self.world.engine, self.world.tenant_id)
        counts = Counter(arrival.message_id for arrival in self.seen)
        for arrival in self.seen:
            row = view.by_message_id.get(arrival.message_id)
            assert row is not None, f"{arrival.message_id} is not in the ledger"
            assert normalise_email(row.email) == arrival.to
        in_flight = set(self.sink.received.unacknowledged)
        for message_id, count in counts.items():
            if count == 1 or message_id in in_flight:  # the server kept it, the reply was lost
                continue
            if has_uncertain_column():
                assert getattr(view.by_message_id[message_id], "uncertain", False), (
                    f"{message_id} arrived {count} times and is not flagged uncertain"
                )
            else:
                assert message_id in self.may_repeat, (
                    f"{message_id} arrived {count} times but was never in flight"
                )
        assert view.sent_ids <= set(counts), "the ledger says sent, the server never got it"
        # A row marked suppressed may have arrived only before its address was suppressed
        # (sent, its outcome lost to a crash, then not resent because of the suppression).
        arrived_suppressed = view.suppressed_ids & set(counts)
        assert arrived_suppressed <= self.arrived_before_suppression, arrived_suppressed


TestDispatchMachine = DispatchMachine.TestCase
TestDispatchMachine.settings = settings(
    max_examples=int(os.environ.get("PARTNERCAST_HYPOTHESIS_EXAMPLES", "30")),
    stateful_step_count=int(os.environ.get("PARTNERCAST_HYPOTHESIS_STEPS", "20")),
    deadline=None,
    database=None,  # nothing written into the working tree; a failure prints its steps
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
