"""One raw bounce or complaint report, parsed here and recorded by the engine.

The email channel owns the reading (:mod:`.feedback_reports`: RFC 3464 DSNs, RFC 5965
ARF, text bounces that quote our Message-ID); the engine records what it says against its
delivery ledger through the plugin host (``Host.record_delivery_feedback``). Used by the
``POST /feedback/<tenant>`` endpoint and by ``partnercast feedback import``.
"""

from __future__ import annotations

from datetime import datetime

from partnercast.channels.email.feedback_reports import NotAReport, NothingToRecord, parse_reports
from partnercast.plugins.host import IGNORED, REJECTED, FeedbackOutcome, Host


def import_message(host: Host, tenant_id: int, raw: bytes, *, now: datetime) -> FeedbackOutcome:
    """Parse one raw report and record it in ``tenant_id`` (its own transaction)."""
    try:
        reports = parse_reports(raw)
    except NothingToRecord as reason:
        return FeedbackOutcome(IGNORED, str(reason))
    except NotAReport as reason:
        return FeedbackOutcome(REJECTED, str(reason))
    return host.record_delivery_feedback(tenant_id, reports, now=now)
