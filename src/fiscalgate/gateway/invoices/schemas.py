from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from fiscalgate.gateway.api.neutral_schema import MODEL_MARK
from fiscalgate.gateway.db import MAX_OFFSET, FromBound, StoredDatetime, UntilBound

Status = Literal["draft", "approved", "queued", "submitting", "certified", "rejected", "unknown", "failed"]


# Read as plain objects (parse_invoice reports every problem with its field), documented as the
# neutral models (api/neutral_schema.py puts them in the OpenAPI components).
NeutralInvoice = Annotated[dict[str, Any], WithJsonSchema({MODEL_MARK: "Invoice"})]
CertificationBody = Annotated[dict[str, Any], WithJsonSchema({MODEL_MARK: "Certification"})]

# A B2C sale each authority's mock accepts as it is (FNE wants the buyer's phone and e-mail).
EXAMPLE_INVOICE: dict[str, Any] = {
    "number": "F-2026-0001",
    "currency": "XOF",
    "seller": {"name": "Boutique Demo"},
    "buyer": {
        "kind": "individual",
        "name": "Client Comptoir",
        "phone": "0709080765",
        "email": "client@example.ci",
    },
    "operator": {"name": "Ama"},
    "lines": [
        {"description": "Riz 25 kg", "quantity": "2", "unit_price": "15000"},
        {"description": "Huile 5 l", "quantity": "3", "unit_price": "6000"},
    ],
    "payments": [{"method": "cash"}],
}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class InvoiceCreate(_In):
    authority: str | None = Field(
        default=None,
        description=(
            "An authority code or module, e.g. ci-fne or fne (GET /v1/settings lists every authority); "
            "inferred when exactly one is available"
        ),
    )
    invoice: NeutralInvoice = Field(description="The neutral invoice (fiscalgate.core.invoice.Invoice)")
    approve: bool = Field(default=False, description="Create it already approved (skip the approve call)")
    certify: bool = Field(
        default=False,
        description="Approve and certify it at once (synchronously, or through the queue with `?wait=`)",
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"authority": "ci-fne", "invoice": EXAMPLE_INVOICE, "approve": True}]}
    )


class InvoiceUpdate(_In):
    invoice: NeutralInvoice


class CreditLine(_In):
    original_line: int = Field(ge=1, description="1-based position of the line in the original invoice")
    quantity: Decimal | None = Field(default=None, gt=0, description="Default: all that is left to credit")


class CreditNoteCreate(_In):
    number: str = Field(min_length=1, max_length=120, description="The ERP's number for the credit note")
    lines: list[CreditLine] | None = Field(default=None, description="Lines to credit; omitted = full credit")
    reason: str | None = Field(default=None, max_length=500)
    issued_at: StoredDatetime | None = None
    approve: bool = False


class ReconcileRequest(_In):
    action: Literal["confirm", "cancel", "record_reference", "not_certified"] = Field(
        default="confirm",
        description=(
            "confirm/cancel: ask the authority (e-MECeF confirms or cancels its pending request, SFEC "
            "looks the invoice up, FNE cannot tell); record_reference: you checked the authority's "
            "portal and give the reference; not_certified: you checked and it was not certified"
        ),
    )
    reference: str | None = Field(default=None, min_length=1, max_length=200)
    qr_content: str | None = None
    verification_url: str | None = None
    certified_at: StoredDatetime | None = None
    totals: dict[str, Decimal] = Field(default_factory=dict)
    note: str | None = Field(default=None, max_length=1000)


class InvoiceOut(BaseModel):
    id: str
    authority: str
    number: str
    kind: str
    status: Status
    status_detail: str | None
    original_id: str | None
    environment: str | None
    reference: str | None
    certification: CertificationBody | None
    certified_at: datetime | None
    error: dict[str, Any] | None
    raw_response: Any
    checkpoint: dict[str, Any] | None
    attempts: int
    invoice: NeutralInvoice
    created_at: datetime
    updated_at: datetime


class InvoiceFilter(BaseModel):
    status: Status | None = None
    authority: str | None = None
    kind: Literal["sale", "purchase", "credit_note"] | None = None
    number: str | None = None
    original_id: str | None = None
    created_after: FromBound | None = Field(
        default=None, description="an aware datetime, or a date (UTC day)"
    )
    created_before: UntilBound | None = Field(
        default=None, description="an aware datetime, or a date (that day included)"
    )
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
