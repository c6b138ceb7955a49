"""The email channel: MJML compiled once per (touch, partner, locale), then a fast
per-recipient step (merge markers filled, MIME built) over reused SMTP connections."""

from __future__ import annotations

import smtplib
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar, Literal

import html2text
from mjml import mjml2html
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from partnercast.channels.email.message import build_message, message_bytes
from partnercast.channels.email.smtp import SmtpConnection
from partnercast.plugins import (
    AuthError,
    Channel,
    Draft,
    PermanentError,
    PublishResult,
    Recipient,
    RecipientOutcome,
    RenderRequest,
    TransientError,
)
from partnercast.plugins.personalization import marker

SUBJECT_MAX = 150


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
    from_email: str
    from_name: str
    reply_to: str = ""


class EmailContent(BaseModel):
    """What an email touch declares in campaign.yaml besides its template."""

    model_config = ConfigDict(extra="allow")

    subject: str = Field(min_length=1)
    preheader: str = ""


def _text_converter() -> html2text.HTML2Text:
    converter = html2text.HTML2Text()
    converter.body_width = 0  # never wrap: a wrapped line could split a merge marker
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.ignore_tables = True
    return converter


class EmailChannel(Channel):
    """Email to each consenting contact of the partner."""

    name: ClassVar[str] = "email"
    title: ClassVar[str] = "Email"
    template_suffix: ClassVar[str] = ".mjml"
    audience: ClassVar[bool] = True
    Account: ClassVar[type[BaseModel]] = EmailAccount
    Content: ClassVar[type[BaseModel]] = EmailContent

    def __init__(self, settings: Any = None) -> None:
        super().__init__(settings)
        # Keyed by everything that makes a session: two partners on one relay with their
        # own logins must never share a connection (nor send with each other's login).
        self._connections: dict[tuple[Any, ...], SmtpConnection] = {}

    # --- rendering ----------------------------------------------------------------------

    def render(self, request: RenderRequest) -> Draft:
        content = EmailContent.model_validate(dict(request.content))
        mjml_source = request.render_template(request.template)
        try:
            html = mjml2html(mjml_source)
        except Exception as error:  # mjml-python raises plain exceptions for bad markup
            raise PermanentError(f"MJML could not compile {request.template}: {error}") from error
        text = _text_converter().handle(html).strip() + "\n"
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
        smtp = getattr(self.settings, "smtp", None)
        if smtp is None or not sender.get("sender_email"):
            return None
        return EmailAccount(
            host=smtp.host,
            port=smtp.port,
            security=smtp.security,
            ca_file=smtp.ca_file,
            username=smtp.username,
            password=smtp.password,
            timeout_seconds=smtp.timeout_seconds,
            messages_per_connection=smtp.messages_per_connection,
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
    ) -> PublishResult:
        if not isinstance(account, EmailAccount):
            raise PermanentError("the email channel needs an EmailAccount")
        connection = self._connection(account)
        result = PublishResult()
        # One sender thread talks SMTP (mostly waiting on the server, without the GIL) while
        # this thread builds the next messages: the two overlap instead of adding up.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp-send") as sender:
            queued: list[Future[RecipientOutcome]] = []
            for recipient in recipients:
                payload = self._payload(draft, account, recipient)
                send = sender.submit(self._send_one, connection, account, recipient, payload)
                queued.append(send)
            try:
                result.outcomes.extend(future.result() for future in queued)
            except BaseException:
                for future in queued:
                    future.cancel()
                raise
        return result

    @staticmethod
    def _payload(draft: Draft, account: EmailAccount, recipient: Recipient) -> bytes:
        message = build_message(
            draft,
            recipient,
            from_name=account.from_name,
            from_email=account.from_email,
            reply_to=account.reply_to,
        )
        return message_bytes(message)

    @staticmethod
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
                raise PermanentError(
                    f"sender {account.from_email} refused: {error.smtp_code}"
                ) from error
            except smtplib.SMTPAuthenticationError as error:
                raise AuthError("SMTP authentication failed") from error
            except (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError) as error:
                connection.reset()
                if attempt == 2:
                    return RecipientOutcome(recipient.delivery_id, "transient", str(error))
        return RecipientOutcome(recipient.delivery_id, "transient", "not sent")

    def _connection(self, account: EmailAccount) -> SmtpConnection:
        password = account.password.get_secret_value() if account.password else None
        key = (account.host, account.port, account.security, account.username, password)
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


def _refused(recipient: Recipient, code: int, reply: bytes | str) -> RecipientOutcome:
    detail = f"{code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
    if 500 <= code < 600:
        return RecipientOutcome(recipient.delivery_id, "hard_bounce", detail)
    return RecipientOutcome(recipient.delivery_id, "transient", detail)


__all__ = ["EmailAccount", "EmailChannel", "EmailContent", "TransientError"]
