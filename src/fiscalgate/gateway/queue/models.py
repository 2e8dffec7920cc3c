from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from fiscalgate.gateway.db import Base, UTCDateTime, new_id, utcnow


class JobRow(Base):
    """One piece of work the queue owes an invoice: certify it, or reconcile its uncertain call.

    `state`: queued (waiting for `run_after`) -> running (a worker holds it until
    `lease_expires_at`, or until its process stops beating) -> done (`result` says how).
    """

    __tablename__ = "certification_jobs"
    __table_args__ = (
        CheckConstraint("action IN ('certify','reconcile')", name="ck_job_action"),
        CheckConstraint("state IN ('queued','running','done')", name="ck_job_state"),
        Index("ix_jobs_ready", "state", "run_after"),
        Index(
            "uq_jobs_live_invoice",
            "invoice_id",
            unique=True,
            sqlite_where=text("state <> 'done'"),
            postgresql_where=text("state <> 'done'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    holder: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    trigger: Mapped[str] = mapped_column(String(200))
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProcessRow(Base):
    """A running gateway process (`serve` or `worker`) and its last heartbeat."""

    __tablename__ = "gateway_processes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
