from decimal import Decimal

import pytest

from fiscalgate.core.errors import InvoiceError
from fiscalgate.core.invoice import InvoiceKind, InvoiceLine, parse_invoice

BASE = {
    "number": "F-2026-001",
    "seller": {"name": "ACME CI", "tax_id": "9502363N"},
    "buyer": {"kind": "business", "name": "KPMG", "tax_id": "9606123E"},
    "lines": [
        {
            "description": "sac de riz",
            "quantity": "30",
            "unit_price": "20000",
            "discount": {"kind": "percent", "value": "10"},
        }
    ],
}


def test_parse_valid_invoice_keeps_decimals() -> None:
    invoice = parse_invoice(BASE)
    assert invoice.kind is InvoiceKind.SALE
    line = invoice.lines[0]
    assert line.quantity == Decimal(30)
    assert line.gross == Decimal(600000)
    assert line.discount_amount == Decimal(60000)


def test_parse_json_text() -> None:
    line = '{"description":"a","quantity":1.5,"unit_price":9.1}'
    text = '{"number":"X","seller":{"name":"S"},"lines":[' + line + "]}"
    invoice = parse_invoice(text)
    assert invoice.lines[0].unit_price == Decimal("9.1")


def test_every_problem_is_listed_with_its_path() -> None:
    bad = {**BASE, "lines": [{"description": "", "quantity": "0", "unit_price": "-1"}], "currency": "xof"}
    with pytest.raises(InvoiceError) as caught:
        parse_invoice(bad)
    fields = {p.field for p in caught.value.problems}
    assert {"lines[0].description", "lines[0].quantity", "lines[0].unit_price", "currency"} <= fields
    assert caught.value.code.startswith("invoice.invalid.")


def test_credit_note_needs_original() -> None:
    with pytest.raises(InvoiceError, match="original"):
        parse_invoice({**BASE, "kind": "credit_note"})
    note = parse_invoice({**BASE, "kind": "credit_note", "original": {"reference": "9606123E25000000019"}})
    assert note.original is not None


def test_unknown_field_is_refused() -> None:
    with pytest.raises(InvoiceError) as caught:
        parse_invoice({**BASE, "colour": "blue"})
    assert caught.value.problems[0].field == "colour"


def test_line_discount_amount_and_percent_derived() -> None:
    line = InvoiceLine.model_validate(
        {"description": "x", "quantity": 2, "unit_price": 100, "discount": {"kind": "amount", "value": 50}}
    )
    assert line.discount_amount == Decimal(50)
    assert line.discount_percent == Decimal(25)
    whole = InvoiceLine.model_validate({**line.model_dump(), "discount": {"kind": "amount", "value": 200}})
    assert whole.discount_percent == Decimal(100)


def test_amount_discount_larger_than_the_line_is_refused() -> None:
    lines = [
        {
            "description": "x",
            "quantity": "2",
            "unit_price": "100",
            "discount": {"kind": "amount", "value": "500"},
        }
    ]
    with pytest.raises(InvoiceError) as caught:
        parse_invoice({**BASE, "lines": lines})
    problem = caught.value.problems[0]
    assert problem.field == "lines[0]"
    assert "exceeds the line amount (2 x 100 = 200)" in problem.message


def test_percent_discount_over_100_refused() -> None:
    with pytest.raises(InvoiceError, match="exceed 100"):
        parse_invoice({**BASE, "discount": {"kind": "percent", "value": 101}})


def test_extra_tax_needs_rate_or_amount() -> None:
    lines = [{**BASE["lines"][0], "extra_taxes": [{"name": "GRA"}]}]  # type: ignore[dict-item]
    with pytest.raises(InvoiceError, match="exactly one of rate"):
        parse_invoice({**BASE, "lines": lines})


def test_foreign_currency_needs_rate() -> None:
    with pytest.raises(InvoiceError, match="go together"):
        parse_invoice({**BASE, "foreign_currency": "EUR"})


def test_naive_datetime_refused() -> None:
    with pytest.raises(InvoiceError) as caught:
        parse_invoice({**BASE, "issued_at": "2026-11-21T10:00:00"})
    assert caught.value.problems[0].field == "issued_at"
