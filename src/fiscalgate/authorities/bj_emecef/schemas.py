"""The e-MCF API's DTOs (spec §6, DOC p.7–23, the DGI swagger), as pydantic v2 models whose aliases are
the wire names. Requests are strict (what we send must be valid); responses are lenient (unknown
fields such as `refundWithAibPayment` or `pendingAibPaymentList` are kept, nulls tolerated), because
the live platform already returns more than v1.0 documents.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

from fiscalgate.authorities.bj_emecef.regime import (
    BENIN_TZ,
    TOTAL_FIELDS,
    Aib,
    InvoiceType,
    PaymentType,
    TaxGroup,
)


def _code_as_text(value: Any) -> Any:
    # errorCode is a string on the wire ("20"); accept a number too rather than fail on it.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


ErrorCode = Annotated[str | None, BeforeValidator(_code_as_text)]


def _in_benin_time(value: datetime) -> datetime:
    # The server's DateTimeOffset always carries +01:00 (§2, §3); should an answer ever omit the
    # offset, the time is the e-MCF's clock, i.e. Bénin time. Never hand out a naive datetime.
    return value if value.tzinfo is not None else value.replace(tzinfo=BENIN_TZ)


ServerTime = Annotated[datetime, AfterValidator(_in_benin_time)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def wire(self) -> dict[str, Any]:
        """The JSON body: wire names, no nulls, whole Decimals as ints (amounts are integers in XOF)."""
        body: dict[str, Any] = _jsonable(self.model_dump(by_alias=True, exclude_none=True))
        return body


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    error_code: ErrorCode = Field(default=None, alias="errorCode")
    error_desc: str | None = Field(default=None, alias="errorDesc")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        # Quantities may carry decimals (2.5, 12.250); a float's repr is exact for those.
        return int(value) if value == value.to_integral_value() else float(value)
    return value


# --- InvoiceRequestDataDto and its parts (DOC p.9–10) ---------------------------------------------
class ItemDto(_Request):
    code: str | None = None
    name: str = Field(min_length=1)
    price: int  # unit price INCLUDING VAT, whole francs
    quantity: Decimal = Field(gt=0)
    tax_group: TaxGroup = Field(alias="taxGroup")
    tax_specific: int | None = Field(default=None, alias="taxSpecific", ge=0)  # whole line, excl. VAT
    original_price: int | None = Field(default=None, alias="originalPrice")
    price_modification: str | None = Field(default=None, alias="priceModification")


class ClientDto(_Request):
    ifu: str | None = Field(default=None, pattern=r"^\d{13}$")
    name: str | None = None
    contact: str | None = None
    address: str | None = None


class OperatorDto(_Request):
    id: str = ""  # optional for the API; "" works (DOC p.18)
    name: str = Field(min_length=1)


class PaymentDto(_Request):
    name: PaymentType
    amount: int = Field(ge=0)


class InvoiceRequestDataDto(_Request):
    ifu: str = Field(pattern=r"^\d{13}$")
    aib: Aib | None = None
    type: InvoiceType
    items: list[ItemDto] = Field(min_length=1)
    client: ClientDto | None = None
    operator: OperatorDto
    payment: list[PaymentDto] | None = None
    reference: str | None = Field(default=None, pattern=r"^[A-Z2-7]{24}$")


# --- responses ------------------------------------------------------------------------------------
class InvoiceResponseDataDto(_Response):
    """POST /api/invoice: the e-MCF's totals and the uid of the now pending request."""

    uid: str | None = None
    ta: Decimal | None = None  # rates (%) of groups A–D; there is no te/tf
    tb: Decimal | None = None
    tc: Decimal | None = None
    td: Decimal | None = None
    taa: Decimal | None = None  # TTC total per group A–F
    tab: Decimal | None = None
    tac: Decimal | None = None
    tad: Decimal | None = None
    tae: Decimal | None = None
    taf: Decimal | None = None
    hab: Decimal | None = None  # HT of B and D
    had: Decimal | None = None
    vab: Decimal | None = None  # VAT of B and D
    vad: Decimal | None = None
    aib: Decimal | None = None
    ts: Decimal | None = None  # total specific tax, excluding VAT
    total: Decimal | None = None

    def totals(self) -> dict[str, Decimal]:
        return {name: getattr(self, name) or Decimal(0) for name in TOTAL_FIELDS}


