"""API keys carry a scope (`certify` | `read`) and may expire; certified data cannot be forged.

- `api_keys.scope`, `api_keys.expires_at`.
- Certified invoices: every column is guarded (0002 guarded 6 of them): any UPDATE of a certified
  row is refused, so is its DELETE, and on PostgreSQL a TRUNCATE of `invoices`.
- `invoice_chain`: the per-tenant hash chain over certified invoices (`gateway/chain.py`),
  append-only (UPDATE, DELETE, TRUNCATE refused), backfilled for invoices already certified.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import importlib

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

IMMUTABLE = "a certified invoice is immutable: issue a credit note to correct it"
APPEND_ONLY = "the certification chain is append-only"
NO_TRUNCATE = "certified invoices and their chain cannot be truncated"


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("scope", sa.String(16), nullable=False, server_default="certify"))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "invoice_chain",
        sa.Column("tenant_id", sa.String(32), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.String(32), nullable=False, unique=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "seq"),
    )
    from fiscalgate.gateway.chain import backfill

    backfill(op.get_bind())
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER invoices_certified_no_update")
        op.execute(
            "CREATE TRIGGER invoices_certified_no_update BEFORE UPDATE ON invoices FOR EACH ROW"
            f" WHEN OLD.status = 'certified' BEGIN SELECT RAISE(ABORT, '{IMMUTABLE}'); END"
        )
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER invoice_chain_no_{action.lower()} BEFORE {action} ON invoice_chain"
                f" FOR EACH ROW BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION invoices_certified_immutable() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN RAISE EXCEPTION '{IMMUTABLE}' USING ERRCODE = 'integrity_constraint_violation'; END $$"
    )
    op.execute(
        "CREATE FUNCTION invoice_chain_append_only() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN RAISE EXCEPTION '{APPEND_ONLY}' USING ERRCODE = 'integrity_constraint_violation'; END $$"
    )
    op.execute(
        "CREATE FUNCTION fiscalgate_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN RAISE EXCEPTION '{NO_TRUNCATE}' USING ERRCODE = 'integrity_constraint_violation'; END $$"
    )
    op.execute(
        "CREATE TRIGGER invoice_chain_append_only BEFORE UPDATE OR DELETE ON invoice_chain"
        " FOR EACH ROW EXECUTE FUNCTION invoice_chain_append_only()"
    )
    for table in ("invoices", "invoice_chain"):
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION fiscalgate_no_truncate()"
        )


def downgrade() -> None:
    previous = importlib.import_module("fiscalgate.gateway.migrations.versions.0002_certified_immutable")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER invoice_chain_no_update")
        op.execute("DROP TRIGGER invoice_chain_no_delete")
        op.execute("DROP TRIGGER invoices_certified_no_update")
        op.execute(
            "CREATE TRIGGER invoices_certified_no_update BEFORE UPDATE ON invoices FOR EACH ROW"
            f" WHEN OLD.status = 'certified' AND ({previous.SQLITE_CHANGED})"
            f" BEGIN SELECT RAISE(ABORT, '{previous.MESSAGE}'); END"
        )
    else:
        op.execute(
            "CREATE OR REPLACE FUNCTION invoices_certified_immutable() RETURNS trigger"
            " LANGUAGE plpgsql AS $$\nBEGIN\n"
            f"  IF TG_OP = 'DELETE' OR ({previous.CHANGED}) THEN\n"
            f"    RAISE EXCEPTION '{previous.MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';\n"
            "  END IF;\n"
            "  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;\n"
            "  RETURN NEW;\n"
            "END $$"
        )
        for table in ("invoices", "invoice_chain"):
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute("DROP TRIGGER invoice_chain_append_only ON invoice_chain")
        op.execute("DROP FUNCTION invoice_chain_append_only()")
        op.execute("DROP FUNCTION fiscalgate_no_truncate()")
    op.drop_table("invoice_chain")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("scope")
