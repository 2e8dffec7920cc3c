"""Money as `Decimal`, with per-currency rounding.

XOF (Côte d'Ivoire, Bénin) and XAF (Congo) have no minor unit: amounts are whole francs.
Rounding defaults to half-up, which is what the FNE prints (17 236.4 x 18 % = 3 102.5 -> 3 103,
ci_fne/SOURCES.md §8.5). An authority with another rule passes its own `rounding`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor units of the currencies the three authorities accept.
MINOR_UNITS: dict[str, int] = {
    "XOF": 0,
    "XAF": 0,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "CAD": 2,
    "AUD": 2,
    "CHF": 2,
    "CNH": 2,
    "CNY": 2,
    "HKD": 2,
    "NZD": 2,
    "JPY": 0,
}

ZERO = Decimal(0)
ONE_HUNDRED = Decimal(100)


def minor_units(currency: str) -> int:
    """Number of decimals of `currency`; unknown currencies get 2 (the ISO default)."""
    return MINOR_UNITS.get(currency.upper(), 2)


def quantum(decimals: int) -> Decimal:
    return Decimal(1).scaleb(-decimals)


def round_to(amount: Decimal, decimals: int, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round `amount` to `decimals` places (0 = whole units)."""
    return amount.quantize(quantum(decimals), rounding=rounding)


def round_money(amount: Decimal, currency: str, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round `amount` to the minor unit of `currency` (whole francs for XOF/XAF)."""
    return round_to(amount, minor_units(currency), rounding)


def to_decimal(value: object) -> Decimal:
    """Exact conversion of an int, str or Decimal. Floats go through their shortest repr."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError("a boolean is not an amount")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:
            raise ValueError(f"{value!r} is not a number") from exc
        if not result.is_finite():
            raise ValueError(f"{value!r} is not a finite number")
        return result
    raise TypeError(f"cannot read an amount from {type(value).__name__}")


def percent_of(amount: Decimal, rate_percent: Decimal) -> Decimal:
    """`rate_percent` % of `amount`, unrounded."""
    return amount * rate_percent / ONE_HUNDRED


def wire_number(amount: Decimal) -> int | Decimal:
    """A JSON-friendly number: an int when whole, otherwise the Decimal without trailing zeros."""
    if amount == amount.to_integral_value():
        return int(amount)
    return amount.normalize()
