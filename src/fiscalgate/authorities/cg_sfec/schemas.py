"""SFEC wire models (pydantic v2; field names and aliases are the wire names).

Requests: online certification (`POST {prefix}/invoices/certify`) and the report endpoint of the
seed (`POST /api/invoices/report/api`), every field with the seed's type and requirement.
Responses: both spellings (`sfec_certification_number`... per the seed, `certification_number`,
`signature`, `short_signature`, `qr_code`, `identifier` per the sandbox, spec §4).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PlainSerializer

from fiscalgate.core.money import wire_number


def _json_number(value: Decimal) -> int | float:
    # JSON has no decimal type and httpx serialises with the json module: an int when whole,
    # else the float whose repr is the decimal itself (amounts carry at most 2 decimals).
    number = wire_number(value)
    return number if isinstance(number, int) else float(number)


Amount = Annotated[Decimal, Field(ge=0), PlainSerializer(_json_number, return_type=Any)]
Quantity = Annotated[Decimal, Field(gt=0), PlainSerializer(_json_number, return_type=Any)]
Text = Annotated[str, Field(min_length=1, max_length=500)]
LongText = Annotated[str, Field(min_length=1)]
TaxRate = Literal["0", "5", "18"]
RecipientType = Literal["business", "individual", "government", "foreign", "1", "2"]
PaymentMethodWire = Literal["bank_transfer", "card", "cash", "mobile_money", "cheque", "1", "2", "3", "4"]


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")


class SfecItem(_Wire):
    designation: Text
    classification_code: str | None = None  # no official list found (spec §3); optional
    type: Literal["product", "service"]
    unit_price: Amount  # HT
    quantity: Quantity
    subtotal: Amount  # unit_price x quantity, before the line discount (spec §5.1)
    discount_amount: Amount
    discount_type: Literal["fixed", "percentage"]
    net_amount: Amount
    amount_after_discount: Amount | None = None  # = net_amount; sent by some versions (spec §3)
    tax_rate: TaxRate  # a string on the wire (spec §3)
    tax_amount: Amount
    total_amount: Amount


class CertifyRequest(_Wire):
    """Online (ERP) certification. The seed's request fields minus the `certification_*` ones,
    which the platform produces."""

    # Identification and status
    taxpayer_niu: Annotated[str, Field(min_length=1, max_length=20)]
    invoice_id: Annotated[str, Field(min_length=1, max_length=120)]
    invoice_number: str | None = None  # the printed number, "some clients also send" it (spec §3)
    invoice_type: Literal["salesInvoice", "creditNote"]
    invoice_subject: str | None = None
    invoice_due_date: str | None = None  # ISO 8601
    invoice_status: Literal["pending", "certified", "cancelled"] = "pending"
    reference_invoice_id: str | None = None  # required for creditNote
    sciet: Text
    terminal_identifier: Text
    # Recipient
    recipient_type: RecipientType
    recipient_name: Text
    recipient_niu: str | None = None
    recipient_rccm: str | None = None
    recipient_address: str | None = None
    recipient_phone: str | None = None
    recipient_email: str | None = None
    is_recipient_taxable: bool
    # Amounts ("valeur numérique simple, sans devise")
    subtotal: Amount
    total_tax_t_amount: Amount
    total_tax_r_amount: Amount
    total_exempt_amount: Amount
    total_tax_amount: Amount
    discount_amount: Amount
    total_line_discount_amount: Amount
    additional_cent_tax: Amount
    electronic_stamp_duty: Amount
    total_amount: Amount
    amount_due: Amount
    # Payment
    currency: Literal["XAF", "USD"]
    payment_method: PaymentMethodWire
    payment_reference: str | None = None
    payment_date: str | None = None  # ISO 8601
    notes: str | None = None
    items: Annotated[list[SfecItem], Field(min_length=1)]


class ReportRequest(CertifyRequest):
    """`POST /api/invoices/report/api`: declare an invoice already certified (the online-report page)."""

    invoice_status: Literal["certified", "pending"]
    certification_date: Text  # ISO 8601
    certification_status: Literal["certified", "pending"]
    certification_signature: LongText
    certification_short_signature: str | None = None
    certification_qr_code: LongText  # base64 of the PNG (5-6 KB, spec §4)


class CertificationResponse(BaseModel):
    """A successful certification or report, under either spelling."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    certification_number: str = Field(
        validation_alias=AliasChoices("certification_number", "sfec_certification_number")
    )
    invoice_number: str | None = None
    certification_date: str | None = None
    identifier: str | None = Field(
        default=None, validation_alias=AliasChoices("identifier", "sfec_identifier")
    )
    signature: str | None = Field(
        default=None, validation_alias=AliasChoices("signature", "certification_signature")
    )
    short_signature: str | None = Field(
        default=None, validation_alias=AliasChoices("short_signature", "certification_short_signature")
    )
    qr_code: str | None = Field(
        default=None, validation_alias=AliasChoices("qr_code", "sfec_qr_code", "certification_qr_code")
    )


class InvoiceRecord(CertificationResponse):
    """One invoice as `GET {prefix}/invoices/{id}` returns it (the certification plus what was
    certified). Parsed defensively: the platform's exact shape is undocumented (spec §2)."""

    invoice_id: str | None = None
    invoice_type: str | None = None
    reference_invoice_id: str | None = None
    recipient_type: str | None = None
    recipient_niu: str | None = None
    currency: str | None = None
    subtotal: Decimal | None = None
    total_tax_amount: Decimal | None = None
    additional_cent_tax: Decimal | None = None
    total_amount: Decimal | None = None
    status: str | None = None


class InvoicePage(BaseModel):
    """`GET {prefix}/invoices?page&pageSize`: `{invoices, page, pageSize, totalPages}` (spec §2)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    invoices: list[dict[str, Any]] = Field(default_factory=list)
    page: int = 1
    page_size: int | None = Field(default=None, validation_alias=AliasChoices("pageSize", "page_size"))
    total_pages: int | None = Field(default=None, validation_alias=AliasChoices("totalPages", "total_pages"))
    total: int | None = Field(default=None, validation_alias=AliasChoices("total", "total_count"))
