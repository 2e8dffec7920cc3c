from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from fiscalgate.gateway.db import Base, UTCDateTime, new_id, utcnow


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    country: Mapped[str] = mapped_column(String(2))  # ISO alpha-2, normalised
    modules: Mapped[list[Any]] = mapped_column(JSON, default=list)  # module slugs, e.g. ["fne", "mecef"]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """A tenant API key. Only its SHA-256 is stored: keys are 256-bit random strings, so a slow
    password hash would add nothing but latency to every request."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)  # shown in lists and audit triggers
    key_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # "certify": every tenant route; "read": GET/HEAD only (a dashboard, an auditor). Migration 0008.
    scope: Mapped[str] = mapped_column(String(16), default="certify", server_default="certify")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
