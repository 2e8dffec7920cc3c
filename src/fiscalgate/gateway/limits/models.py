"""The limits' shared state: one row per bucket, breaker and held pending slot (migration 0009).

Shared through the database because workers may run in several processes on several machines:
in-memory state would multiply every limit by the number of processes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fiscalgate.gateway.db import Base, UTCDateTime, new_id


class RateBucketRow(Base):
    __tablename__ = "limit_rate_buckets"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    authority: Mapped[str] = mapped_column(String(32), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BreakerRow(Base):
    """A breaker's state; also the lock the pending-slot bookkeeping of its key takes."""

    __tablename__ = "limit_breakers"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    authority: Mapped[str] = mapped_column(String(32), primary_key=True)
    environment: Mapped[str] = mapped_column(String(16), primary_key=True)
    phase: Mapped[str] = mapped_column(String(16), default="closed")
    failures: Mapped[int] = mapped_column(Integer, default=0)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    probe_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PendingSlotRow(Base):
    __tablename__ = "limit_pending_slots"
    __table_args__ = (
        UniqueConstraint("tenant_id", "authority", "environment", "holder", name="uq_pending_slot_holder"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    authority: Mapped[str] = mapped_column(String(32))
    environment: Mapped[str] = mapped_column(String(16))
    holder: Mapped[str] = mapped_column(String(64))  # the invoice (or job) the slot is held for
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
