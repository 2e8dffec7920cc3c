"""The in-process simulators' memory kept entry by entry.

- `mock_simulator_entries`: one row per entry of a `mock` simulator's memory (simkit.journal), so
  each call writes only what it changed. `mock_simulator_states` (whole snapshots) stays for the
  memories written by an older version: read once when such a simulator starts, then emptied.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
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


def downgrade() -> None:
    op.drop_table("mock_simulator_entries")
