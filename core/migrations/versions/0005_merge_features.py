"""merge channel accounts, leads and concierge branches

Revision ID: 0005
Revises: 0002, 0003, 0004
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

revision = "0005"
down_revision = ("0002", "0003", "0004")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the three branches touch different tables."""


def downgrade() -> None:
    """Nothing to change."""
