"""An SMTP connection that is opened once and reused for many messages."""

from __future__ import annotations

import smtplib
import ssl
from types import TracebackType

from partnercast.plugins import AuthError, TransientError


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
        # A refused login is final for this connection: trying again for every queued
        # message would only hammer the server (and may lock the partner's account).
        self._login_refused = ""

    def __repr__(self) -> str:  # never shows credentials
        return f"SmtpConnection({self.host}:{self.port}, {self.security})"

    def send(self, sender: str, recipient: str, payload: bytes) -> None:
        """Send one message; raises smtplib errors for the caller to classify."""
        smtp = self._connection()
        smtp.sendmail(sender, [recipient], payload)
        self._sent_on_connection += 1

    def _connection(self) -> smtplib.SMTP:
        if self._login_refused:
            raise AuthError(self._login_refused)
        if self._smtp is not None and self._sent_on_connection >= self.messages_per_connection:
            self.close()
        if self._smtp is None:
            self._smtp = self._open()
            self._sent_on_connection = 0
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
            if self._username:
                smtp.login(self._username, self._password or "")
        except smtplib.SMTPAuthenticationError as error:
            self._login_refused = f"SMTP login refused by {self.host}:{self.port}"
            raise AuthError(self._login_refused) from error
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
