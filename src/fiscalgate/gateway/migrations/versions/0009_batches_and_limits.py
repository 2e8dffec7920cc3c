"""Bulk submissions (batches, batch items) and the limits' shared state (rate buckets, circuit
breakers, e-MECeF pending slots).

Revision ID: 0009
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None


def _tenant() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(32), primary_key=True),
        _tenant(),
        sa.Column("approve", sa.Boolean(), nullable=False),
        sa.Column("certify", sa.Boolean(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_batches_tenant_id", "batches", ["tenant_id"])
    op.create_table(
        "batch_items",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("batch_id", sa.String(32), sa.ForeignKey("batches.id", ondelete="CASCADE"), nullable=False),
        _tenant(),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("authority", sa.String(32), nullable=True),
        sa.Column("number", sa.String(120), nullable=True),
        sa.Column(
            "invoice_id", sa.String(32), sa.ForeignKey("invoices.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("existing", sa.Boolean(), nullable=False),
        sa.Column("queued", sa.Boolean(), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.UniqueConstraint("batch_id", "position", name="uq_batch_item_position"),
    )
    op.create_index("ix_batch_items_batch_id", "batch_items", ["batch_id"])
    op.create_index("ix_batch_items_invoice_id", "batch_items", ["invoice_id"])
    op.create_table(
        "limit_rate_buckets",
        sa.Column(
            "tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("authority", sa.String(32), primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "limit_breakers",
        sa.Column(
            "tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("authority", sa.String(32), primary_key=True),
        sa.Column("environment", sa.String(16), primary_key=True),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("probe_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "limit_pending_slots",
        sa.Column("id", sa.String(32), primary_key=True),
        _tenant(),
        sa.Column("authority", sa.String(32), nullable=False),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("tenant_id", "authority", "environment", "holder", name="uq_pending_slot_holder"),
    )
    op.create_index("ix_limit_pending_slots_tenant_id", "limit_pending_slots", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("limit_pending_slots")
    op.drop_table("limit_breakers")
    op.drop_table("limit_rate_buckets")
    op.drop_table("batch_items")
    op.drop_table("batches")
