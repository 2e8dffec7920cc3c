"""Amounts every authority can carry: the currency's precision (XOF/XAF have no minor unit), a
magnitude the authorities' fields hold, one plain notation, and e-mail addresses that are ones."""

from __future__ import annotations

from typing import Any

import pytest

from fiscalgate.core.errors import InvoiceError
from fiscalgate.core.invoice import MAX_AMOUNT, parse_invoice


def invoice(currency: str = "XOF", **line: Any) -> dict[str, Any]:
    return {
        "number": "F-1",
        "currency": currency,
        "seller": {"name": "S"},
        "lines": [{"description": "Riz", "quantity": "1", "unit_price": "1000", **line}],
    }


def problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(InvoiceError) as info:
        parse_invoice(data)
    return [(p.field, p.rule) for p in info.value.problems]


@pytest.mark.parametrize("currency", ["XOF", "XAF"])
def test_a_tenth_of_a_franc_is_refused_with_its_field(currency: str) -> None:
    assert problems(invoice(currency, unit_price="0.1")) == [("lines[0].unit_price", "currency_precision")]
    data = invoice(currency)
    data["payments"] = [{"method": "cash", "amount": "1180.5"}]
    assert problems(data) == [("payments[0].amount", "currency_precision")]
    data = invoice(currency)
    data["lines"][0]["extra_taxes"] = [{"name": "Taxe", "amount": "0.5"}]
    assert problems(data) == [("lines[0].extra_taxes[0].amount", "currency_precision")]


def test_fractional_unit_prices_that_make_whole_amounts_are_kept() -> None:
    # FNE takes 4-decimal HT prices; 2.5 kg at 1077.275 is a normal line.
    parsed = parse_invoice(invoice(unit_price="1077.275", quantity="2.5"))
    assert str(parsed.lines[0].unit_price) == "1077.275"
    assert problems(invoice(unit_price="10.123456")) == [("lines[0].unit_price", "currency_precision")]
    # USD has cents: 0.10 USD is an amount.
    assert str(parse_invoice(invoice("USD", unit_price="0.10")).lines[0].unit_price) == "0.10"


def test_magnitudes_beyond_the_authorities_fields_are_refused() -> None:
    assert problems(invoice(unit_price=str(MAX_AMOUNT + 1))) == [("lines[0].unit_price", "less_than_equal")]
    assert problems(invoice(unit_price=str(MAX_AMOUNT), quantity="2")) == [("lines[0].quantity", "magnitude")]
    assert problems(invoice(quantity="1e12")) == [("lines[0].quantity", "less_than_equal")]


def test_amounts_are_kept_in_one_plain_notation() -> None:
    parsed = parse_invoice(invoice(unit_price="1E+3", quantity="2E0"))
    dumped = parsed.model_dump(mode="json")["lines"][0]
    assert (dumped["unit_price"], dumped["quantity"]) == ("1000", "2")
    assert "E" not in parsed.model_dump_json()


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "a b@c.ci", "@example.ci"])
def test_email_addresses_are_validated(email: str) -> None:
    data = invoice()
    data["buyer"] = {"name": "C", "email": email}
    with pytest.raises(InvoiceError) as info:
        parse_invoice(data)
    (problem,) = info.value.problems
    assert problem.field == "buyer.email" and "e-mail" in problem.message
    assert not problem.message.startswith("Value error")
    data["buyer"]["email"] = "client@example.ci"
    assert parse_invoice(data).buyer.email == "client@example.ci"
