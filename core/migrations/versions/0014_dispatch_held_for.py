"""dispatch.held_for: why a dispatch is held (the partner's approval, an account to reconnect)

Dispatches failed for want of a working account were recognised by the text of their
last_error ("account needs reconnecting"); they are marked here once, by that same text.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "held_for",
                sqlmodel.sql.sqltypes.AutoString(length=20),
                nullable=False,
                server_default="",
            )
        )
    op.execute(
        "UPDATE dispatch SET held_for = 'reconnect' "
        "WHERE state = 'failed' AND last_error LIKE '%account needs reconnecting%'"
    )


def downgrade() -> None:
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.drop_column("held_for")
