"""delivery.uncertain and tenant.delivery_guarantee: messages that were on the wire in a crash

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("uncertain", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("tenant", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "delivery_guarantee",
                sqlmodel.sql.sqltypes.AutoString(length=20),
                nullable=False,
                server_default="at_least_once",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("tenant", schema=None) as batch_op:
        batch_op.drop_column("delivery_guarantee")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_column("uncertain")
