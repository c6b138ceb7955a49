"""Building one recipient's MIME message from a personalised draft."""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

from partnercast.plugins import Draft, Recipient
from partnercast.plugins.personalization import Personalizer


def build_message(
    draft: Draft, recipient: Recipient, *, from_name: str, from_email: str, reply_to: str = ""
) -> EmailMessage:
    """A multipart/alternative message (text + HTML) with RFC 8058 unsubscribe headers."""
    personalizer = Personalizer(draft.nonce)
    values = recipient.values
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(display_name=from_name, addr_spec=from_email)
    message["To"] = recipient.email
    if reply_to:
        message["Reply-To"] = reply_to
    message["Subject"] = personalizer.fill(draft.parts["subject"], values, html_escape=False)
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = recipient.message_id
    unsubscribe_url = values["unsubscribe_url"]
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(personalizer.fill(draft.parts["text"], values, html_escape=False))
    message.add_alternative(
        personalizer.fill(draft.parts["html"], values, html_escape=True), subtype="html"
    )
    return message
