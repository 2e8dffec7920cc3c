"""The lists' keyset pagination: invoices and audit entries are read newest first within a tenant
(`created_at DESC, id DESC`, from a cursor), and counted with the same filter; one index each
serves the page at any depth and the count.

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-02
"""

from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_invoices_tenant_created", "invoices", ["tenant_id", "created_at", "id"])
    op.create_index("ix_audit_entries_tenant_created", "audit_entries", ["tenant_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_entries_tenant_created", table_name="audit_entries")
    op.drop_index("ix_invoices_tenant_created", table_name="invoices")
