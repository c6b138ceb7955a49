"""One draft's MIME message, assembled once; per recipient only the markers are filled.

A touch is rendered once per (partner, locale) into a Draft whose contact values are
merge markers (plugins/personalization.py). :class:`MessageTemplate` turns that draft into
the bytes of a multipart/alternative message once, split at the markers; each recipient
then costs a join of the pieces with their values, a quoted-printable pass over the text
part and a base64 pass over the HTML part, both in C (binascii). That is what lets one
worker build thousands of personal messages a second: the email package's generator,
header folding and charset machinery (about 1.4 ms a message) never run per recipient.

The output is what goes on the wire: CRLF line endings (a strict server refuses bare LF),
no line longer than 998 bytes, RFC 2047 encoded non-ASCII headers, RFC 8058 one-click
unsubscribe headers. Dot-stuffing belongs to the SMTP layer (channels/email/smtp.py).
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Mapping
from email.utils import formataddr, formatdate

from partnercast.plugins import Draft, Recipient
from partnercast.plugins.personalization import Filler, Personalizer

CRLF = b"\r\n"
BASE64_LINE = 76  # characters per base64 line (RFC 2045)
_HEADER_WORD_BYTES = 45  # bytes of UTF-8 per RFC 2047 encoded-word (stays under 75 chars)


def encode_header_value(value: str) -> str:
    """An unstructured header value as it may appear on the wire.

    ASCII stays as it is (the callers keep it single-line); anything else becomes RFC 2047
    base64 encoded-words, split between characters, folded one word per line.
    """
    if value.isascii():
        return value
    words: list[str] = []
    chunk = b""
    for character in value:
        encoded = character.encode("utf-8")
        if len(chunk) + len(encoded) > _HEADER_WORD_BYTES:
            words.append(_encoded_word(chunk))
            chunk = b""
        chunk += encoded
    if chunk:
        words.append(_encoded_word(chunk))
    return "\r\n ".join(words)


def _encoded_word(data: bytes) -> str:
    return "=?utf-8?b?" + base64.b64encode(data).decode("ascii") + "?="


def base64_lines(data: bytes) -> bytes:
    """``data`` in base64, 76 characters a line, CRLF after each line (binascii, in C)."""
    encoded = binascii.b2a_base64(data, newline=False)
    return CRLF.join(
        [encoded[start : start + BASE64_LINE] for start in range(0, len(encoded), BASE64_LINE)]
        + [b""]
    )


def quoted_printable_lines(text: str) -> bytes:
    """UTF-8 ``text`` in quoted-printable with CRLF line endings (binascii, in C)."""
    data = text.replace("\r\n", "\n").encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    encoded = encoded.replace(b"\n", CRLF)
    return encoded if encoded.endswith(CRLF) else encoded + CRLF


class _Clock:
    """The Date header, formatted at most once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def header(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._value = formatdate(second, localtime=False).encode("ascii")
        return self._value


class MessageTemplate:
    """A draft's message built once, to be filled for each recipient with :meth:`render`."""

    def __init__(
        self, draft: Draft, *, from_name: str, from_email: str, reply_to: str = ""
    ) -> None:
        personalizer = Personalizer(draft.nonce)
        self._subject: Filler = personalizer.compile(draft.parts["subject"], html_escape=False)
        self._text: Filler = personalizer.compile(draft.parts["text"], html_escape=False)
        self._html: Filler = personalizer.compile(draft.parts["html"], html_escape=True)
        self._clock = _Clock()
        boundary = "=_pc_" + secrets.token_hex(12)
        sender = formataddr((from_name, from_email), charset="utf-8")
        head = [f"From: {sender}"]
        if reply_to:
            head.append(f"Reply-To: {reply_to}")
        self._head = "\r\n".join(head).encode("utf-8") + CRLF
        self._mime_head = (
            "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
            "\r\n"
            f"--{boundary}\r\n"
            'Content-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n"
            "\r\n"
        ).encode("ascii")
        self._between = (
            f"--{boundary}\r\n"
            'Content-Type: text/html; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: base64\r\n"
            "\r\n"
        ).encode("ascii")
        self._end = f"--{boundary}--\r\n".encode("ascii")

    def render(self, recipient: Recipient) -> bytes:
        """The recipient's whole message, CRLF line endings, ready for DATA."""
        values: Mapping[str, str] = recipient.values
        subject = encode_header_value(self._subject.fill(values))
        unsubscribe = values.get("unsubscribe_url", "")
        headers = (
            f"To: {recipient.email}\r\n"
            f"Subject: {subject}\r\n"
            f"Message-ID: {recipient.message_id}\r\n"
            f"List-Unsubscribe: <{unsubscribe}>\r\n"
        ).encode()
        return b"".join(
            (
                self._head,
                headers,
                b"Date: ",
                self._clock.header(),
                CRLF,
                self._mime_head,
                quoted_printable_lines(self._text.fill(values)),
                self._between,
                base64_lines(self._html.fill(values).encode("utf-8")),
                self._end,
            )
        )


def build_message_bytes(
    draft: Draft, recipient: Recipient, *, from_name: str, from_email: str, reply_to: str = ""
) -> bytes:
    """One recipient's message (tests and previews; a send builds the template once)."""
    template = MessageTemplate(draft, from_name=from_name, from_email=from_email, reply_to=reply_to)
    return template.render(recipient)
