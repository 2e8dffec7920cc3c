from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fiscalgate.gateway.db import Base, UTCDateTime, new_id, utcnow


class BatchRow(Base):
    """One `POST /v1/invoices/batch`: what was asked, and one item per submitted invoice."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    approve: Mapped[bool] = mapped_column(Boolean)
    certify: Mapped[bool] = mapped_column(Boolean)
    total: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    refused: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BatchItemRow(Base):
    """One submitted invoice: accepted (with its invoice) or refused (with why)."""

    __tablename__ = "batch_items"
    __table_args__ = (UniqueConstraint("batch_id", "position", name="uq_batch_item_position"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # 0-based, as in the request's list
    outcome: Mapped[str] = mapped_column(String(16))  # accepted | refused
    authority: Mapped[str | None] = mapped_column(String(32), nullable=True)
    number: Mapped[str | None] = mapped_column(String(120), nullable=True)
    # SET NULL: deleting an invoice (draft, failed...) keeps the batch's record of it.
    invoice_id: Mapped[str | None] = mapped_column(
        ForeignKey("invoices.id", ondelete="SET NULL"), nullable=True, index=True
    )
    existing: Mapped[bool] = mapped_column(Boolean, default=False)  # the same invoice was already there
    # Handed to a certification runner (the interim one clears it when done with the invoice).
    queued: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
