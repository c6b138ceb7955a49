"""The funnel: tracking, leads and CRM intake, spend, rollups, metrics, the contender score,
reports, and each partner's own results."""
