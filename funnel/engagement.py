"""The first genuine open and click of each message: what makes a tracked hit "unique".

Every pixel hit and redirect is an Event (web/tracking.py); repeated hits are all kept.
One ``Engagement`` row per (dispatch, contact, kind) is inserted, with ON CONFLICT DO
NOTHING, by the first hit that is not flagged as a bot: the insert that wrote a row is the
unique one, and its event says so (``data["unique"]``), which the rollups count. The
unique key makes this exact under concurrent hits on SQLite and PostgreSQL alike, and
no query ever scans the event log to tell.

A genuine click on a message with no ``opened`` row inserts that row too (an implied open:
the reader's client blocked the pixel), so unique opens are never fewer than the readers
who clicked, and a later pixel hit does not count the message opened a second time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from partnercast.core.tenancy import TenantOwned


class Engagement(TenantOwned, SQLModel, table=True):
    """A contact opened (or clicked in) one dispatch's message, at least once."""

    __table_args__ = (UniqueConstraint("dispatch_id", "contact_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    dispatch_id: int = Field(foreign_key="dispatch.id")
    contact_id: int = Field(foreign_key="contact.id")
    kind: str = Field(max_length=20)  # opened | clicked
    first_at: datetime
