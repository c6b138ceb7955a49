"""Tenants, partners, contacts, suppressions and segments.

Importing this package registers the funnel rollups' flush listener. Every process that
writes a tenant-owned row imports it (each such row's foreign key names ``tenant.id``, a
table of :mod:`partnercast.tenants.models`), so no code path that records an event can
leave the rollups behind, whether or not it started through the CLI or the web app.
"""

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from partnercast.core.models import Dispatch


def _keep_rollups(session: Session, context: Any) -> None:
    # Imported on first flush, not here: rollups needs campaign models, which need this
    # package; by the first flush every model is loaded.
    from partnercast.funnel.rollups import after_flush

    after_flush(session, context)


def _load_previous(target: Any, value: Any, _old: Any, _initiator: Any) -> Any:
    return value


if not event.contains(Session, "after_flush", _keep_rollups):
    event.listen(Session, "after_flush", _keep_rollups)
    # The rollups add the change of a dispatch's sent_count: make SQLAlchemy load the old
    # value when an expired dispatch's count is set, or the change would look like all of it.
    event.listen(Dispatch.sent_count, "set", _load_previous, active_history=True, retval=True)
