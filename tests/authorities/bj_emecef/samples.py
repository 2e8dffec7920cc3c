"""Neutral invoices used across the e-MECeF tests."""

from __future__ import annotations

from typing import Any

from fiscalgate.core.invoice import Invoice, parse_invoice


def official_example(aib: str | None = None, **extra: Any) -> Invoice:
    """The PDF's worked example (p.12–13): orange juice 1800 x 2 in B, milk 450 x 3 in A."""
    data: dict[str, Any] = {
        "number": "F-001",
        "seller": {"name": "Boutique Test"},
        "buyer": {
            "name": "Nom du client",
            "tax_id": "9999900000002",
            "kind": "business",
            "phone": "45661122",
        },
        "operator": {"name": "Jacques"},
        "lines": [
            {
                "description": "Jus d'orange",
                "quantity": "2",
                "unit_price": "1800",
                "price_includes_tax": True,
            },
            {
                "description": "Lait 1/1 EX",
                "quantity": "3",
                "unit_price": "450",
                "price_includes_tax": True,
                "tax_category": "exempt",
            },
        ],
        "payments": [{"method": "cash"}],
        "authority_options": {"bj-emecef": {"aib": aib}},
    }
    data.update(extra)
    return parse_invoice(data)


def credit_note(lines: list[dict[str, Any]], aib: str | None = None, **extra: Any) -> Invoice:
    data: dict[str, Any] = {
        "number": "AV-001",
        "kind": "credit_note",
        "original": {"number": "F-001"},
        "seller": {"name": "Boutique Test"},
        "operator": {"name": "Jacques"},
        "lines": lines,
        "authority_options": {"bj-emecef": {"aib": aib}},
    }
    data.update(extra)
    return parse_invoice(data)


JUICE = {"description": "Jus d'orange", "quantity": "1", "unit_price": "1800", "price_includes_tax": True}
