"""FNE wire models (pydantic v2). Aliases are the wire names; every documented field is here.

Source: SOURCES.md §6 (sign request), §7 (refund request), §8 (responses), §9 (errors).
Requests are strict (extra="forbid": we never send a field by accident); responses keep unknown
fields (extra="allow") because the platform's bodies vary and we store them as received.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer


def _wire(value: Decimal) -> int | float:
    # JSON has no decimal type: whole numbers go as ints, others as the float whose shortest repr is
    # the decimal itself (amounts have at most a few decimals, well within a double's 15 digits).
    if value == value.to_integral_value():
        return int(value)
    return float(value)


WireDecimal = Annotated[Decimal, PlainSerializer(_wire, return_type=int | float, when_used="json")]


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _absent_is_false(value: Any) -> Any:
    return False if value is None or (isinstance(value, str) and not value.strip()) else value


# Response fields we only store: an empty string there (the DOC's purchase example sends
# `"foreignCurrencyRate": ""`) must not turn a certified invoice into an "unreadable" answer.
EchoedNumber = Annotated[Decimal | None, BeforeValidator(_blank_to_none)]
EchoedCount = Annotated[int | None, BeforeValidator(_blank_to_none)]
# `warning` is typed string in the DOC's table and boolean in its examples (spec §10.1).
WarningFlag = Annotated[bool, BeforeValidator(_absent_is_false)]

InvoiceType = Literal["sale", "purchase"]
Template = Literal["B2B", "B2C", "B2G", "B2F"]
PaymentMethodCode = Literal["cash", "card", "check", "mobile-money", "transfer", "deferred"]
VatCode = Literal["TVA", "TVAB", "TVAC", "TVAD"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        """The JSON body, with wire names and without unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --- requests --------------------------------------------------------------------------------------
class CustomTax(_Request):
    """An "other tax" (GRA, AIRSI, DTD...). `amount` is a RATE in %, not money (spec §6.1)."""

    name: str
    amount: WireDecimal


class SignItem(_Request):
    taxes: list[VatCode] | None = None  # exactly one code on a sale; absent on a purchase slip
    custom_taxes: list[CustomTax] | None = Field(default=None, alias="customTaxes")
    reference: str | None = None
    description: str
    quantity: WireDecimal
    amount: WireDecimal  # unit price EXCLUDING tax, in XOF
    discount: WireDecimal | None = None  # per-line discount in %
    measurement_unit: str | None = Field(default=None, alias="measurementUnit")


class SignRequest(_Request):
    """API #1 (sale) and API #3 (purchase slip): POST /external/invoices/sign."""

    invoice_type: InvoiceType = Field(alias="invoiceType")
    payment_method: PaymentMethodCode = Field(alias="paymentMethod")
    template: Template
    is_rne: bool = Field(default=False, alias="isRne")
    rne: str | None = None
    client_ncc: str | None = Field(default=None, alias="clientNcc")
    client_company_name: str = Field(alias="clientCompanyName")
    client_phone: str = Field(alias="clientPhone")  # the DOC says int; the platform wants a string
    client_email: str = Field(alias="clientEmail")
    client_seller_name: str | None = Field(default=None, alias="clientSellerName")
    point_of_sale: str = Field(alias="pointOfSale")
    establishment: str
    commercial_message: str | None = Field(default=None, alias="commercialMessage")
    footer: str | None = None
    foreign_currency: str | None = Field(default=None, alias="foreignCurrency")
    foreign_currency_rate: WireDecimal | None = Field(default=None, alias="foreignCurrencyRate")
    items: list[SignItem] = Field(min_length=1)
    custom_taxes: list[CustomTax] | None = Field(default=None, alias="customTaxes")
    discount: WireDecimal | None = None  # global discount on total HT, in %


class RefundItem(_Request):
    id: str  # invoice.items[].id from the sign response
    quantity: WireDecimal


class RefundRequest(_Request):
    """API #2: POST /external/invoices/{invoice.id}/refund."""

    items: list[RefundItem] = Field(min_length=1)


# --- responses -------------------------------------------------------------------------------------
class ItemTax(_Response):
    invoice_item_id: str | None = Field(default=None, alias="invoiceItemId")
    vat_rate_id: str | None = Field(default=None, alias="vatRateId")
    amount: EchoedNumber = None  # the RATE (18), not money
    name: str | None = None
    short_name: str | None = Field(default=None, alias="shortName")


