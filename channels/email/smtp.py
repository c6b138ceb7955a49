"""An SMTP connection that is opened once and reused for many messages."""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from types import TracebackType

from partnercast.plugins import AuthError, PermanentError, TransientError


class SmtpConnection:
    """A lazily opened, reusable SMTP session (plain, STARTTLS or implicit TLS)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: str,
        username: str | None,
        ca_file: str | None = None,
        password: str | None,
        timeout: float,
        messages_per_connection: int,
    ) -> None:
        self.host, self.port, self.security = host, port, security
        self._ca_file = ca_file
        self._username, self._password = username, password
        self.timeout = timeout
        self.messages_per_connection = messages_per_connection
        self._smtp: smtplib.SMTP | None = None
        self._sent_on_connection = 0
        self._pipelining = False
        # A refused login is final for this connection: trying again for every queued
        # message would only hammer the server (and may lock the partner's account).
        self._login_refused = ""

    def __repr__(self) -> str:  # never shows credentials
        return f"SmtpConnection({self.host}:{self.port}, {self.security})"

    def send(self, sender: str, recipient: str, payload: bytes) -> None:
        """Send one message (CRLF line endings); raises smtplib errors for the caller.

        One SMTP transaction: with PIPELINING (RFC 2920, which postfix, Exim and the big
        providers offer) MAIL, RCPT and DATA go in one write and their three replies are
        read after, so a message costs two round trips instead of four. The payload is
        dot-stuffed here with one bytes.replace (in C) rather than smtplib's regexes.
        """
        smtp = self._connection()
        data = payload.replace(b"\r\n.", b"\r\n..")
        if data.startswith(b"."):
            data = b"." + data
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        commands = (f"MAIL FROM:{_quoted(sender)}", f"RCPT TO:{_quoted(recipient)}", "DATA")
        if self._pipelining:
            smtp.send("".join(command + "\r\n" for command in commands).encode("utf-8"))
            mail, rcpt, data_reply = smtp.getreply(), smtp.getreply(), smtp.getreply()
        else:
            mail = smtp.docmd(commands[0])
            rcpt = smtp.docmd(commands[1]) if mail[0] == 250 else (503, b"no MAIL")
            data_reply = smtp.docmd("DATA") if rcpt[0] in (250, 251) else (503, b"no RCPT")
        for code, _ in (mail, rcpt, data_reply):
            if code == 421:  # the server is closing the channel: a transient failure
                self.reset()
                raise smtplib.SMTPServerDisconnected("421 service not available")
        if data_reply[0] == 354 and (mail[0] != 250 or rcpt[0] not in (250, 251)):
            smtp.send(b".\r\n")  # a server that said 354 anyway: end the empty message
            smtp.getreply()
        if mail[0] != 250:
            self._rset(smtp)
            raise smtplib.SMTPSenderRefused(mail[0], mail[1], sender)
        if rcpt[0] not in (250, 251):
            self._rset(smtp)
            raise smtplib.SMTPRecipientsRefused({recipient: rcpt})
        if data_reply[0] != 354:
            self._rset(smtp)
            raise smtplib.SMTPDataError(*data_reply)
        smtp.send(data + b".\r\n")
        code, reply = smtp.getreply()
        if code == 421:
            self.reset()
            raise smtplib.SMTPServerDisconnected("421 service not available")
        if code != 250:
            self._rset(smtp)
            raise smtplib.SMTPDataError(code, reply)
        self._sent_on_connection += 1

    @staticmethod
    def _rset(smtp: smtplib.SMTP) -> None:
        with contextlib.suppress(smtplib.SMTPServerDisconnected):
            smtp.rset()

    def ensure_open(self) -> None:
        """Connect (and log in) now; raises AuthError or TransientError like a send."""
        self._connection()

    def _connection(self) -> smtplib.SMTP:
        if self._login_refused:
            raise AuthError(self._login_refused)
        if self._smtp is not None and self._sent_on_connection >= self.messages_per_connection:
            self.close()
        if self._smtp is None:
            self._smtp = self._open()
            self._sent_on_connection = 0
            self._pipelining = bool(self._smtp.has_extn("pipelining"))
        return self._smtp

    def _open(self) -> smtplib.SMTP:
        try:
            if self.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self._tls_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
                if self.security == "starttls":
                    smtp.starttls(context=self._tls_context())
            smtp.ehlo_or_helo_if_needed()
            if self._username:
                smtp.login(self._username, self._password or "")
        except smtplib.SMTPAuthenticationError as error:
            self._login_refused = f"SMTP login refused by {self.host}:{self.port}"
            raise AuthError(self._login_refused) from error
        except smtplib.SMTPResponseException as error:
            if 500 <= error.smtp_code < 600:  # the server refuses the session for good
                raise PermanentError(
                    f"SMTP {self.host}:{self.port} refused the session: {error.smtp_code}"
                ) from error
            raise TransientError(
                f"cannot connect to SMTP {self.host}:{self.port}: {error}"
            ) from error
        except (OSError, smtplib.SMTPException) as error:
            raise TransientError(
                f"cannot connect to SMTP {self.host}:{self.port}: {error}"
            ) from error
        return smtp

    def _tls_context(self) -> ssl.SSLContext:
        """Verified TLS: the system's CAs, or the configured CA file for a private relay."""
        return ssl.create_default_context(cafile=self._ca_file)

    def reset(self) -> None:
        """Drop a broken connection without the QUIT handshake."""
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def close(self) -> None:
        if self._smtp is None:
            return
        try:
            self._smtp.quit()
        except (OSError, smtplib.SMTPException):
            self._smtp.close()
        finally:
            self._smtp = None

    def __enter__(self) -> SmtpConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


_PLAIN_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+")


def _quoted(address: str) -> str:
    """``<address>`` for MAIL and RCPT: smtplib.quoteaddr's answer, without its address
    parser (about 10 us a call) for the plain addresses that nearly all are."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)
