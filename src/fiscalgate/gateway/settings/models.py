from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fiscalgate.gateway.db import Base, UTCDateTime, new_id, utcnow


class AuthorityConfig(Base):
    """One tenant's settings for one authority: plain fields in `data`, the SecretStr fields
    encrypted together in `secrets_sealed`."""

    __tablename__ = "authority_settings"
    __table_args__ = (UniqueConstraint("tenant_id", "authority", name="uq_settings_tenant_authority"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    authority: Mapped[str] = mapped_column(String(32))
    environment: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secrets_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    secret_fields: Mapped[list[Any]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MockSimulatorState(Base):
    """The memory of a tenant's in-process simulator for one authority (`mock`): its counters,
    certified documents, pending requests..., as a `simkit.snapshot`, so a restart of the gateway
    neither reissues a number nor forgets an invoice a credit note or a verification URL needs."""

    __tablename__ = "mock_simulator_states"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    authority: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MockSimulatorEntry(Base):
    """The memory of a tenant's in-process simulator for one authority (`mock`), one row per entry
    (`simkit.journal`): for each attribute of its MEMORY, one row per key of a dict (`key` = the JSON
    of the key's encoding) or one row holding the whole value (`key` = ""). After each call only the
    entries that changed are written, so the cost of keeping it does not grow with the invoices
    already certified. Replaces `mock_simulator_states` (whole snapshots), which is read once, when
    a simulator of an older version's memory starts, and then emptied."""

    __tablename__ = "mock_simulator_entries"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    authority: Mapped[str] = mapped_column(String(32), primary_key=True)
    part: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)  # insertion order (a dict's order is kept)
    value: Mapped[Any] = mapped_column(JSON)
