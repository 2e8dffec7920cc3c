"""The neutral invoice: what an ERP or a point of sale sends, whatever the authority.

Every authority package converts this model into its own wire payload. Amounts are `Decimal` in
`currency`; quantities are `Decimal`. Rules that hold for every authority are checked here; each
authority adds its own in its `convert.py` / validation.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from fiscalgate.core.errors import InvoiceError, Problem
from fiscalgate.core.money import minor_units

NonEmptyStr = Annotated[str, Field(min_length=1, max_length=500)]
ShortStr = Annotated[str, Field(min_length=1, max_length=120)]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]

# The largest amount (and line amount) any authority's fields carry exactly: FNE reads JSON numbers
# as doubles (exact to 2**53, ~9e15, with our 4 price decimals that leaves ~1e12), e-MECeF and SFEC
# amounts are whole francs in 64-bit fields. 10**12 - 1 francs is far above any real invoice.
MAX_AMOUNT = Decimal(10**12 - 1)
MAX_QUANTITY = Decimal(10**9)
# Decimals a unit price may have beyond the currency's minor unit (FNE takes 4-decimal HT prices).
PRICE_EXTRA_PLACES = 4


def _plain(value: Decimal) -> Decimal:
    """One notation for every amount: 1E+3 becomes 1000 (stored, shown and sent as such)."""
    return Decimal(format(value, "f"))


Amount = Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False), AfterValidator(_plain)]
Quantity = Annotated[Decimal, Field(gt=0, le=MAX_QUANTITY, allow_inf_nan=False), AfterValidator(_plain)]
Rate = Annotated[Decimal, Field(gt=0, le=MAX_AMOUNT, allow_inf_nan=False), AfterValidator(_plain)]
Percent = Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False), AfterValidator(_plain)]

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]{2,}")


def _email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise ValueError(f"{value!r} is not an e-mail address (name@domain.tld)")
    return value


Email = Annotated[str, Field(min_length=3, max_length=120), AfterValidator(_email)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=False)


class InvoiceKind(StrEnum):
    SALE = "sale"
    PURCHASE = "purchase"  # e.g. the FNE agricultural purchase slip (bordereau d'achat)
    CREDIT_NOTE = "credit_note"


class BuyerKind(StrEnum):
    BUSINESS = "business"  # a taxpayer with a tax id (FNE B2B)
    INDIVIDUAL = "individual"  # a private person (FNE B2C)
    GOVERNMENT = "government"  # a public body (FNE B2G)
    FOREIGN = "foreign"  # a client abroad (FNE B2F, e-MECeF export EV/EA)


class SellerRegime(StrEnum):
    NORMAL = "normal"  # VAT-registered under the normal regime
    TPS = "tps"  # synthetic professional tax / micro regimes without VAT (BJ group E, CI TEE/RME)


class TaxCategory(StrEnum):
    """What kind of VAT a line carries; each authority maps it to its own code or group.

    | category      | CI FNE | BJ e-MECeF | CG SFEC |
    | standard      | TVA    | B          | 18      |
    | reduced       | TVAB   | (refused)  | 5       |
    | exempt        | TVAC   | A          | 0       |
    | exempt_legal  | TVAD   | A          | 0       |
    | export        | TVAC   | C          | 0       |
    | special       | TVA    | D          | 18      |
    A seller under the TPS regime turns every line into CI TVAD / BJ E. `tax_code` overrides all.
    """

    STANDARD = "standard"
    REDUCED = "reduced"
    EXEMPT = "exempt"
    EXEMPT_LEGAL = "exempt_legal"
    EXPORT = "export"
    SPECIAL = "special"


class LineKind(StrEnum):
    PRODUCT = "product"
    SERVICE = "service"


class PaymentMethod(StrEnum):
    CASH = "cash"
    CARD = "card"
    CHECK = "check"
    MOBILE_MONEY = "mobile_money"
    TRANSFER = "transfer"
    DEFERRED = "deferred"  # on credit / à terme
    OTHER = "other"


class Discount(_Model):
    """A percentage, or an amount taken off the whole line (or off the invoice's total HT)."""

    kind: Literal["percent", "amount"] = "percent"
    value: Amount

    @model_validator(mode="after")
    def _percent_at_most_100(self) -> Discount:
        if self.kind == "percent" and self.value > 100:
            raise ValueError("a percentage discount cannot exceed 100")
        return self


class ExtraTax(_Model):
    """A tax other than VAT: a rate in % of the line (FNE custom taxes) or an amount (BJ taxSpecific)."""

    name: ShortStr
    rate: Percent | None = None
    amount: Amount | None = None

    @model_validator(mode="after")
    def _rate_or_amount(self) -> ExtraTax:
        if (self.rate is None) == (self.amount is None):
            raise ValueError("give exactly one of rate (%) or amount")
        return self


class Party(_Model):
    name: NonEmptyStr | None = None
    tax_id: ShortStr | None = None  # NCC (CI), IFU (BJ), NIU (CG)
    rccm: ShortStr | None = None
    address: NonEmptyStr | None = None
    phone: ShortStr | None = None
    email: Email | None = None


class Seller(Party):
    regime: SellerRegime = SellerRegime.NORMAL


class Buyer(Party):
    kind: BuyerKind = BuyerKind.INDIVIDUAL
    country: ShortStr | None = None
    is_taxable: bool | None = None  # VAT-registered buyer (SFEC is_recipient_taxable)


class Operator(_Model):
    id: str | None = Field(default=None, max_length=120)
    name: ShortStr


class Payment(_Model):
    method: PaymentMethod = PaymentMethod.CASH
    amount: Amount | None = None
    reference: ShortStr | None = None
    date: AwareDatetime | None = None


class OriginalInvoice(_Model):
    """The invoice a credit note corrects."""

    number: ShortStr | None = None  # the ERP's own number
    reference: ShortStr | None = None  # the authority's official reference / code

    @model_validator(mode="after")
    def _one_of(self) -> OriginalInvoice:
        if not self.number and not self.reference:
            raise ValueError("give the original's number or its authority reference")
        return self


class InvoiceLine(_Model):
    description: NonEmptyStr
    quantity: Quantity
    unit_price: Amount
    price_includes_tax: bool = False
    discount: Discount | None = None
    tax_category: TaxCategory = TaxCategory.STANDARD
    tax_code: ShortStr | None = None  # the authority's own code/group, overriding tax_category
    extra_taxes: list[ExtraTax] = Field(default_factory=list)
    unit: ShortStr | None = None
    reference: ShortStr | None = None
    kind: LineKind = LineKind.PRODUCT
    # Credit notes only: 1-based position of the credited line in the original invoice.
    original_line: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _discount_within_line(self) -> InvoiceLine:
        if self.discount is not None and self.discount.kind == "amount" and self.discount.value > self.gross:
            raise ValueError(
                f"the discount ({self.discount.value}) exceeds the line amount "
                f"({self.quantity} x {self.unit_price} = {self.gross})"
            )
        return self

    @property
    def gross(self) -> Decimal:
        """quantity x unit price, before any discount, unrounded."""
        return self.quantity * self.unit_price

    @property
    def discount_amount(self) -> Decimal:
        """The line discount as an amount of money, unrounded (validation keeps it within the gross)."""
        if self.discount is None:
            return Decimal(0)
        if self.discount.kind == "percent":
            return self.gross * self.discount.value / 100
        return min(self.discount.value, self.gross)

    @property
    def discount_percent(self) -> Decimal:
        """The line discount as a percentage of the gross (what FNE carries)."""
        if self.discount is None or self.gross == 0:
            return Decimal(0)
        if self.discount.kind == "percent":
            return self.discount.value
        return self.discount_amount * 100 / self.gross


class Invoice(_Model):
    number: ShortStr  # the ERP's own invoice number; unique per seller
    kind: InvoiceKind = InvoiceKind.SALE
    issued_at: AwareDatetime | None = None
    due_date: date | None = None
    currency: CurrencyCode = "XOF"  # currency of every amount below
    # A foreign buyer's currency and how many units of `currency` one unit of it is worth.
    foreign_currency: CurrencyCode | None = None
    exchange_rate: (
        Annotated[Decimal, Field(gt=0, le=MAX_AMOUNT, allow_inf_nan=False), AfterValidator(_plain)] | None
    ) = None
    seller: Seller
    buyer: Buyer = Field(default_factory=Buyer)
    lines: list[InvoiceLine] = Field(min_length=1, max_length=1000)
    discount: Discount | None = None  # invoice-level, on the total before tax
    payments: list[Payment] = Field(default_factory=list)
    original: OriginalInvoice | None = None
    operator: Operator | None = None
    point_of_sale: ShortStr | None = None
    establishment: ShortStr | None = None
    subject: NonEmptyStr | None = None
    commercial_message: NonEmptyStr | None = None
    footer: NonEmptyStr | None = None
    notes: NonEmptyStr | None = None
    # Per-authority overrides, e.g. {"ci-fne": {"template": "B2G"}, "bj-emecef": {"aib": "A"}}.
    authority_options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _coherent(self) -> Invoice:
        if self.kind is InvoiceKind.CREDIT_NOTE and self.original is None:
            raise ValueError("a credit note needs `original` (the invoice it corrects)")
        if self.kind is not InvoiceKind.CREDIT_NOTE and self.original is not None:
            raise ValueError("only a credit note has an `original`")
        if (self.foreign_currency is None) != (self.exchange_rate is None):
            raise ValueError("foreign_currency and exchange_rate go together")
        return self

    def options_for(self, authority: str) -> dict[str, Any]:
        return dict(self.authority_options.get(authority, {}))


def problems_from_validation_error(
    exc: ValidationError, prefix: str = "", *, whole: str = "(invoice)"
) -> list[Problem]:
    """Turn pydantic's errors into Problems whose `field` is a readable path like `lines[0].quantity`."""
    problems = []
    for err in exc.errors():
        path = prefix
        for part in err["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                path += f".{part}" if path else str(part)
        message = err["msg"].removeprefix("Value error, ")
        problems.append(Problem(field=path or whole, rule=err["type"], message=message))
    return problems


def parse_invoice(data: Any) -> Invoice:
    """Validate raw data (a dict or a JSON string) into an Invoice, or raise InvoiceError listing
    every problem."""
    try:
        if isinstance(data, str | bytes):
            invoice = Invoice.model_validate_json(data)
        else:
            invoice = Invoice.model_validate(data)
    except ValidationError as exc:
        raise InvoiceError(problems_from_validation_error(exc)) from None
    problems = amount_problems(invoice)
    if problems:
        raise InvoiceError(problems)
    return invoice


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def amount_problems(invoice: Invoice) -> list[Problem]:
    """Amounts the invoice's currency cannot carry. XOF and XAF have no minor unit: `0.1` XOF is
    refused (an authority would certify it as 0 and spend a number, or a sticker, on it). A unit
    price may have up to 4 more decimals (FNE's HT prices), but an invoice whose lines are not zero
    must come to at least one unit of the currency; a line amount above MAX_AMOUNT is refused.
    Discount amounts are not checked here: each driver turns them into what its wire carries
    (FNE percentages, SFEC whole francs), as its README says."""
    unit = minor_units(invoice.currency)
    smallest = Decimal(1).scaleb(-unit)
    problems: list[Problem] = []

    def amount(field: str, value: Decimal | None) -> None:
        if value is not None and _places(value) > unit:
            problems.append(
                Problem(
                    field,
                    "currency_precision",
                    f"{format(value, 'f')} is not an amount in {invoice.currency}, whose smallest unit is "
                    f"{format(smallest, 'f')}" + (" (no minor unit)" if unit == 0 else ""),
                )
            )

    for i, line in enumerate(invoice.lines):
        at = f"lines[{i}]"
        if _places(line.unit_price) > unit + PRICE_EXTRA_PLACES:
            problems.append(
                Problem(
                    f"{at}.unit_price",
                    "currency_precision",
                    f"at most {unit + PRICE_EXTRA_PLACES} decimals in {invoice.currency}",
                )
            )
        gross = line.quantity * line.unit_price
        if gross > MAX_AMOUNT:
            problems.append(
                Problem(
                    f"{at}.quantity",
                    "magnitude",
                    f"the line comes to {format(gross, 'f')} {invoice.currency}, above the {MAX_AMOUNT} "
                    "the authorities' amount fields carry",
                )
            )
        for j, tax in enumerate(line.extra_taxes):
            amount(f"{at}.extra_taxes[{j}].amount", tax.amount)
    total = sum((line.quantity * line.unit_price for line in invoice.lines), Decimal(0))
    if 0 < total < smallest:
        # Certified, it would come to 0 and still spend a number (an FNE sticker).
        field = "lines[0].unit_price" if len(invoice.lines) == 1 else "lines"
        problems.append(
            Problem(
                field,
                "currency_precision",
                f"the invoice comes to {format(total, 'f')} {invoice.currency}, less than the currency's "
                f"smallest unit ({format(smallest, 'f')}): it would be certified as 0",
            )
        )
    for k, payment in enumerate(invoice.payments):
        amount(f"payments[{k}].amount", payment.amount)
    return problems
