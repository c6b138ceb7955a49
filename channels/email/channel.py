"""The email channel: MJML compiled once per (touch, partner, locale), then a fast
per-recipient step (merge markers filled, MIME built) over reused SMTP connections."""

from __future__ import annotations

import contextlib
import itertools
import re
import smtplib
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

import html2text
from mjml import mjml2html
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from partnercast.channels.email.message import MessageTemplate
from partnercast.channels.email.mjml_check import check_mjml, explain
from partnercast.channels.email.settings import NAMESPACE, SmtpSettings
from partnercast.channels.email.smtp import SmtpConnection
from partnercast.plugins import (
    AuthError,
    Channel,
    ChannelError,
    DeliveryJournal,
    Draft,
    PermanentError,
    PluginConfig,
    PublishResult,
    Recipient,
    RecipientOutcome,
    RenderRequest,
    TemplateFinding,
    TransientError,
)
from partnercast.plugins.personalization import marker

SUBJECT_MAX = 150
_UNSUBSCRIBE_MARKER = re.compile(
    re.escape(marker("NONCE", "unsubscribe_url")).replace("NONCE", "[0-9a-f]+")
)
"""The unsubscribe link as a rendered template holds it, whatever the draft's nonce."""


class EmailAccount(BaseModel):
    """Where and as whom a partner's email goes out. The password never shows in repr."""

    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = 25
    security: Literal["none", "starttls", "ssl"] = "none"
    ca_file: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    timeout_seconds: float = 30.0
    messages_per_connection: int = 500
    # Parallel SMTP connections per send: a partner's own server may want 1.
    connections: int = Field(default=2, ge=1, le=16)
    # What the partner's server allows (campaigns.throttle keeps to it across workers).
    rate_per_minute: int | None = Field(default=None, ge=1)
    rate_per_hour: int | None = Field(default=None, ge=1)
    rate_per_day: int | None = Field(default=None, ge=1)
    from_email: str
    from_name: str
    reply_to: str = ""


class EmailContent(BaseModel):
    """What an email touch declares in campaign.yaml besides its template."""

    model_config = ConfigDict(extra="allow")

    subject: str = Field(min_length=1)
    preheader: str = ""


class _PlainText(html2text.HTML2Text):
    """html2text for people, not for a Markdown renderer: text is taken as it is, without
    the backslashes Markdown would need ('1. Alles sehen' stays '1. Alles sehen', not
    '1\\. Alles sehen'), and a link reads as its text and then its address in brackets
    ('the guide (https://...)', not '[the guide](https://...)'); a link whose text is its
    address, or that has no text (an image), is the address alone."""

    def __init__(self) -> None:
        super().__init__()
        self._links: list[tuple[str, list[str]]] = []  # (href, its text so far) per open <a>

    def handle_tag(self, tag: str, attrs: dict[str, str | None], start: bool) -> None:
        if tag != "a":
            super().handle_tag(tag, attrs, start)
            return
        if start:
            self._links.append(((attrs or {}).get("href") or "", []))
            return
        if not self._links:
            return
        href, parts = self._links.pop()
        text = " ".join("".join(parts).split())
        if not href or href.startswith("#"):
            return
        shown = href.removeprefix("mailto:")
        if not text:
            self.o(shown)
        elif text not in (href, shown):
            self.o(f" ({shown})")

    def handle_data(self, data: str, entity_char: bool = False) -> None:
        for _href, parts in self._links:
            parts.append(data)
        super().handle_data(data, entity_char=True)  # html2text escapes all but entities


def _text_converter() -> html2text.HTML2Text:
    converter = _PlainText()
    converter.body_width = 0  # never wrap: a wrapped line could split a merge marker
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ignore_tables = True
    return converter


def plain_text(html: str) -> str:
    """The text part of an email from its HTML: no Markdown escapes, no trailing spaces
    (html2text's line breaks end in two), one newline at the end."""
    text = _text_converter().handle(html)
    lines = [line.rstrip() for line in text.strip().splitlines()]
    # One blank line between blocks: html2text leaves two or three after a list or table.
    kept = [line for at, line in enumerate(lines) if line or (at and lines[at - 1])]
    return "\n".join(kept) + "\n"


