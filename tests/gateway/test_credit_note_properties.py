"""Property: whatever partial credit notes came before, no line is ever credited beyond its
quantity, and a "full" credit note takes exactly what is left."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from fiscalgate.core.errors import InvoiceError
from fiscalgate.core.invoice import Invoice
from fiscalgate.gateway.invoices.credit_notes import build_credit_note
from fiscalgate.gateway.invoices.schemas import CreditLine, CreditNoteCreate

quantities = st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=5)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[int], list[list[tuple[int, int]]]]:
    qty = draw(quantities)
    requests = draw(
        st.lists(
            st.lists(st.tuples(st.integers(1, len(qty)), st.integers(1, 25)), min_size=1, max_size=3),
            max_size=4,
        )
    )
    return qty, requests


@settings(max_examples=150, deadline=None)
@given(scenario())
def test_credited_quantities_never_exceed_the_original(
    case: tuple[list[int], list[list[tuple[int, int]]]],
) -> None:
    qty, requests = case
    original = Invoice.model_validate(
        {
            "number": "F-1",
            "seller": {"name": "S"},
            "lines": [
                {"description": f"l{i}", "quantity": str(q), "unit_price": "100"} for i, q in enumerate(qty)
            ],
        }
    )
    credited: dict[int, Decimal] = {}
    for n, request in enumerate(requests):
        lines = [CreditLine(original_line=pos, quantity=Decimal(q)) for pos, q in request]
        try:
            credit = build_credit_note(
                original, "R", CreditNoteCreate(number=f"AV-{n}", lines=lines), credited
            )
        except InvoiceError as exc:
            positions = [pos for pos, _ in request]
            over = any(
                Decimal(q) > qty[pos - 1] - credited.get(pos, Decimal(0)) for pos, q in request
            ) or len(set(positions)) != len(positions)
            assert over, exc.problems  # refused only when it had to be
            continue
        for line in credit.lines:
            assert line.original_line is not None
            credited[line.original_line] = credited.get(line.original_line, Decimal(0)) + line.quantity
            assert credited[line.original_line] <= qty[line.original_line - 1]

    left = {i + 1: q - credited.get(i + 1, Decimal(0)) for i, q in enumerate(qty)}
    if any(v > 0 for v in left.values()):
        full = build_credit_note(original, "R", CreditNoteCreate(number="AV-full"), credited)
        assert {line.original_line: line.quantity for line in full.lines} == {
            k: v for k, v in left.items() if v > 0
        }
    else:
        try:
            build_credit_note(original, "R", CreditNoteCreate(number="AV-full"), credited)
        except InvoiceError as exc:
            assert exc.problems[0].rule == "nothing_to_credit"
        else:
            raise AssertionError("a fully credited invoice was credited again")
