from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from fiscalgate.core.money import minor_units, percent_of, round_money, to_decimal, wire_number


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("3102.5", "XOF", "3103"),  # FNE prints halves rounded up (ci_fne/SOURCES.md §8.5)
        ("53527.5", "XOF", "53528"),
        ("-0.5", "XAF", "-1"),
        ("10.005", "USD", "10.01"),
        ("10.004", "EUR", "10.00"),
    ],
    ids=["fne-vat-half", "fne-custom-tax-half", "negative-half", "usd-cents-up", "eur-cents-down"],
)
def test_round_money_half_up_by_currency(amount: str, currency: str, expected: str) -> None:
    assert round_money(Decimal(amount), currency) == Decimal(expected)


def test_round_money_accepts_another_rule() -> None:
    assert round_money(Decimal("2.5"), "XOF", ROUND_HALF_EVEN) == Decimal(2)


def test_minor_units() -> None:
    assert (minor_units("xof"), minor_units("XAF"), minor_units("USD"), minor_units("ZZZ")) == (0, 0, 2, 2)


def test_to_decimal_is_exact_and_strict() -> None:
    assert to_decimal("1077.275") == Decimal("1077.275")
    assert to_decimal(0.1) == Decimal("0.1")
    assert to_decimal(7) == Decimal(7)
    with pytest.raises(ValueError, match="not a number"):
        to_decimal("12,5")
    with pytest.raises(ValueError, match="finite"):
        to_decimal("NaN")
    with pytest.raises(TypeError):
        to_decimal(True)


def test_percent_and_wire_number() -> None:
    assert percent_of(Decimal(3568500), Decimal("1.5")) == Decimal("53527.5")
    assert wire_number(Decimal("20000.00")) == 20000
    assert isinstance(wire_number(Decimal("20000.00")), int)
    assert wire_number(Decimal("1077.2750")) == Decimal("1077.275")
