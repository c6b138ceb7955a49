"""Drop the indexes that every write kept and no lookup needed: the tenant-only indexes of
delivery, contact, event, rollup and partner_rollup, and delivery's index on dispatch_id

Each table has a better index for its every lookup: one that leads with the tenant and
goes on (contact's unique (tenant, partner, external id), event's (tenant, kind, partner),
the rollups' unique keys), or, for delivery, its unique (dispatch_id, contact_id), which
also serves every lookup by dispatch. One tenant's rows are most of a table, so an index
on the tenant alone is rarely worth reading; and before PostgreSQL has statistics of a
table (a new database, a tenant just loaded) its planner took it for selective: finding
a dispatch's ten deliveries, or a partner's contacts, it read the tenant's whole index
(docs/performance.md, "The claim's list and the tenant-only indexes"). Fewer indexes are
also less work for every insert and every update that changes an indexed column (the
rollups' counts, the tracker's events). Deleting a tenant row now reads these tables whole
to check their foreign keys.

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

DROPPED = [
    ("delivery", "ix_delivery_tenant_id", ["tenant_id"]),
    ("delivery", "ix_delivery_dispatch_id", ["dispatch_id"]),
    ("contact", "ix_contact_tenant_id", ["tenant_id"]),
    ("event", "ix_event_tenant_id", ["tenant_id"]),
    ("rollup", "ix_rollup_tenant_id", ["tenant_id"]),
    ("partner_rollup", "ix_partner_rollup_tenant_id", ["tenant_id"]),
]


def upgrade() -> None:
    for table, index, _columns in DROPPED:
        op.drop_index(index, table_name=table)


def downgrade() -> None:
    for table, index, columns in DROPPED:
        op.create_index(index, table, columns, unique=False)
