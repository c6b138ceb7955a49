"""Reading mail feedback: bounce reports (RFC 3464 DSNs) and complaints (RFC 5965 ARF).

:func:`parse_report` turns one raw message into a :class:`FeedbackReport`: what happened
(hard bounce, soft bounce, delay, complaint), to which recipient, with which status and
diagnostic, and the Message-ID of OUR message it is about, which is how the intake finds
the delivery (``core/outbox.py`` ``message_id_for`` makes it). Only the standard library
``email`` package is used (``policy=email.policy.default``).

Hard or soft: RFC 3463 says a ``5.x.x`` status is permanent, but several permanent
statuses are about the message or the sender, not the address, and mail providers' own
bounce handling (Amazon SES's bounce types, Mailchimp's soft bounces) treats them as soft:
a full mailbox (``5.2.2``), a message too large (``5.2.3``, ``5.3.4``) and any policy or
security refusal (``5.7.x``: spam filter, blocked sending IP, authentication). Suppressing
the address for those would drop a good contact because of our own content or server.

A bounce that is not a DSN (a qmail or Exchange text bounce that quotes the original
headers inline) is read on a best-effort basis: our Message-ID is looked for anywhere in
the body, the first enhanced status code in the text decides hard or soft, and a few
well-known phrases ("user unknown", "no such user", ...) stand for ``5.1.1``.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from enum import StrEnum
from typing import Any

MAX_TEXT = 500


class Kind(StrEnum):
    BOUNCE_HARD = "bounce-hard"
    BOUNCE_SOFT = "bounce-soft"
    DELAYED = "delayed"
    COMPLAINT = "complaint"


class NotAReport(ValueError):
    """The message is not a bounce or complaint this engine can use; ``str()`` says why."""


class NothingToRecord(ValueError):
    """A well-formed report that asks for nothing (a success DSN, a not-spam report)."""


@dataclass(frozen=True)
class FeedbackReport:
    """One recipient's outcome from one bounce or complaint report."""

    kind: Kind
    recipient: str  # the address the report names ("" when it names none)
    message_id: str  # the Message-ID of the original message, with its angle brackets
    status: str = ""  # enhanced status code, e.g. "5.1.1" ("" for a complaint)
    diagnostic: str = ""  # the remote server's words, or the feedback type for a complaint
    report_id: str = ""  # the report's own Message-ID, or a digest of its bytes
    source: str = "dsn"  # dsn | arf | text

    @property
    def summary(self) -> str:
        detail = " ".join(part for part in (self.status, self.diagnostic) if part)
        return f"{self.kind} {self.recipient or '(no recipient)'} {detail}".strip()


# The shape of core.outbox.message_id_for: <pc.DISPATCH.CONTACT.DIGEST16@domain>.
OUR_MESSAGE_ID = re.compile(r"<pc\.\d+\.\d+\.[0-9a-f]{16}@[^<>\s\"]+>", re.IGNORECASE)
STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
SOFT_PERMANENT = {"2.2", "2.3", "3.4"}  # mailbox full, message too long, too big for system
UNKNOWN_USER = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient)|does not exist|"
    r"doesn't exist|no mailbox|mailbox unavailable|recipient rejected|address rejected|"
    r"invalid recipient|not a valid mailbox|account (is )?disabled",
    re.IGNORECASE,
)
BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster", re.IGNORECASE)
BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status|failure|has failed)|returned mail|failure notice|"
    r"mail delivery failed|non[- ]?delivery|could not be delivered",
    re.IGNORECASE,
)
COMPLAINT_TYPES = {"abuse", "fraud", "virus"}
ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(\.[\w-]+)+")


def parse_report(raw: bytes) -> FeedbackReport:
    """The report in ``raw``; raises :class:`NotAReport` or :class:`NothingToRecord`.

    A DSN that lists several recipients gives the first failed one (the engine sends one
    message per recipient, so a report about its message names one).
    """
    reports = parse_reports(raw)
    return reports[0]


