"""dispatch: an index (tenant, state, partner) for the contender score's tally of each
partner's finished dispatches (done, skipped, failed), read off the index instead of the
tenant's rows and a sort

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dispatch_state_partner", ["tenant_id", "state", "partner_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("dispatch", schema=None) as batch_op:
        batch_op.drop_index("ix_dispatch_state_partner")
