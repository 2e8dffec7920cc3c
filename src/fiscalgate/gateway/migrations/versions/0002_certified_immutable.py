"""Certified invoices are immutable in the database itself: triggers refuse any change to a
certified row's status, reference, certification or content, and its deletion.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

MESSAGE = "a certified invoice is immutable: issue a credit note to correct it"
# json has no equality operator in PostgreSQL: compare the text forms.
CHANGED = (
    "NEW.status IS DISTINCT FROM OLD.status OR NEW.reference IS DISTINCT FROM OLD.reference"
    " OR NEW.certification::text IS DISTINCT FROM OLD.certification::text"
    " OR NEW.document::text IS DISTINCT FROM OLD.document::text"
    " OR NEW.number IS DISTINCT FROM OLD.number OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id"
)
SQLITE_CHANGED = (
    "NEW.status IS NOT OLD.status OR NEW.reference IS NOT OLD.reference"
    " OR NEW.certification IS NOT OLD.certification OR NEW.document IS NOT OLD.document"
    " OR NEW.number IS NOT OLD.number OR NEW.tenant_id IS NOT OLD.tenant_id"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE TRIGGER invoices_certified_no_update BEFORE UPDATE ON invoices FOR EACH ROW"
            f" WHEN OLD.status = 'certified' AND ({SQLITE_CHANGED})"
            f" BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )
        op.execute(
            "CREATE TRIGGER invoices_certified_no_delete BEFORE DELETE ON invoices FOR EACH ROW"
            f" WHEN OLD.status = 'certified' BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END"
        )
        return
    op.execute(
        "CREATE FUNCTION invoices_certified_immutable() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        f"  IF TG_OP = 'DELETE' OR ({CHANGED}) THEN\n"
        f"    RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';\n"
        "  END IF;\n"
        "  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;\n"
        "  RETURN NEW;\n"
        "END $$"
    )
    op.execute(
        "CREATE TRIGGER invoices_certified_immutable BEFORE UPDATE OR DELETE ON invoices"
        " FOR EACH ROW WHEN (OLD.status = 'certified') EXECUTE FUNCTION invoices_certified_immutable()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER invoices_certified_no_update")
        op.execute("DROP TRIGGER invoices_certified_no_delete")
        return
    op.execute("DROP TRIGGER invoices_certified_immutable ON invoices")
    op.execute("DROP FUNCTION invoices_certified_immutable()")
