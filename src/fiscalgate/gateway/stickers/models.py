"""FNE sticker balances: the history of every balance the FNE returned, and one state row per
tenant x authority x environment (latest balance, running consumption, whether `stickers.low`
has fired for the current crossing)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fiscalgate.gateway.db import Base, UTCDateTime, new_id, utcnow


class StickerBalance(Base):
    __tablename__ = "sticker_balances"
    __table_args__ = (
        Index("ix_sticker_balances_scope", "tenant_id", "authority", "environment", "recorded_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    authority: Mapped[str] = mapped_column(String(32))
    environment: Mapped[str] = mapped_column(String(16))
    balance: Mapped[int] = mapped_column(BigInteger)
    balance_kind: Mapped[str] = mapped_column(String(16))  # "stickers" | "funds" (FNE spec §8.6)
    # Stickers consumed since the first record of this scope, up to and including this one: the
    # consumption between two records is the difference of their counters (purchases excluded).
    consumed_total: Mapped[int] = mapped_column(BigInteger)
    invoice_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StickerState(Base):
    __tablename__ = "sticker_states"
    __table_args__ = (UniqueConstraint("tenant_id", "authority", "environment", name="uq_sticker_state"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    authority: Mapped[str] = mapped_column(String(32))
    environment: Mapped[str] = mapped_column(String(16))
    balance: Mapped[int] = mapped_column(BigInteger)
    balance_kind: Mapped[str] = mapped_column(String(16))
    consumed_total: Mapped[int] = mapped_column(BigInteger, default=0)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    low: Mapped[bool] = mapped_column(Boolean, default=False)
    low_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