class EmailChannel(Channel):
    """Email to each consenting contact of the partner."""

    name: ClassVar[str] = "email"
    title: ClassVar[str] = "Email"
    template_suffix: ClassVar[str] = ".mjml"
    audience: ClassVar[bool] = True
    journals_deliveries: ClassVar[bool] = True
    Account: ClassVar[type[BaseModel]] = EmailAccount
    Content: ClassVar[type[BaseModel]] = EmailContent
    # CAN-SPAM, GDPR and the like: every message shows how to unsubscribe and who sends
    # it, from where. Checked when a campaign is loaded, and again on every draft.
    template_must_show: ClassVar[Mapping[str, str]] = {
        "links.unsubscribe": "the unsubscribe link",
        "brand.legal_name": "the legal name",
        "brand.postal_address": "the postal address",
    }

    def __init__(self, settings: PluginConfig | None = None) -> None:
        super().__init__(settings)
        # Keyed by everything that makes a session: two partners on one relay with their
        # own logins must never share a connection (nor send with each other's login).
        self._connections: dict[tuple[Any, ...], SmtpConnection] = {}

    @classmethod
    def check_touch(cls, touch_key: str, content: Mapping[str, Any]) -> list[str]:
        if not content.get("subject"):
            return [f"touch {touch_key!r} is an email and needs a subject"]
        return []

    @classmethod
    def check_rendered(cls, rendered: str) -> list[TemplateFinding]:
        """MJML that would not compile (where), unknown MJML tags (warnings), and an
        unsubscribe link that a condition hides in this locale or variant (the loader's
        check that the template uses it at all cannot see which branch renders)."""
        findings = check_mjml(rendered)
        if not _UNSUBSCRIBE_MARKER.search(rendered):
            findings.append(
                TemplateFinding(
                    "the email shows no unsubscribe link when rendered: use "
                    "{{ links.unsubscribe }} where no condition can hide it"
                )
            )
        return findings

    # --- rendering ----------------------------------------------------------------------

    def render(self, request: RenderRequest) -> Draft:
        content = EmailContent.model_validate(dict(request.content))
        mjml_source = request.render_template(request.template)
        try:
            html = mjml2html(mjml_source)
        except Exception as error:  # mjml-python raises plain exceptions for bad markup
            why = explain(mjml_source) or str(error)
            raise PermanentError(f"MJML could not compile {request.template}: {why}") from error
        text = plain_text(html)
        subject = " ".join(request.render_string(content.subject, html=False).split())
        preheader = (
            request.render_string(content.preheader, html=False) if content.preheader else ""
        )
        return Draft(
            channel=self.name,
            touch_key=request.touch_key,
            locale=request.locale,
            nonce=request.nonce,
            parts={"subject": subject, "html": html, "text": text, "preheader": preheader},
            preview_html=html,
            meta={"identity": dict(request.identity)},
        )

    def validate(self, draft: Draft) -> list[str]:
        problems: list[str] = []
        subject = draft.parts.get("subject", "")
        if not subject:
            problems.append("the subject is empty")
        elif len(subject) > SUBJECT_MAX:
            problems.append(f"the subject is {len(subject)} characters (at most {SUBJECT_MAX})")
        unsubscribe = marker(draft.nonce, "unsubscribe_url")
        if unsubscribe not in draft.parts.get("html", ""):
            problems.append("the email has no unsubscribe link (use {{ links.unsubscribe }})")
        identity: Mapping[str, str] = draft.meta.get("identity", {})
        text = draft.parts.get("text", "")
        for key, label in (("legal_name", "legal name"), ("postal_address", "postal address")):
            value = identity.get(key, "")
            if not value:
                problems.append(f"the partner has no {label}: add it to the partner's brand")
            elif " ".join(value.split()) not in " ".join(text.split()):
                problems.append(f"the email does not show the partner's {label}")
        return problems

    # --- publishing ---------------------------------------------------------------------

    def account_for(self, sender: Mapping[str, str]) -> BaseModel | None:
        if self.settings is None or not sender.get("sender_email"):
            return None
        smtp = self.settings.section(NAMESPACE, SmtpSettings)
        return EmailAccount(
            host=smtp.host,
            port=smtp.port,
            security=smtp.security,
            ca_file=smtp.ca_file,
            username=smtp.username,
            password=smtp.password,
            timeout_seconds=smtp.timeout_seconds,
            messages_per_connection=smtp.messages_per_connection,
            connections=smtp.connections,
            from_email=sender["sender_email"],
            from_name=sender.get("sender_name") or sender.get("name", ""),
        )

    def publish(
        self,
        draft: Draft,
        account: BaseModel,
        *,
        idempotency_key: str,
        recipients: Sequence[Recipient] = (),
        journal: DeliveryJournal | None = None,
    ) -> PublishResult:
        """Send the draft to ``recipients`` over ``account.connections`` SMTP connections.

        The message template is made once per call (bytes split at the merge markers).
        One sender thread per connection takes the next recipient from a shared iterator,
        builds its message and talks SMTP: a thread waiting on the network (or on the
        journal's database) lets the others build. Each connection notes a window of
        messages in ``journal`` before they go, at most ``journal.window`` at once (see
        DeliveryJournal), and settles them in its next note.
        No queue between a builder and the senders: handing each message from one
        thread to another cost more (locks, wake-ups, GIL hand-offs) than building it.
        """
        if not isinstance(account, EmailAccount):
            raise PermanentError("the email channel needs an EmailAccount")
        if not recipients:
            return PublishResult()
        clock = self.settings.clock if self.settings is not None else None
        if clock is None:
            raise PermanentError(
                "the email channel was built without the engine's clock: it cannot date "
                "its messages (build it with PluginConfig(clock=...))"
            )
        template = MessageTemplate(
            draft,
            from_name=account.from_name,
            from_email=account.from_email,
            clock=clock,
            reply_to=account.reply_to,
        )
        lanes = [
            _Lane(self._connection(account, number), account, journal, template)
            for number in range(min(account.connections, len(recipients)))
        ]
        # Log in on one connection first: a refused login (or an unreachable server) is
        # then one attempt, not one per connection hammering the partner's server.
        lanes[0].connection.ensure_open()
        work = iter(recipients)  # next() on a list iterator is atomic: each goes once
        stop = threading.Event()
        threads = [
            threading.Thread(target=lane.run, args=(work, stop), name=f"smtp-lane-{n}")
            for n, lane in enumerate(lanes[1:], start=1)
        ]
        for thread in threads:
            thread.start()
        try:
            lanes[0].run(work, stop)  # this thread is a sender too
        finally:
            for thread in threads:
                thread.join()
        errors = [lane.error for lane in lanes if lane.error is not None]
        if errors:
            raise errors[0]
        order = {recipient.delivery_id: index for index, recipient in enumerate(recipients)}
        outcomes = sorted(
            (o for lane in lanes for o in lane.outcomes), key=lambda o: order[o.delivery_id]
        )
        return PublishResult(outcomes=outcomes)

    def _connection(self, account: EmailAccount, lane: int = 0) -> SmtpConnection:
        password = account.password.get_secret_value() if account.password else None
        # Keyed by everything that makes a session: two partners on one relay with their
        # own logins must never share a connection (nor send with each other's login).
        key = (account.host, account.port, account.security, account.username, password, lane)
        if key not in self._connections:
            self._connections[key] = SmtpConnection(
                host=account.host,
                port=account.port,
                security=account.security,
                ca_file=account.ca_file,
                username=account.username,
                password=password,
                timeout=account.timeout_seconds,
                messages_per_connection=account.messages_per_connection,
            )
        return self._connections[key]

    def close(self) -> None:
        """Close every open SMTP connection."""
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()


