"""Decisions with evidence: approvalrecord (who decided, on whose behalf and why, when,
from which address and browser, the fingerprint of what they were shown) and
enrollment.declined_touches (touches a partner declined on their own)

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "approvalrecord",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("enrollment_id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("touch_key", text(length=64), nullable=True),
        sa.Column("decision", text(length=32), nullable=False),
        sa.Column("state_after", text(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("token_id", sa.Integer(), nullable=True),
        sa.Column("actor_label", text(length=254), nullable=False),
        sa.Column("on_behalf", sa.Boolean(), nullable=False),
        sa.Column("reason", text(length=2000), nullable=False),
        sa.Column("note", text(length=2000), nullable=False),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("client_address", text(length=64), nullable=False),
        sa.Column("user_agent", text(length=500), nullable=False),
        sa.Column("fingerprint", text(length=64), nullable=False),
        sa.Column("content_fingerprint", text(length=64), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"]),
        sa.ForeignKeyConstraint(["enrollment_id"], ["enrollment.id"]),
        sa.ForeignKeyConstraint(["partner_id"], ["partner.id"]),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.ForeignKeyConstraint(["version_id"], ["campaignversion.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("approvalrecord", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_approvalrecord_tenant_id"), ["tenant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_approvalrecord_partner_id"), ["partner_id"], unique=False
        )
        batch_op.create_index(
            "ix_approvalrecord_enrollment", ["enrollment_id", "decided_at"], unique=False
        )
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("declined_touches", sa.JSON(), nullable=False, server_default="[]")
        )


def downgrade() -> None:
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.drop_column("declined_touches")
    with op.batch_alter_table("approvalrecord", schema=None) as batch_op:
        batch_op.drop_index("ix_approvalrecord_enrollment")
        batch_op.drop_index(batch_op.f("ix_approvalrecord_partner_id"))
        batch_op.drop_index(batch_op.f("ix_approvalrecord_tenant_id"))
    op.drop_table("approvalrecord")
