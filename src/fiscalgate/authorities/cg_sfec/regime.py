"""The Congolese tax rules SFEC carries, as pure data and functions.

Sources: SOURCES.md §0, §3, §5, §7; the online-report page (docs.sfec.gouv.cg/online-report).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from fiscalgate.core.invoice import BuyerKind, InvoiceKind, PaymentMethod, TaxCategory
from fiscalgate.core.money import minor_units, round_to

AUTHORITY: Final = "cg-sfec"

# VAT rates as the wire spells them (`tax_rate` is a string, spec §3): T = taux normal 18 %,
# R = taux réduit 5 %, 0 = exempt (spec §0, two independent implementations + Congo's VAT schedule).
RATE_NORMAL: Final = "18"
RATE_REDUCED: Final = "5"
RATE_EXEMPT: Final = "0"
RATES: Final[dict[str, Decimal]] = {
    RATE_NORMAL: Decimal(18),
    RATE_REDUCED: Decimal(5),
    RATE_EXEMPT: Decimal(0),
}

# Centimes additionnels: 5 % of the VAT amount (spec §5.11; VAT 180 -> 9, VAT 18 000 -> 900).
# Decision: it applies to the whole VAT, 18 % and 5 % alike, since it is a surcharge on VAT.
ADDITIONAL_CENT_RATE: Final = Decimal(5)

CATEGORY_RATE: Final[dict[TaxCategory, str]] = {
    TaxCategory.STANDARD: RATE_NORMAL,
    TaxCategory.SPECIAL: RATE_NORMAL,
    TaxCategory.REDUCED: RATE_REDUCED,
    TaxCategory.EXEMPT: RATE_EXEMPT,
    TaxCategory.EXEMPT_LEGAL: RATE_EXEMPT,
    TaxCategory.EXPORT: RATE_EXEMPT,
}

CURRENCIES: Final = ("XAF", "USD")  # the online-report page, `currency`

# The platform accepts at most 2 decimals in an amount (the seed's own example: 2390.4 XAF).
MAX_AMOUNT_DECIMALS: Final = 2

INVOICE_TYPES: Final[dict[InvoiceKind, str]] = {
    InvoiceKind.SALE: "salesInvoice",
    InvoiceKind.CREDIT_NOTE: "creditNote",
}

RECIPIENT_TYPES: Final = ("business", "individual", "government", "foreign")
# The seed (online-report) reads the numeric codes as 1 = Entreprise, 2 = Particulier; the
# tcc-report page reverses them (spec §6.1). We send strings; when reading we follow the seed.
RECIPIENT_NUMERIC: Final[dict[str, str]] = {"1": "business", "2": "individual"}
RECIPIENT_KIND: Final[dict[BuyerKind, str]] = {k: k.value for k in BuyerKind}

# Strings used by every client (spec §3) versus the seed's numeric codes 1..4.
PAYMENT_METHODS: Final = ("bank_transfer", "card", "cash", "mobile_money", "cheque")
PAYMENT_NUMERIC: Final[dict[str, str]] = {"1": "bank_transfer", "2": "card", "3": "cash", "4": "mobile_money"}
PAYMENT_FROM_NEUTRAL: Final[dict[PaymentMethod, str]] = {
    PaymentMethod.TRANSFER: "bank_transfer",
    PaymentMethod.CARD: "card",
    PaymentMethod.CASH: "cash",
    PaymentMethod.MOBILE_MONEY: "mobile_money",
    PaymentMethod.CHECK: "cheque",
}

# NIU: a letter then digits, optionally a trailing letter, 20 characters at most (the online-report page:
# "max 20 caractères"; examples P000001212112130 in /auth, M25000000561080T in the seed).
NIU_PATTERN: Final = re.compile(r"^[A-Z][0-9]{8,17}[A-Z]?$")
# Implementers use +242 then 0[456] and 7 digits (spec §3), but foreign recipients have other
# numbers: only the general shape of a phone number is checked.
PHONE_PATTERN: Final = re.compile(r"^\+?[0-9 ()-]{6,20}$")
EMAIL_PATTERN: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def decimals_for(currency: str) -> int:
    """Rounding precision: whole francs for XAF (no minor unit in practice, spec §5 "Rounding"),
    cents for USD."""
    return minor_units(currency)


def round_amount(amount: Decimal, currency: str) -> Decimal:
    """Half-up to the currency's unit, applied per line then summed (spec §5 "Rounding")."""
    return round_to(amount, decimals_for(currency), ROUND_HALF_UP)


def is_valid_niu(value: str) -> bool:
    return bool(NIU_PATTERN.match(value.strip().upper()))


def rate_for(category: TaxCategory, tax_code: str | None, *, seller_without_vat: bool) -> str | None:
    """The wire `tax_rate` of a line, or None when `tax_code` is not an SFEC rate."""
    if tax_code is not None:
        code = tax_code.strip().removesuffix("%").strip()
        aliases = {"T": RATE_NORMAL, "R": RATE_REDUCED, "E": RATE_EXEMPT}
        code = aliases.get(code.upper(), code)
        return code if code in RATES else None
    if seller_without_vat:
        return RATE_EXEMPT
    return CATEGORY_RATE[category]