class _Lane:
    """One SMTP connection's sender: builds a window of messages, notes them in flight,
    sends them one by one, and settles them in the journal's next note."""

    def __init__(
        self,
        connection: SmtpConnection,
        account: EmailAccount,
        journal: DeliveryJournal | None,
        template: MessageTemplate,
    ) -> None:
        self.connection = connection
        self.account = account
        self.journal = journal
        self.template = template
        self.outcomes: list[RecipientOutcome] = []
        self.error: BaseException | None = None

    def run(self, work: Iterator[Recipient], stop: threading.Event) -> None:
        journal = self.journal
        note = getattr(journal, "note", None) if journal is not None else None
        if journal is not None and note is None:  # a journal of one message at a time
            self._run_one_by_one(journal, work, stop)
            return
        window = max(1, journal.window) if journal is not None else 64
        renewal_due = getattr(journal, "renewal_due", None)
        # The journal's writer thread takes this lane's notes: with ``ahead`` the note of
        # the next window is in flight while this one is sent (core/journal.py).
        begin: Any = getattr(journal, "begin", None)
        ahead = begin is not None and getattr(journal, "ahead", 0) > 0
        if begin is None and note is not None:
            begin = _Answered.of(note)
        done: list[RecipientOutcome] = []  # sent (or refused), not yet settled in the journal
        flying: list[Recipient] = []  # noted in flight, not yet handed to the server
        upcoming: list[Recipient] = []  # noted ahead (or being noted), to go next
        ticket: Any = None  # the note of ``upcoming`` and of the outcomes before ``done``
        settling: list[RecipientOutcome] = []  # outcomes ``ticket`` settles
        on_the_wire = False  # flying[0] is being handed over
        try:
            # next() on the shared list iterator is atomic: each recipient goes once
            upcoming = list(itertools.islice(work, window))
            if upcoming and begin is not None:
                ticket = begin([], [r.delivery_id for r in upcoming])
            while upcoming and not stop.is_set():
                if ticket is not None:
                    answered, ticket = ticket.result(), None
                    if not answered:
                        upcoming = []
                        stop.set()  # the lease is lost: nothing of this window goes
                        break
                    settling = []
                chunk, upcoming = upcoming, []
                flying = list(chunk)
                if ahead:  # note the next window while this one goes
                    upcoming = list(itertools.islice(work, window))
                    if upcoming:  # (else the last note settles the window before too)
                        settling = done
                        ticket = begin(settling, [r.delivery_id for r in upcoming])
                        done = []
                for recipient in chunk:
                    if stop.is_set():
                        break  # another lane failed or the lease was lost
                    payload = self.template.render(recipient)
                    on_the_wire = True
                    outcome = _send_one(self.connection, self.account, recipient, payload)
                    on_the_wire = False
                    del flying[0]
                    self.outcomes.append(outcome)
                    done.append(outcome)
                    if renewal_due is not None and begin is not None and renewal_due():
                        # a slow window (a slow server): settle what went, keep the lease
                        if not begin(done, []).result():
                            stop.set()
                        done = []
                if not ahead and not stop.is_set():
                    upcoming = list(itertools.islice(work, window))
                    if upcoming and begin is not None:
                        settling = done
                        ticket = begin(settling, [r.delivery_id for r in upcoming])
                        done = []
            if ticket is not None:  # stopped with the next window's note in flight
                answered, ticket = ticket.result(), None
                if not answered:  # nothing of it was written: what it settled is not
                    done, upcoming = settling + done, []
            if begin is not None and (done or flying or upcoming):
                # the last settlement; ``flying`` and ``upcoming``: noted, never handed over
                begin(done, [], [r.delivery_id for r in flying + upcoming]).result()
        except BaseException as error:  # handed to publish(), which raises it
            self.error = error
            stop.set()
            if begin is not None and isinstance(error, Exception):
                gone = on_the_wire and not isinstance(error, ChannelError)
                if ticket is not None:
                    with contextlib.suppress(Exception):
                        if ticket.result():
                            settling = []
                    done = settling + done
                released = (flying[1:] if gone else flying) + upcoming
                _settle_after(begin, done, released)

    def _run_one_by_one(
        self, journal: DeliveryJournal, work: Iterator[Recipient], stop: threading.Event
    ) -> None:
        """With a journal that has only ``record``: one message in flight at a time."""
        previous: RecipientOutcome | None = None
        try:
            for recipient in work:
                if stop.is_set():
                    break  # another lane failed or the lease was lost
                payload = self.template.render(recipient)
                if not journal.record(previous, recipient.delivery_id):
                    previous = None
                    stop.set()
                    break
                previous = _send_one(self.connection, self.account, recipient, payload)
                self.outcomes.append(previous)
            if previous is not None:
                journal.record(previous, None)
        except BaseException as error:  # handed to publish(), which raises it
            self.error = error
            stop.set()


