from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fiscalgate.gateway.db import Base, UTCDateTime, new_id, utcnow


class AuditEntry(Base):
    """One audited fact: an authority call, a settings change, or a lifecycle event.

    Everything visible is masked; `sealed_request` keeps the exact request encrypted, only for
    replay (never returned by the API).
    """

    __tablename__ = "audit_entries"
    # The audit list: one tenant's entries, newest first (migration 0011).
    __table_args__ = (Index("ix_audit_entries_tenant_created", "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True, nullable=True
    )
    kind: Mapped[str] = mapped_column(String(32), index=True)  # authority_call | settings_change | ...
    authority: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    invoice_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    environment: Mapped[str | None] = mapped_column(String(16), nullable=True)
    trigger: Mapped[str] = mapped_column(String(120))  # api_key:<prefix> | admin | reconcile | replay:<id>
    event: Mapped[str | None] = mapped_column(String(64), nullable=True)
    method: Mapped[str | None] = mapped_column(String(10), nullable=True)
    url: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_headers: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    request_body: Mapped[Any] = mapped_column(JSON, nullable=True)
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_headers: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    response_body: Mapped[Any] = mapped_column(JSON, nullable=True)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(64), nullable=True)  # "http 200", "timeout"...
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    sealed_request: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
