"""Pure e-MECeF rules: tax groups and rates, invoice and payment types, id formats, the token's
claims, the rounding rule (SOURCES.md §7, §8, §10, §11); the e-MCF's tax computation is in
totals.py.

Rounding: every amount is a whole franc, rounded to the nearest, halves UP. The spec leaves the tie
rule open (§15.1: .NET `Math.Round` would round halves to even). Ties can only occur for the AIB
(e.g. a base ending in 50 at 1 %) and for fractional price x quantity; none has been observed live,
so no source decides it: half-up is our choice (the usual commercial rule). If the e-MCF turns out
to round halves to even, the totals comparison catches the difference and the request is cancelled,
never confirmed with totals we did not compute. The tests pin the choice on both sides.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

AUTHORITY = "bj-emecef"

# Every server time is Bénin local time (WAT, UTC+01:00, no daylight saving), spec §2.
BENIN_TZ = timezone(timedelta(hours=1), "WAT")


class TaxGroup(StrEnum):
    A = "A"  # EXO: exempt
    B = "B"  # TAX: taxable, VAT 18 %
    C = "C"  # EXP: export of taxable goods (EV/EA)
    D = "D"  # MP: VAT "régime d'exception", 18 %, reported apart (had/vad)
    E = "E"  # TPS: seller under the taxe professionnelle synthétique, no VAT
    F = "F"  # RES: reserved


# Rates in % (GET /api/info/taxGroups, DOC p.21, identical on the live test platform).
GROUP_RATES: dict[TaxGroup, Decimal] = {
    TaxGroup.A: Decimal(0),
    TaxGroup.B: Decimal(18),
    TaxGroup.C: Decimal(0),
    TaxGroup.D: Decimal(18),
    TaxGroup.E: Decimal(0),
    TaxGroup.F: Decimal(0),
}
# Groups whose HT and VAT the e-MCF reports (hab/vab, had/vad).
VAT_GROUPS = (TaxGroup.B, TaxGroup.D)


class Aib(StrEnum):
    A = "A"  # 1 %
    B = "B"  # 5 %


AIB_RATES: dict[Aib, Decimal] = {Aib.A: Decimal(1), Aib.B: Decimal(5)}


class InvoiceType(StrEnum):
    FV = "FV"  # facture de vente
    FA = "FA"  # facture d'avoir (credit note of an FV)
    EV = "EV"  # facture de vente à l'exportation
    EA = "EA"  # facture d'avoir à l'exportation (credit note of an EV)


INVOICE_TYPE_LABELS: dict[InvoiceType, str] = {
    InvoiceType.FV: "Facture de vente",
    InvoiceType.FA: "Facture d'avoir",
    InvoiceType.EV: "Facture de vente à l'exportation",
    InvoiceType.EA: "Facture d'avoir à l'exportation",
}
# The type a credit note must point at (spec §9).
CREDITED_TYPE: dict[InvoiceType, InvoiceType] = {
    InvoiceType.FA: InvoiceType.FV,
    InvoiceType.EA: InvoiceType.EV,
}
CREDIT_TYPES = frozenset(CREDITED_TYPE)


class PaymentType(StrEnum):
    ESPECES = "ESPECES"
    VIREMENT = "VIREMENT"
    CARTEBANCAIRE = "CARTEBANCAIRE"
    MOBILEMONEY = "MOBILEMONEY"
    CHEQUES = "CHEQUES"
    CREDIT = "CREDIT"
    AUTRE = "AUTRE"


# --- identifiers (spec §1, §10) ------------------------------------------------------------------
IFU_RE = re.compile(r"^\d{13}$")
NIM_RE = re.compile(r"^[A-Z]{2}\d{8}$")
TEST_NIM_PREFIX = "TS"  # every test-platform NIM seen (§10)
CODE_RE = re.compile(r"^[A-Z2-7]{24}$")  # RFC 4648 base32 alphabet
DASHED_CODE_RE = re.compile(r"^[A-Z2-7]{4}(-[A-Z2-7]{4}){5}$")
COUNTERS_RE = re.compile(r"^(\d+)/(\d+) (FV|FA|EV|EA)$")
DATETIME_FORMAT = "%d/%m/%Y %H:%M:%S"  # SecurityElementsDto.dateTime


def undash_code(code: str) -> str:
    """`TEST-WZK2-KC5G-C5YW-HB23-KB7G` -> `TESTWZK2KC5GC5YWHB23KB7G` (what `reference` and the QR use)."""
    return code.replace("-", "").strip().upper()


def dash_code(code: str) -> str:
    """The printed form: six groups of four joined by dashes (29 characters)."""
    raw = undash_code(code)
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def parse_counters(counters: str) -> tuple[int, int, str] | None:
    """`"4/155 FA"` -> (4, 155, "FA"): rank among this type, rank among all invoices, type."""
    match = COUNTERS_RE.match(counters.strip())
    if match is None:
        return None
    return int(match[1]), int(match[2]), match[3]


def parse_local_datetime(value: str) -> datetime:
    """`"23/11/2020 13:17:08"` (Bénin time) -> an aware datetime at +01:00."""
    return datetime.strptime(value.strip(), DATETIME_FORMAT).replace(tzinfo=BENIN_TZ)


# --- the token (spec §11) ------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenClaims:
    ifu: str
    nim: str
    expires_at: datetime  # aware, UTC
    raw: Mapping[str, Any]


class TokenFormatError(ValueError):
    pass


def read_token(token: str) -> TokenClaims:
    """The IFU, NIM and expiry the DGI bound into an e-MCF token, read WITHOUT checking the signature
    (only the DGI knows its key; we read the claims to catch a token pasted for the wrong taxpayer)."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise TokenFormatError("the token is not a JWT (expected three dot-separated parts)")
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError) as exc:
        raise TokenFormatError("the token's payload is not base64url-encoded JSON") from exc
    if not isinstance(claims, dict):
        raise TokenFormatError("the token's payload is not a JSON object")
    unique_name = claims.get("unique_name")
    if not isinstance(unique_name, str) or unique_name.count("|") != 1:
        raise TokenFormatError("the token has no `unique_name` claim of the form IFU|NIM")
    ifu, nim = (part.strip() for part in unique_name.split("|"))
    if not IFU_RE.match(ifu) or not NIM_RE.match(nim):
        raise TokenFormatError(f"the token's unique_name {unique_name!r} is not IFU (13 digits)|NIM")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise TokenFormatError("the token has no numeric `exp` (expiry) claim")
    return TokenClaims(ifu=ifu, nim=nim, expires_at=datetime.fromtimestamp(exp, tz=UTC), raw=claims)


# --- the e-MCF computation (spec §8) -------------------------------------------------------------
def round_franc(amount: Decimal) -> Decimal:
    """Nearest whole franc, halves up (see the module docstring for the open question)."""
    return amount.quantize(Decimal(1), rounding=ROUND_HALF_UP)


# The totals the POST answer carries, in wire names; `ta..td` are rates, the rest francs.
TOTAL_FIELDS = (
    "taa",
    "tab",
    "tac",
    "tad",
    "tae",
    "taf",
    "hab",
    "had",
    "vab",
    "vad",
    "aib",
    "ts",
    "total",
)
RATE_FIELDS = ("ta", "tb", "tc", "td")
