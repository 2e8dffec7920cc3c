"""Credit notes: built from their certified original, line by line, never beyond what is left."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from fiscalgate.authorities import descriptor
from fiscalgate.core.errors import InvoiceError, Problem
from fiscalgate.core.invoice import Invoice, InvoiceKind
from fiscalgate.gateway.db import utcnow
from fiscalgate.gateway.errors import Conflict
from fiscalgate.gateway.invoices.editing import insert_invoice, parse_body
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.queries import get_invoice
from fiscalgate.gateway.invoices.schemas import CreditNoteCreate
from fiscalgate.gateway.tenants.service import Caller


def credited_so_far(session: Session, original_id: str) -> dict[int, Decimal]:
    credited: dict[int, Decimal] = {}
    rows = session.scalars(
        select(InvoiceRow).where(InvoiceRow.original_id == original_id, InvoiceRow.status != "rejected")
    )
    for row in rows:
        for line in Invoice.model_validate(row.document).lines:
            if line.original_line is not None:
                credited[line.original_line] = credited.get(line.original_line, Decimal(0)) + line.quantity
    return credited


def build_credit_note(
    original: Invoice, reference: str | None, body: CreditNoteCreate, credited: dict[int, Decimal]
) -> Invoice:
    """The neutral credit note for `body.lines` of `original` (all that is left when omitted)."""
    requested = body.lines
    wanted: list[tuple[int, Decimal | None]]
    if requested is None:
        wanted = [(i, None) for i in range(1, len(original.lines) + 1)]
    else:
        wanted = [(line.original_line, line.quantity) for line in requested]
    problems: list[Problem] = []
    lines: list[dict[str, Any]] = []
    seen: set[int] = set()
    for pos, (index, quantity) in enumerate(wanted):
        where = f"lines[{pos}]"
        if index > len(original.lines):
            problems.append(
                Problem(
                    f"{where}.original_line", "out_of_range", f"the original has {len(original.lines)} lines"
                )
            )
            continue
        if index in seen:
            problems.append(Problem(f"{where}.original_line", "duplicate", f"line {index} is listed twice"))
            continue
        seen.add(index)
        source = original.lines[index - 1]
        left = source.quantity - credited.get(index, Decimal(0))
        qty = left if quantity is None else quantity
        if left <= 0:
            if requested is not None:
                problems.append(
                    Problem(f"{where}.quantity", "already_credited", f"line {index} is fully credited")
                )
            continue
        if qty > left:
            problems.append(
                Problem(
                    f"{where}.quantity",
                    "exceeds_original",
                    f"only {left} of line {index} is left to credit",
                    expected=f"<= {left}",
                )
            )
            continue
        line = source.model_dump(mode="json", exclude_none=True)
        line["quantity"] = str(qty)
        line["original_line"] = index
        if source.discount is not None and source.discount.kind == "amount":
            # An amount discount applies to the whole line: credit its share.
            line["discount"] = {"kind": "amount", "value": str(source.discount.value * qty / source.quantity)}
        lines.append(line)
    if not lines and not problems:
        problems.append(
            Problem("lines", "nothing_to_credit", "every line of the original is already credited")
        )
    if problems:
        raise InvoiceError(problems)
    doc = original.model_dump(mode="json", exclude_none=True)
    doc.update(
        number=body.number,
        kind=InvoiceKind.CREDIT_NOTE.value,
        lines=lines,
        original={"number": original.number, **({"reference": reference} if reference else {})},
        issued_at=(body.issued_at or utcnow()).isoformat(),
        # The original's payment amounts do not apply to a part of it; keep how it was paid.
        payments=[{"method": p.method.value} for p in original.payments[:1]],
    )
    doc.pop("due_date", None)
    if original.discount is not None and original.discount.kind == "amount":
        share = sum(
            (Decimal(line["quantity"]) * Decimal(str(line["unit_price"])) for line in lines), Decimal(0)
        )
        total = sum((li.gross for li in original.lines), Decimal(0))
        doc["discount"] = {
            "kind": "amount",
            "value": str(original.discount.value * share / total) if total else "0",
        }
    if body.reason:
        doc["notes"] = body.reason
    return parse_body(doc)


_LOCK_INVOICE = (
    select(InvoiceRow.id)
    .where(InvoiceRow.id == bindparam("invoice_id"), InvoiceRow.tenant_id == bindparam("p_tenant_id"))
    .with_for_update()
)


def create_credit_note(
    session: Session, caller: Caller, tenant_id: str, original_id: str, body: CreditNoteCreate
) -> InvoiceRow:
    # Lock the original first: two concurrent credit notes would otherwise both read "nothing
    # credited yet" (PostgreSQL, READ COMMITTED). SQLite's BEGIN IMMEDIATE already serialises.
    session.execute(_LOCK_INVOICE, {"invoice_id": original_id, "p_tenant_id": tenant_id})
    original = get_invoice(session, tenant_id, original_id)
    if original.kind == InvoiceKind.CREDIT_NOTE.value:
        raise Conflict("a credit note cannot itself be credited", code="credit_note.of_credit_note")
    if original.status != "certified" or original.certification is None:
        raise Conflict(
            f"only a certified invoice can be credited; invoice {original_id} is {original.status!r}",
            code="credit_note.original_not_certified",
        )
    # Refused here rather than by the platform later (the descriptor's credit-note rules).
    if descriptor(original.authority).credit_notes.one_per_invoice:
        existing = session.scalar(
            select(InvoiceRow.number).where(
                InvoiceRow.original_id == original_id, InvoiceRow.status != "rejected"
            )
        )
        if existing is not None:
            raise Conflict(
                f"{original.authority} accepts one credit note per invoice and {existing} already credits it",
                code="credit_note.one_per_invoice",
            )
    credit = build_credit_note(
        Invoice.model_validate(original.document),
        original.reference,
        body,
        credited_so_far(session, original_id),
    )
    row = insert_invoice(
        session,
        caller,
        tenant_id,
        original.authority,
        credit,
        original.id,
        "approved" if body.approve else "draft",
    )
    return row