class _Answered:
    """A note already written (a journal without ``begin``): its answer, at once."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer

    def result(self) -> bool:
        return self.answer

    @staticmethod
    def of(note: Any) -> Any:
        return lambda *args: _Answered(note(*args))


def _settle_after(begin: Any, done: list[RecipientOutcome], flying: list[Recipient]) -> None:
    """An error stopped a lane mid-window (the process lives on): settle what is known
    (``done``) and release what never went (``flying``: of this window and of the one
    noted ahead), so that only a message whose fate is unknown stays ``sending``: one an
    error other than a channel's (a refused sender or login: not taken) interrupted on the
    wire."""
    with contextlib.suppress(Exception):  # the error that stopped the lane is the one raised
        begin(done, [], [r.delivery_id for r in flying]).result()


def _send_one(
    connection: SmtpConnection, account: EmailAccount, recipient: Recipient, payload: bytes
) -> RecipientOutcome:
    for attempt in (1, 2):
        try:
            connection.send(account.from_email, recipient.email, payload)
            return RecipientOutcome(recipient.delivery_id, "sent")
        except smtplib.SMTPRecipientsRefused as error:
            code, reply = next(iter(error.recipients.values()))
            return _refused(recipient, code, reply)
        except smtplib.SMTPDataError as error:
            return _refused(recipient, error.smtp_code, error.smtp_error)
        except smtplib.SMTPSenderRefused as error:
            reason = f"sender {account.from_email} refused: {error.smtp_code}"
            if 400 <= error.smtp_code < 500:  # the server's trouble, for now: try again later
                return RecipientOutcome(recipient.delivery_id, "transient", reason)
            raise PermanentError(reason) from error
        except smtplib.SMTPAuthenticationError as error:
            raise AuthError("SMTP authentication failed") from error
        except (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError) as error:
            connection.reset()
            if attempt == 2:
                return RecipientOutcome(recipient.delivery_id, "transient", str(error))
    return RecipientOutcome(recipient.delivery_id, "transient", "not sent")


def _refused(recipient: Recipient, code: int, reply: bytes | str) -> RecipientOutcome:
    detail = f"{code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
    if 500 <= code < 600:
        return RecipientOutcome(recipient.delivery_id, "hard_bounce", detail)
    return RecipientOutcome(recipient.delivery_id, "transient", detail)


__all__ = ["EmailAccount", "EmailChannel", "EmailContent", "TransientError"]
