"""Names the funnel's commands offer in their help, in a module that imports nothing.

``partnercast --help`` builds every command's options without importing the funnel
itself (SQLAlchemy and the models: most of a second of CPU), so the choices an option's
help lists live here, and the modules that use them import them from here.
"""

from __future__ import annotations

GROUPINGS = ("partner", "campaign", "segment", "cycle", "total")
"""What ``partnercast metrics --by`` groups the funnel by (funnel.metrics.funnel's ``by``)."""

SPEND_KINDS = ("mdf", "other")
"""The kinds of spend (funnel.spend.KINDS)."""
