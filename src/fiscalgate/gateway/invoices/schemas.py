from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from fiscalgate.core.certification import Notice
from fiscalgate.core.dates import UtcDatetime
from fiscalgate.core.errors import ConfigurationError
from fiscalgate.gateway.api.neutral_schema import MODEL_MARK
from fiscalgate.gateway.api.pagination import PageQuery
from fiscalgate.gateway.authorities import authority_code, codes
from fiscalgate.gateway.db import FromBound, StoredDatetime, UntilBound

Status = Literal["draft", "approved", "queued", "submitting", "certified", "rejected", "unknown", "failed"]


# Read as plain objects (parse_invoice reports every problem with its field), documented as the
# neutral models (api/neutral_schema.py puts them in the OpenAPI components).
NeutralInvoice = Annotated[dict[str, Any], WithJsonSchema({MODEL_MARK: "Invoice"})]

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


def _known_authority(value: str) -> str:
    try:
        return authority_code(value)
    except ConfigurationError:
        raise ValueError(f"unknown authority {value!r}; one of: {', '.join(codes())}") from None


# A filter on the authority: its code or an alias (`fne`), refused when it names none.
AuthorityFilter = Annotated[str, AfterValidator(_known_authority)]


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


class CertificationOut(BaseModel):
    """The certification as the API answers it (`fiscalgate.core.certification.Certification`
    stored, then read with the answers' conventions): an absent value is null (an empty text or
    object is never answered), datetimes are UTC with `Z` whatever the authority's own zone, and
    `authority_data` / `raw` are the authority's own words, as received (secrets masked)."""

    authority: str
    environment: str
    kind: str
    reference: str
    qr_content: str | None = Field(
        default=None, description="What the QR code encodes; null when the authority gives only an image"
    )
    qr_image: str | None = None
    verification_url: str | None = None
    certified_at: UtcDatetime
    totals: dict[str, Decimal] | None = None
    counters: str | None = None
    sticker_balance: int | None = None
    notices: list[Notice] = Field(default_factory=list, description="Empty when there is none")
    authority_data: dict[str, Any] | None = None
    raw: dict[str, Any] | None = None


class InvoiceOut(BaseModel):
    """An invoice as the API answers it: absent values are null, datetimes UTC with `Z`."""

    id: str
    authority: str
    number: str
    kind: str
    status: Status
    status_detail: str | None
    original_id: str | None
    environment: str | None
    reference: str | None
    certification: CertificationOut | None
    certified_at: UtcDatetime | None
    error: dict[str, Any] | None
    raw_response: Any
    checkpoint: dict[str, Any] | None
    attempts: int
    invoice: NeutralInvoice
    created_at: UtcDatetime
    updated_at: UtcDatetime


class InvoiceFilter(PageQuery):
    status: Status | None = None
    authority: AuthorityFilter | None = Field(default=None, description=" | ".join(codes()))
    kind: Literal["sale", "purchase", "credit_note"] | None = None
    number: str | None = None
    original_id: str | None = None
    created_after: FromBound | None = Field(
        default=None, description="an aware datetime, or a date (UTC day)"
    )
    created_before: UntilBound | None = Field(
        default=None, description="an aware datetime, or a date (that day included)"
    )
