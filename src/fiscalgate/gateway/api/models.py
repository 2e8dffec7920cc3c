from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fiscalgate.gateway.db import Base, UTCDateTime, new_id, utcnow


class IdempotencyRecord(Base):
    """A POST made with an `Idempotency-Key`: claimed by inserting this row (the unique constraint
    decides between concurrent duplicates), then completed with the response to replay."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_scope_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    scope: Mapped[str] = mapped_column(String(64))  # SHA-256 of the caller's credential
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)  # null = in progress
    response_body: Mapped[Any] = mapped_column(JSON, nullable=True)
    # The gateway's own headers of the stored answer (`Fiscalgate-*`), replayed with it.
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    # The process serving the first request (queue/healing.py): dead holder, released key.
    holder: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
