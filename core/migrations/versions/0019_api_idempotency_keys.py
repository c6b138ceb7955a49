"""The REST API's Idempotency-Keys: api_idempotency_key (tenant, token, key -> the
request's fingerprint and the answer it got), unique per tenant, token and key

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_idempotency_key",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"]),
        sa.ForeignKeyConstraint(["token_id"], ["apitoken.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "token_id", "key", name="uq_api_idempotency_key"),
    )
    with op.batch_alter_table("api_idempotency_key", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_idempotency_key_tenant_id"), ["tenant_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("api_idempotency_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_idempotency_key_tenant_id"))
    op.drop_table("api_idempotency_key")
