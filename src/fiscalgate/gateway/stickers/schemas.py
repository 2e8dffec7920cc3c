from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, Field


class StickerStock(BaseModel):
    authority: str
    environment: str
    balance: int = Field(description="the latest balance the authority returned")
    balance_kind: str = Field(description="stickers, or funds (francs) for accounts billed by provision")
    recorded_at: datetime = Field(description="when the authority returned it (with a certification)")
    rate_per_day: Decimal | None = Field(description="consumption per day (null until two records)")
    days_left: Decimal | None = Field(description="balance / rate (null when the rate is 0 or unknown)")
    runs_out_at: datetime | None
    runs_out_on: date | None = Field(description="the forecast date, UTC")
    threshold: int = Field(description="stickers.low below this balance (the tenant's authority setting)")
    warn_days: int = Field(description="stickers.low when the forecast is closer than this (gateway-wide)")
    low: bool = Field(description="stickers.low has fired for the current crossing")
    low_since: datetime | None


class StickersOut(BaseModel):
    rate_window_days: int
    stocks: list[StickerStock]
