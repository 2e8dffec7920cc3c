from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fiscalgate.gateway.api.pagination import PageQuery


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str = Field(description="https:// URL of the receiver (http only to an allowed private host)")
    events: list[str] = Field(
        min_length=1,
        description="invoice.certified, invoice.rejected, invoice.failed, invoice.unknown, "
        "stickers.low, authority.down, authority.up",
    )
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="The signing secret (at least 16 characters); generated when omitted. Shown "
        "once, in this answer; masked everywhere afterwards",
    )
    description: str | None = Field(default=None, max_length=200)


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    secret: str = Field(description="masked")
    description: str | None
    created_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret in full: shown this once, store it now")


class AttemptOut(BaseModel):
    number: int
    trigger: str
    started_at: datetime
    duration_ms: float | None
    response_status: int | None
    response_excerpt: str | None
    error: str | None


class DeliveryOut(BaseModel):
    id: str
    webhook_id: str
    event_id: str
    event_type: str
    status: Literal["pending", "delivering", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    response_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    attempt_log: list[AttemptOut] = Field(default_factory=list)


class DeliveryFilter(PageQuery):
    status: Literal["pending", "delivering", "delivered", "failed"] | None = None
