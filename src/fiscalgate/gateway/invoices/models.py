from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from fiscalgate.gateway.db import Base, UTCDateTime, new_id, utcnow

STATUSES = ("draft", "approved", "queued", "submitting", "certified", "rejected", "unknown", "failed")


class InvoiceRow(Base):
    """One invoice (or credit note) and its whole certification state.

    The certification lives on the row itself, so an invoice has at most one by construction; the
    constraints below make the database refuse a certified row without its reference and the same
    reference on two invoices.
    """

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "authority", "number", name="uq_invoice_number"),
        # Scoped by tenant and environment: each tenant's mock simulator (and a shared sandbox)
        # numbers on its own, so equal references there are not duplicates.
        UniqueConstraint("tenant_id", "authority", "environment", "reference", name="uq_invoice_reference"),
        CheckConstraint(
            "status IN ('draft','approved','queued','submitting','certified','rejected','unknown','failed')",
            name="ck_invoice_status",
        ),
        CheckConstraint(
            "status <> 'certified' OR (reference IS NOT NULL AND certification IS NOT NULL"
            " AND certified_at IS NOT NULL)",
            name="ck_invoice_certified_has_reference",
        ),
        CheckConstraint(
            "reference IS NULL OR status = 'certified'",
            name="ck_invoice_reference_only_when_certified",
        ),
        CheckConstraint(
            "(kind = 'credit_note') = (original_id IS NOT NULL)", name="ck_invoice_credit_note_original"
        ),
        # The list: one tenant's invoices, newest first (migration 0011).
        Index("ix_invoices_tenant_created", "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    authority: Mapped[str] = mapped_column(String(32))
    number: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # the neutral Invoice, JSON mode
    currency: Mapped[str] = mapped_column(String(3))
    original_id: Mapped[str | None] = mapped_column(ForeignKey("invoices.id"), nullable=True, index=True)
    environment: Mapped[str | None] = mapped_column(String(16), nullable=True)  # of the last attempt
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    certification: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    certified_total: Mapped[Decimal | None] = mapped_column(Numeric(20, 4), nullable=True)
    certified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    raw_response: Mapped[Any] = mapped_column(JSON, nullable=True)  # masked, for diagnosis
    status_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # Who holds the claim (a process id, see queue/healing.py) and until when.
    claim_holder: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
