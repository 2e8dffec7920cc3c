"""The certification queue: jobs in the gateway's own database, the `queued` invoice status,
claims that say which process holds them and until when, and the processes' heartbeats.

Revision ID: 0006
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0007"
branch_labels = None
depends_on = None

OLD_STATUSES = "status IN ('draft','approved','submitting','certified','rejected','unknown','failed')"
NEW_STATUSES = (
    "status IN ('draft','approved','queued','submitting','certified','rejected','unknown','failed')"
)


def _sqlite_replace_check(old: str, new: str) -> None:
    """Widen (or narrow back) the status CHECK of `invoices` in place. SQLite cannot alter a
    constraint; rebuilding the table would drop its triggers (migration 0002) and, with foreign
    keys on, cascade. The SQLite documentation ("ALTER TABLE", section "Making Other Kinds Of
    Table Schema Changes") allows editing the stored CREATE TABLE text for changes that leave the
    stored rows valid: every stored status is in both lists (the downgrade first moves `queued`
    rows back to `approved`)."""
    bind = op.get_bind()
    found = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type='table' AND name='invoices'")
    sql = str(found.scalar() or "")
    if old not in sql:
        raise RuntimeError("invoices: the status constraint is not the expected one; not touching it")
    version = int(bind.exec_driver_sql("PRAGMA schema_version").scalar() or 0)
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    bind.exec_driver_sql(
        "UPDATE sqlite_master SET sql=? WHERE type='table' AND name='invoices'", (sql.replace(old, new),)
    )
    bind.exec_driver_sql(f"PRAGMA schema_version={version + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        _sqlite_replace_check(OLD_STATUSES, NEW_STATUSES)
    else:
        op.execute("ALTER TABLE invoices DROP CONSTRAINT ck_invoice_status")
        op.execute(f"ALTER TABLE invoices ADD CONSTRAINT ck_invoice_status CHECK ({NEW_STATUSES})")
    # ADD COLUMN needs no table rebuild on SQLite either.
    op.add_column("invoices", sa.Column("claim_holder", sa.String(64), nullable=True))
    op.add_column("invoices", sa.Column("claim_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("idempotency_keys", sa.Column("holder", sa.String(64), nullable=True))
    op.create_table(
        "gateway_processes",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "certification_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "tenant_id", sa.String(32), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "invoice_id", sa.String(32), sa.ForeignKey("invoices.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("holder", sa.String(64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trigger", sa.String(200), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("action IN ('certify','reconcile')", name="ck_job_action"),
        sa.CheckConstraint("state IN ('queued','running','done')", name="ck_job_state"),
    )
    op.create_index("ix_jobs_tenant_id", "certification_jobs", ["tenant_id"])
    op.create_index("ix_jobs_invoice_id", "certification_jobs", ["invoice_id"])
    op.create_index("ix_jobs_ready", "certification_jobs", ["state", "run_after"])
    # At most one live job per invoice: a second enqueue finds the first one.
    op.create_index(
        "uq_jobs_live_invoice",
        "certification_jobs",
        ["invoice_id"],
        unique=True,
        sqlite_where=sa.text("state <> 'done'"),
        postgresql_where=sa.text("state <> 'done'"),
    )
    op.create_index("ix_invoices_claim_holder", "invoices", ["claim_holder"])


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_index("ix_invoices_claim_holder", "invoices")
    op.drop_table("certification_jobs")
    op.drop_table("gateway_processes")
    op.execute("UPDATE invoices SET status='approved' WHERE status='queued'")
    if sqlite:
        # SQLite >= 3.35 drops a column in place (no rebuild) when nothing refers to it.
        op.execute("ALTER TABLE idempotency_keys DROP COLUMN holder")
        op.execute("ALTER TABLE invoices DROP COLUMN claim_expires_at")
        op.execute("ALTER TABLE invoices DROP COLUMN claim_holder")
        _sqlite_replace_check(NEW_STATUSES, OLD_STATUSES)
    else:
        op.drop_column("idempotency_keys", "holder")
        op.drop_column("invoices", "claim_expires_at")
        op.drop_column("invoices", "claim_holder")
        op.execute("ALTER TABLE invoices DROP CONSTRAINT ck_invoice_status")
        op.execute(f"ALTER TABLE invoices ADD CONSTRAINT ck_invoice_status CHECK ({OLD_STATUSES})")
