"""The in-process simulators' memory kept entry by entry; indexes for the tenant's lists.

- `mock_simulator_entries`: one row per entry of a `mock` simulator's memory (simkit.journal), so
  each call writes only what it changed. `mock_simulator_states` (whole snapshots) stays for the
  memories written by an older version: read once when such a simulator starts, then emptied.
- `(tenant_id, created_at, id)` on `invoices` and `audit_entries`: the lists (`ORDER BY created_at
  DESC, id` within one tenant) read the first rows of an index instead of sorting every row of the
  tenant, so a page costs the same at 100 and at 100,000 invoices.

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mock_simulator_entries",
        sa.Column(
            "tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("authority", sa.String(32), primary_key=True),
        sa.Column("part", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
    )
    op.create_index("ix_invoices_tenant_created", "invoices", ["tenant_id", "created_at", "id"])
    op.create_index("ix_audit_entries_tenant_created", "audit_entries", ["tenant_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_entries_tenant_created", table_name="audit_entries")
    op.drop_index("ix_invoices_tenant_created", table_name="invoices")
    op.drop_table("mock_simulator_entries")
