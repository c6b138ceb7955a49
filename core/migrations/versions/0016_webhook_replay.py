"""Replay-safe webhooks: the ids of the signed messages each tenant accepted
(webhook_message), and leadstage.value_as_of, the CRM's time of the record that set a
deal value (an older record no longer overwrites it)

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_message",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "message_id"),
    )
    with op.batch_alter_table("webhook_message", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webhook_message_tenant_id"), ["tenant_id"], unique=False
        )
        batch_op.create_index(
            "ix_webhook_message_received", ["tenant_id", "received_at"], unique=False
        )
    with op.batch_alter_table("leadstage", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("value_as_of", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("leadstage", schema=None) as batch_op:
        batch_op.drop_column("value_as_of")
    with op.batch_alter_table("webhook_message", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_message_received")
        batch_op.drop_index(batch_op.f("ix_webhook_message_tenant_id"))
    op.drop_table("webhook_message")