def parse_reports(raw: bytes) -> list[FeedbackReport]:
    """Every recipient's outcome in ``raw``, most severe first (never empty)."""
    if not raw.strip():
        raise NotAReport("empty message")
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        report_id = _report_id(message, raw)
        if message.get_content_type() == "multipart/report":
            report_type = str(message.get_param("report-type") or "").lower()
            if report_type == "delivery-status":
                return _dsn(message, report_id)
            if report_type == "feedback-report":
                return [_arf(message, report_id)]
            raise NotAReport(f"a multipart/report of type {report_type or '(none)'!r}")
        return [_text_bounce(message, report_id)]
    except (NotAReport, NothingToRecord):
        raise
    except Exception as error:  # a broken message must be one clear line, never a traceback
        raise NotAReport(f"cannot read the message ({type(error).__name__}: {error})") from None


def _report_id(message: Message, raw: bytes) -> str:
    own = _clean(str(message.get("Message-ID", "") or ""))
    return own[:200] if own else "sha256:" + hashlib.sha256(raw).hexdigest()


def _dsn(message: EmailMessage, report_id: str) -> list[FeedbackReport]:
    status_part = _first_part(message, "message/delivery-status")
    if status_part is None:
        raise NotAReport("a delivery-status report without a message/delivery-status part")
    blocks = status_part.get_payload()
    if not isinstance(blocks, list) or len(blocks) < 2:
        raise NotAReport("the message/delivery-status part lists no recipient")
    original = _original_message_id(message)
    reports: list[FeedbackReport] = []
    actions: list[str] = []
    for block in blocks[1:]:
        action = _clean(str(block.get("Action", ""))).lower()
        status = _status(str(block.get("Status", "")))
        diagnostic = _field_value(str(block.get("Diagnostic-Code", "")))
        recipient = _address(str(block.get("Final-Recipient", ""))) or _address(
            str(block.get("Original-Recipient", ""))
        )
        actions.append(action or "(none)")
        kind = _dsn_kind(action, status)
        if kind is None:
            continue
        reports.append(
            FeedbackReport(kind, recipient, original, status, diagnostic, report_id, "dsn")
        )
    if not reports:
        raise NothingToRecord(f"the report says {', '.join(actions)}: nothing failed")
    if not original:
        raise NotAReport("no original Message-ID in the report (no returned message or headers)")
    order = [Kind.BOUNCE_HARD, Kind.BOUNCE_SOFT, Kind.DELAYED]
    return sorted(reports, key=lambda r: order.index(r.kind))


def _dsn_kind(action: str, status: str) -> Kind | None:
    if action in ("delivered", "relayed", "expanded"):
        return None
    if action == "delayed" or (not action and status.startswith("4")):
        return Kind.DELAYED
    if action not in ("failed", ""):
        return None
    return bounce_kind(status) if status else Kind.BOUNCE_HARD


def bounce_kind(status: str) -> Kind:
    """Hard or soft for a failure's enhanced status code (see the module's docstring)."""
    klass, _, rest = status.partition(".")
    if klass != "5" or rest in SOFT_PERMANENT or rest.startswith("7."):
        return Kind.BOUNCE_SOFT
    return Kind.BOUNCE_HARD


def _arf(message: EmailMessage, report_id: str) -> FeedbackReport:
    part = _first_part(message, "message/feedback-report")
    if part is None:
        raise NotAReport("a feedback-report without a message/feedback-report part")
    payload = part.get_payload()
    fields: Any = payload[0] if isinstance(payload, list) and payload else None
    if fields is None:
        raise NotAReport("the message/feedback-report part is empty")
    feedback_type = _clean(str(fields.get("Feedback-Type", ""))).lower()
    if not feedback_type:
        raise NotAReport("the feedback report has no Feedback-Type")
    if feedback_type not in COMPLAINT_TYPES:
        raise NothingToRecord(f"Feedback-Type {feedback_type!r} is not a complaint")
    original = _original_message_id(message)
    if not original:
        raise NotAReport("no original Message-ID in the feedback report")
    recipient = _address(str(fields.get("Original-Rcpt-To", "") or ""))
    if not recipient:
        returned = _returned_headers(message)
        recipient = _address(str(returned.get("To", ""))) if returned is not None else ""
    agent = _clean(str(fields.get("User-Agent", "")))
    diagnostic = f"Feedback-Type: {feedback_type}" + (f" ({agent})" if agent else "")
    return FeedbackReport(Kind.COMPLAINT, recipient, original, "", diagnostic, report_id, "arf")


