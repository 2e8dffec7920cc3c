from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_BATCH = 1000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class BatchCreate(_In):
    # Items are checked one by one (BatchInvoice) so that one malformed item is refused alone
    # instead of failing the whole request.
    invoices: list[Any] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description='Up to 1,000 items, each {"authority": ..., "invoice": {neutral invoice}}',
    )
    approve: bool = Field(default=False, description="Create them approved (the driver's checks run)")
    certify: bool = Field(default=False, description="Queue each accepted invoice for certification")


class BatchInvoice(_In):
    authority: str | None = Field(default=None, description="Inferred when exactly one fits")
    invoice: dict[str, Any]


class BatchCounts(BaseModel):
    total: int
    accepted: int
    refused: int
    certified: int
    rejected: int
    failed: int
    unknown: int
    in_progress: int  # not yet final
    waiting_for_person: int  # unknown / failed: someone has to decide
    final: int  # certified or rejected (or, without certify, accepted as asked)


class BatchItemOut(BaseModel):
    position: int
    outcome: Literal["accepted", "refused"]
    authority: str | None
    number: str | None
    invoice_id: str | None
    existing: bool = Field(description="the same invoice (number and content) was already there")
    status: str | None = Field(description="the invoice's status now (None when refused or deleted)")
    status_detail: str | None
    reference: str | None
    error: dict[str, Any] | None = Field(description="why it was refused, or the invoice's last error")
    note: str | None


class BatchSummary(BaseModel):
    """A batch in `GET /v1/batches`: its progress counts, without the items."""

    id: str
    status: Literal["in_progress", "done"]
    approve: bool
    certify: bool
    created_at: datetime
    counts: BatchCounts


class BatchOut(BatchSummary):
    items: list[BatchItemOut]
