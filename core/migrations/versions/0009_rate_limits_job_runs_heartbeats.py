"""rate buckets (tenant and provider), job run leases, worker heartbeats

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _bucket_columns() -> list[sa.Column]:
    return [
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("rate", sa.Float(), nullable=False),
        sa.Column("burst", sa.Float(), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.Column("minute_start", sa.Float(), nullable=False),
        sa.Column("minute_taken", sa.Integer(), nullable=False),
        sa.Column("prev_minute_taken", sa.Integer(), nullable=False),
        sa.Column("hour_start", sa.Float(), nullable=False),
        sa.Column("hour_taken", sa.Integer(), nullable=False),
        sa.Column("prev_hour_taken", sa.Integer(), nullable=False),
        sa.Column("taken_total", sa.Integer(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "rate_bucket",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        *_bucket_columns(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "key"),
    )
    with op.batch_alter_table("rate_bucket", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rate_bucket_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rate_bucket_partner_id"), ["partner_id"], unique=False)
    op.create_table(
        "provider_bucket",
        *_bucket_columns(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "job_run",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "worker_heartbeat",
        sa.Column("worker_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_seen", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id"),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeat")
    op.drop_table("job_run")
    op.drop_table("provider_bucket")
    with op.batch_alter_table("rate_bucket", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_bucket_partner_id"))
        batch_op.drop_index(batch_op.f("ix_rate_bucket_tenant_id"))
    op.drop_table("rate_bucket")
