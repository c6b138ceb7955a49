"""funnel: lead stages reached, spend (MDF), funnel rollups, the CRM webhook secret

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crmsecret",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sealed", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id"),
    )
    with op.batch_alter_table("crmsecret", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crmsecret_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "rollup",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("cycle_id", sa.Integer(), nullable=False),
        sa.Column("metric", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "partner_id", "campaign_id", "cycle_id", "metric"),
    )
    with op.batch_alter_table("rollup", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rollup_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "spend",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaign.id"],
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partner.id"],
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("spend", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_spend_campaign_id"), ["campaign_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_spend_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_spend_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "leadstage",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("stage", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("counted", sa.Boolean(), nullable=False),
        sa.Column("occurred_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["lead.id"],
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lead_id", "stage"),
    )
    with op.batch_alter_table("leadstage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_leadstage_lead_id"), ["lead_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_leadstage_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("leadstage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leadstage_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_leadstage_lead_id"))

    op.drop_table("leadstage")
    with op.batch_alter_table("spend", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_spend_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_spend_partner_id"))
        batch_op.drop_index(batch_op.f("ix_spend_campaign_id"))

    op.drop_table("spend")
    with op.batch_alter_table("rollup", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rollup_tenant_id"))

    op.drop_table("rollup")
    with op.batch_alter_table("crmsecret", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crmsecret_tenant_id"))

    op.drop_table("crmsecret")