def _text_bounce(message: EmailMessage, report_id: str) -> FeedbackReport:
    """Best effort for bounces that are not DSNs: our Message-ID somewhere in the text."""
    text = _all_text(message)
    sender = str(message.get("From", "") or "")
    subject = str(message.get("Subject", "") or "")
    looks_like_bounce = bool(BOUNCE_SENDER.search(sender) or BOUNCE_SUBJECT.search(subject)) or (
        message.get_content_type() == "multipart/report"
    )
    if not looks_like_bounce:
        raise NotAReport("not a bounce or complaint report (no multipart/report, no bounce sender)")
    original = _find_our_message_id(text)
    if not original:
        raise NotAReport("a bounce without any Message-ID of ours in it")
    # The server's words come before the quoted copy of our message (whose headers and
    # text may hold numbers that look like status codes).
    text = text[: text.find(original)] or text
    found = STATUS.search(text)
    status = ".".join(found.groups()) if found else ""
    unknown = UNKNOWN_USER.search(text)
    if not status and unknown:
        status = "5.1.1"
    kind = bounce_kind(status) if status.startswith("5") else Kind.BOUNCE_SOFT
    if status.startswith("4") and re.search(r"will (be )?retry|delayed", text, re.IGNORECASE):
        kind = Kind.DELAYED
    recipient = ""
    for line in text.splitlines():
        if (unknown and unknown.group(0) in line) or (found and found.group(0) in line):
            address = ADDRESS.search(line)
            if address:
                recipient = address.group(0)
                break
    if not recipient:
        address = re.search(r"<(" + ADDRESS.pattern + r")>:", text)
        recipient = address.group(1) if address else ""
    diagnostic = unknown.group(0) if unknown else (found.group(0) if found else "")
    return FeedbackReport(kind, recipient.lower(), original, status, diagnostic, report_id, "text")


def _first_part(message: EmailMessage, content_type: str) -> Any:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _returned_headers(message: EmailMessage) -> Message | None:
    """The original message (message/rfc822) or its headers (text/rfc822-headers)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if kind == "text/rfc822-headers":
            return HeaderParser().parsestr(_part_text(part), headersonly=True)
    return None


def _original_message_id(message: EmailMessage) -> str:
    returned = _returned_headers(message)
    if returned is not None:
        found = _find_our_message_id(str(returned.get("Message-ID", "") or ""))
        if found:
            return found
        own = _clean(str(returned.get("Message-ID", "") or ""))
        if own:
            return own
    # Non-standard: the original headers quoted inline in a text part.
    return _find_our_message_id(_all_text(message))


def _find_our_message_id(text: str) -> str:
    found = OUR_MESSAGE_ID.search(text)
    return found.group(0) if found else ""


def _all_text(message: EmailMessage) -> str:
    """Every text part (and the headers of returned messages), decoded; at most 2 MB."""
    chunks: list[str] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                chunks.append("".join(f"{k}: {v}\n" for k, v in payload[0].items()))
        elif part.get_content_maintype() == "text":
            chunks.append(_part_text(part))
        elif kind == "message/delivery-status":
            for block in part.get_payload() or []:
                if not isinstance(block, Message):
                    continue
                chunks.append("".join(f"{k}: {v}\n" for k, v in block.items()))
    return "\n".join(chunks)[:2_000_000]


def _part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, errors="replace")
        except LookupError:
            return payload.decode("utf-8", errors="replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _status(value: str) -> str:
    found = STATUS.search(value)
    return ".".join(found.groups()) if found else ""


def _address(value: str) -> str:
    """``rfc822; a@b.example`` (a DSN or ARF address field) -> ``a@b.example``."""
    value = _clean(value)
    if ";" in value:
        value = value.split(";", 1)[1]
    found = ADDRESS.search(value)
    return found.group(0).lower() if found else ""


def _field_value(value: str) -> str:
    """``smtp; 550 5.1.1 ...`` -> ``550 5.1.1 ...``, whitespace collapsed, bounded."""
    value = _clean(value)
    kind, sep, rest = value.partition(";")
    if sep and kind.strip().lower() in ("smtp", "x-unix", "x-postfix", "x-local"):
        value = rest.strip()
    return value[:MAX_TEXT]


def _clean(value: str) -> str:
    return " ".join(value.split())