class ResponseCustomTax(_Response):
    id: str | None = None
    invoice_item_id: str | None = Field(default=None, alias="invoiceItemId")
    invoice_id: str | None = Field(default=None, alias="invoiceId")
    amount: EchoedNumber = None  # rate in %
    name: str | None = None


class InvoiceItem(_Response):
    id: str  # needed for refunds
    quantity: Decimal
    reference: str | None = None
    description: str | None = None
    amount: Decimal  # unit price HT as sent
    discount: EchoedNumber = None
    measurement_unit: str | None = Field(default=None, alias="measurementUnit")
    taxes: list[ItemTax] = Field(default_factory=list)
    custom_taxes: list[ResponseCustomTax] = Field(default_factory=list, alias="customTaxes")
    invoice_id: str | None = Field(default=None, alias="invoiceId")
    parent_id: str | None = Field(default=None, alias="parentId")
    created_at: str | None = Field(default=None, alias="createdAt")
    updated_at: str | None = Field(default=None, alias="updatedAt")


class StoredInvoice(_Response):
    """The `invoice` object of a sign response (spec §8.2)."""

    id: str  # needed for refunds
    parent_id: str | None = Field(default=None, alias="parentId")
    parent_reference: str | None = Field(default=None, alias="parentReference")
    token: str | None = None  # the bare verification UUID
    reference: str | None = None
    type: str | None = None
    subtype: str | None = None
    date: str | None = None
    payment_method: str | None = Field(default=None, alias="paymentMethod")
    amount: Decimal  # total TTC: net HT + VAT (custom taxes excluded, see README)
    vat_amount: Decimal = Field(alias="vatAmount")
    fiscal_stamp: EchoedNumber = Field(default=None, alias="fiscalStamp")
    discount: EchoedNumber = None
    client_ncc: str | None = Field(default=None, alias="clientNcc")
    client_company_name: str | None = Field(default=None, alias="clientCompanyName")
    client_phone: str | None = Field(default=None, alias="clientPhone")
    client_email: str | None = Field(default=None, alias="clientEmail")
    client_terminal: str | None = Field(default=None, alias="clientTerminal")
    client_merchant_name: str | None = Field(default=None, alias="clientMerchantName")
    client_rccm: str | None = Field(default=None, alias="clientRccm")
    client_seller_name: str | None = Field(default=None, alias="clientSellerName")
    client_establishment: str | None = Field(default=None, alias="clientEstablishment")
    client_point_of_sale: str | None = Field(default=None, alias="clientPointOfSale")
    status: str | None = None
    template: str | None = None
    description: str | None = None
    footer: str | None = None
    commercial_message: str | None = Field(default=None, alias="commercialMessage")
    foreign_currency: str | None = Field(default=None, alias="foreignCurrency")
    foreign_currency_rate: EchoedNumber = Field(default=None, alias="foreignCurrencyRate")
    is_rne: bool | None = Field(default=None, alias="isRne")
    rne: str | None = None
    source: str | None = None
    created_at: str | None = Field(default=None, alias="createdAt")
    updated_at: str | None = Field(default=None, alias="updatedAt")
    items: list[InvoiceItem] = Field(default_factory=list)
    custom_taxes: list[ResponseCustomTax] = Field(default_factory=list, alias="customTaxes")


class SignResponse(_Response):
    """HTTP 200 of sign. `token` is the full verification URL (the QR content)."""

    ncc: str
    reference: str
    token: str
    warning: WarningFlag = False
    balance_sticker: EchoedCount = None
    balance_funds: EchoedNumber = None  # accounts billed by provision (spec §8.6 [OBS])
    invoice: StoredInvoice


class RefundResponse(_Response):
    """HTTP 201 of refund: the short body, no `invoice` object (so no credit-note id)."""

    ncc: str
    reference: str
    token: str
    warning: WarningFlag = False
    balance_sticker: EchoedCount = None
    balance_funds: EchoedNumber = None


class ErrorBody(_Response):
    """{"message","error","statusCode","errors":{field:{rule:text}}} (spec §9)."""

    message: str | list[str] | None = None
    error: str | None = None
    status_code: int | None = Field(default=None, alias="statusCode")
    errors: dict[str, Any] = Field(default_factory=dict)
    extra_params: dict[str, Any] | None = Field(default=None, alias="extraParams")
