"""FNE tax regime, pure: VAT codes and rates, enumerations, rounding, id formats.

Source: DGI « Procédure d'interfaçage des entreprises par API », May 2025, Annex 1 (SOURCES.md §5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from fiscalgate.core.invoice import BuyerKind, PaymentMethod, SellerRegime, TaxCategory

AUTHORITY = "ci-fne"
CURRENCY = "XOF"

# VAT code -> rate in %. TVAE appears only in one integrator's probe message (spec §5): not accepted.
VAT_RATES: dict[str, Decimal] = {
    "TVA": Decimal(18),
    "TVAB": Decimal(9),
    "TVAC": Decimal(0),  # conventional exemption
    "TVAD": Decimal(0),  # legal exemption (TEE / RME taxpayers)
}

# What the platform prints for each code (spec §5; TVAB's label is inferred from the letter pattern).
VAT_LABELS: dict[str, str] = {
    "TVA": "TVA normal - TVA sur HT 18,00% - A",
    "TVAB": "TVA réduite - TVA sur HT 09,00% - B",
    "TVAC": "TVA exo.conv - TVA sur HT 00,00% - C",
    "TVAD": "TVA exo.lég - Pas de TVA sur HT 00,00% - D",
}

# The intended map of core.invoice.TaxCategory (see its docstring).
CATEGORY_CODES: dict[TaxCategory, str] = {
    TaxCategory.STANDARD: "TVA",
    TaxCategory.REDUCED: "TVAB",
    TaxCategory.EXEMPT: "TVAC",
    TaxCategory.EXEMPT_LEGAL: "TVAD",
    TaxCategory.EXPORT: "TVAC",
    TaxCategory.SPECIAL: "TVA",
}
# A seller without VAT (TEE/RME, "tps" in the neutral model) certifies every line under TVAD.
NO_VAT_REGIME_CODE: dict[SellerRegime, str] = {SellerRegime.TPS: "TVAD"}

TEMPLATES = ("B2B", "B2C", "B2G", "B2F")
TEMPLATE_BY_BUYER: dict[BuyerKind, str] = {
    BuyerKind.BUSINESS: "B2B",
    BuyerKind.INDIVIDUAL: "B2C",
    BuyerKind.GOVERNMENT: "B2G",
    BuyerKind.FOREIGN: "B2F",
}

PAYMENT_METHODS = ("cash", "card", "check", "mobile-money", "transfer", "deferred")
# Neutral -> FNE; the neutral "other" has no FNE equivalent. Note `transfer`, not `bank-transfer`.
PAYMENT_BY_METHOD: dict[PaymentMethod, str] = {
    PaymentMethod.CASH: "cash",
    PaymentMethod.CARD: "card",
    PaymentMethod.CHECK: "check",
    PaymentMethod.MOBILE_MONEY: "mobile-money",
    PaymentMethod.TRANSFER: "transfer",
    PaymentMethod.DEFERRED: "deferred",
}

FOREIGN_CURRENCIES = ("XOF", "USD", "EUR", "JPY", "CAD", "GBP", "AUD", "CNH", "CHF", "HKD", "NZD")

INVOICE_TYPES = ("sale", "purchase")

# NCC: 7 digits + 1 uppercase letter in every example (spec §6.1).
NCC_PATTERN = re.compile(r"^[0-9]{7}[A-Z]$")
# Reference formats (spec §8.4): sale = NCC + YY + 9 digits; credit note = "A" + NCC + YY + 8 digits.
SALE_REFERENCE = re.compile(r"^(?P<ncc>[0-9]{7}[A-Z])(?P<yy>[0-9]{2})(?P<seq>[0-9]{9})$")
CREDIT_REFERENCE = re.compile(r"^A(?P<ncc>[0-9]{7}[A-Z])(?P<yy>[0-9]{2})(?P<seq>[0-9]{8})$")

# Hosts (spec §2). Production is sent per taxpayer by the DGI, but integrators all use this one.
SANDBOX_BASE_URL = "http://54.247.95.108/ws"
SANDBOX_HOST = "54.247.95.108"
KNOWN_PRODUCTION_HOSTS = ("www.services.fne.dgi.gouv.ci", "services.fne.dgi.gouv.ci", "fne.dgi.gouv.ci")
MOCK_BASE_URL = "http://ci-fne.mock/ws"

# The platform answers with `warning: true` under an undocumented threshold; one SDK assumes 50.
DEFAULT_STICKER_WARNING_THRESHOLD = 50

# Discount percentages converted from amounts carry at most this many decimals on the wire.
PERCENT_DECIMALS = 8
# Unit prices converted from tax-inclusive prices carry at most this many decimals (spec §6.2 [OBS]:
# 4-decimal HT prices are accepted).
PRICE_DECIMALS = 4

ONE = Decimal(1)
HUNDRED = Decimal(100)


def round_franc(amount: Decimal) -> Decimal:
    """Whole francs, halves up: what real FNE PDFs print (spec §8.5: 53 527.5 -> 53 528,
    3 102.5 -> 3 103)."""
    return amount.quantize(ONE, rounding=ROUND_HALF_UP)


def is_ncc(value: str) -> bool:
    return bool(NCC_PATTERN.match(value))


@dataclass(frozen=True)
class ParsedReference:
    kind: str  # "sale" or "credit_note"
    ncc: str
    year: int  # two digits
    sequence: int


def parse_reference(reference: str) -> ParsedReference | None:
    """Split an FNE reference into its parts, or None when it has neither official shape."""
    for kind, pattern in (("sale", SALE_REFERENCE), ("credit_note", CREDIT_REFERENCE)):
        match = pattern.match(reference)
        if match:
            return ParsedReference(kind, match["ncc"], int(match["yy"]), int(match["seq"]))
    return None
