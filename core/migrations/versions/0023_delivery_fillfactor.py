"""delivery: on PostgreSQL, pages filled to half when rows are written (fillfactor 50), so
that the journal's two updates of each row (sending, then sent) stay on the row's page as
heap-only tuples, which touch none of the table's five indexes

Measured with bench/email_throughput.py (docs/performance.md, "Sending on PostgreSQL"):
3,064-3,170 msg/s with one worker at the default fillfactor (100), 3,291-3,329 at 50. Only
pages written from now on are affected; no table is rewritten. The room is not all
lost: at 100 each row left two dead versions (and their index entries) on other pages
until the next vacuum; at 50 a page prunes its own dead versions.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE delivery SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE delivery RESET (fillfactor)")
