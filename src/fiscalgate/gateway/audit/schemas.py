from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from fiscalgate.gateway.api.pagination import PageQuery
from fiscalgate.gateway.authorities import codes
from fiscalgate.gateway.db import FromBound, UntilBound
from fiscalgate.gateway.invoices.schemas import AuthorityFilter

# The kinds of audit entries the gateway writes (a new kind is added here, or filtering by it is
# refused like a misspelt one).
KINDS = (
    "authority_call",
    "settings_change",
    "lifecycle",
    "tenant",
    "invoice",
    "user",
    "authority",
    "webhook",
)


class AuditFilter(PageQuery):
    authority: AuthorityFilter | None = Field(default=None, description=" | ".join(codes()))
    invoice_id: str | None = None
    kind: str | None = Field(default=None, description=" | ".join(KINDS))
    since: FromBound | None = Field(default=None, description="an aware datetime, or a date (UTC day)")
    until: UntilBound | None = Field(default=None, description="an aware datetime, or a date (included)")
    status: str | None = Field(default=None, description="an HTTP status, `ok` (<400) or `error`")

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str | None) -> str | None:
        if value is None or value in KINDS:
            return value
        raise ValueError(f"unknown kind {value!r}; one of: {', '.join(KINDS)}")

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        if value is None or value in ("ok", "error") or (value.isdigit() and len(value) == 3):
            return value
        raise ValueError("status is an HTTP status (e.g. 400), `ok` or `error`")


class AuditOut(BaseModel):
    id: str
    kind: str
    event: str | None
    authority: str | None
    invoice_id: str | None
    environment: str | None
    trigger: str
    method: str | None = None
    url: str | None = None
    request_headers: dict[str, Any] | None = None
    request_body: Any = None
    response_status: int | None = None
    response_headers: dict[str, Any] | None = None
    response_body: Any = None
    duration_ms: float | None = None
    outcome: str | None = None
    detail: dict[str, Any] | None = None
    created_at: datetime
    replayable: bool = False


class ReplayOut(BaseModel):
    replayed_entry_id: str
    audit_entry_id: str | None
    method: str
    url: str
    response_status: int | None
    response_body: Any
    duration_ms: float | None
    outcome: str