class SecurityElementsDto(_Response):
    """PUT /api/invoice/{uid}/confirm|cancel: empty code and QR when cancelled."""

    date_time: str | None = Field(default=None, alias="dateTime")  # dd/MM/yyyy HH:mm:ss, Bénin time
    qr_code: str | None = Field(default=None, alias="qrCode")
    code_mecef_dgi: str | None = Field(default=None, alias="codeMECeFDGI")
    counters: str | None = None
    nim: str | None = None
    refund_with_aib_payment: bool | None = Field(default=None, alias="refundWithAibPayment")  # not in v1.0


class ResponseItemDto(_Response):
    code: str | None = None
    name: str | None = None
    price: Decimal | None = None
    quantity: Decimal | None = None
    tax_group: str | None = Field(default=None, alias="taxGroup")
    tax_specific: Decimal | None = Field(default=None, alias="taxSpecific")
    original_price: Decimal | None = Field(default=None, alias="originalPrice")
    price_modification: str | None = Field(default=None, alias="priceModification")


class ResponsePaymentDto(_Response):
    name: str | None = None
    amount: Decimal | None = None


class InvoiceDetailsDto(_Response):
    """GET /api/invoice/{uid}: the pending request echoed; `type` "NA" and nulls when not pending."""

    ifu: str | None = None
    aib: str | None = None
    type: str | None = None
    items: list[ResponseItemDto] | None = None
    client: dict[str, Any] | None = None
    operator: dict[str, Any] | None = None
    payment: list[ResponsePaymentDto] | None = None
    reference: str | None = None


class PendingRequestDto(_Response):
    date: ServerTime | None = None
    uid: str


class StatusResponseDto(_Response):
    """GET /api/invoice: API and token status, and the pending requests of this e-MCF."""

    status: bool = False
    version: str | None = None
    ifu: str | None = None
    nim: str | None = None
    token_valid: ServerTime | None = Field(default=None, alias="tokenValid")
    server_date_time: ServerTime | None = Field(default=None, alias="serverDateTime")
    pending_requests_count: int = Field(default=0, alias="pendingRequestsCount")
    pending_requests_list: list[PendingRequestDto] = Field(default_factory=list, alias="pendingRequestsList")


class EmcfInfoDto(_Response):
    nim: str | None = None
    status: str | None = None  # Enregistré | Actif | Désactivé
    shop_name: str | None = Field(default=None, alias="shopName")
    address1: str | None = None
    address2: str | None = None
    address3: str | None = None
    contact1: str | None = None
    contact2: str | None = None
    contact3: str | None = None


class InfoResponseDto(_Response):
    """GET /api/info/status: the taxpayer and all of its e-MCFs."""

    status: bool = False
    version: str | None = None
    ifu: str | None = None
    nim: str | None = None
    token_valid: ServerTime | None = Field(default=None, alias="tokenValid")
    server_date_time: ServerTime | None = Field(default=None, alias="serverDateTime")
    emcf_list: list[EmcfInfoDto] = Field(default_factory=list, alias="emcfList")


class TaxGroupsDto(_Response):
    a: Decimal
    b: Decimal
    c: Decimal
    d: Decimal
    e: Decimal
    f: Decimal
    aib_a: Decimal = Field(alias="aibA")
    aib_b: Decimal = Field(alias="aibB")


class InvoiceTypeDto(_Response):
    type: str
    description: str


class PaymentTypeDto(_Response):
    type: str
    description: str
