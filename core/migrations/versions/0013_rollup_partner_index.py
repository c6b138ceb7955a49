"""rollup: a covering index for the funnel by partner and the contender score

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rollup", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rollup_partner_metric",
            ["tenant_id", "partner_id", "metric", "count", "value"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("rollup", schema=None) as batch_op:
        batch_op.drop_index("ix_rollup_partner_metric")
