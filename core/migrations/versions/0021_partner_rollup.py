"""partner_rollup: each partner's funnel totals over all its campaigns and cycles (the sum
of its rollup rows, kept with them), filled from the existing rollups; rollup's covering
index moves from (partner, metric), which partner_rollup now serves, to (campaign, cycle,
metric, partner) for the funnel by campaign, cycle and segment

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner_rollup",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("metric", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "partner_id", "metric"),
    )
    # The sums of the rollups as they stand: from here on the keeper adds to both in the
    # same transaction (funnel/rollups.py).
    op.execute(
        "INSERT INTO partner_rollup (tenant_id, partner_id, metric, count, value) "
        "SELECT tenant_id, partner_id, metric, SUM(count), SUM(value) FROM rollup "
        "GROUP BY tenant_id, partner_id, metric"
    )
    with op.batch_alter_table("partner_rollup", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_partner_rollup_tenant_id"), ["tenant_id"], unique=False
        )
    with op.batch_alter_table("rollup", schema=None) as batch_op:
        batch_op.drop_index("ix_rollup_partner_metric")
        batch_op.create_index(
            "ix_rollup_campaign_cycle",
            ["tenant_id", "campaign_id", "cycle_id", "metric", "partner_id", "count", "value"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("rollup", schema=None) as batch_op:
        batch_op.drop_index("ix_rollup_campaign_cycle")
        batch_op.create_index(
            "ix_rollup_partner_metric",
            ["tenant_id", "partner_id", "metric", "count", "value"],
            unique=False,
        )
    with op.batch_alter_table("partner_rollup", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_rollup_tenant_id"))
    op.drop_table("partner_rollup")
