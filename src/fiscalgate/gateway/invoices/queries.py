"""Reading invoices: one by id (within its tenant), a filtered list, and the API's view of a row."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from fiscalgate.gateway.api.pagination import Keyset, paginate
from fiscalgate.gateway.errors import NotFound
from fiscalgate.gateway.invoices import lifecycle
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.schemas import CertificationOut, InvoiceFilter, InvoiceOut


def _present(value: Any) -> Any:
    """None for an empty value (text, object): the API answers null for what is absent. Lists
    stay lists (empty when there is nothing to list)."""
    return None if value in ("", {}) else value


def certification_out(stored: dict[str, Any] | None, raw_response: Any = None) -> CertificationOut | None:
    """The stored certification (a `Certification` in JSON mode), in the answers' conventions.
    The one place where an authority's empty fields become null (the raw answer's included).
    A certification recorded from an authority's answer is stored without its `raw`, which is the
    invoice's `raw_response` (the answer is stored once); older rows and references recorded by
    hand keep theirs inside."""
    if stored is None:
        return None
    fields = {k: _present(v) for k, v in stored.items() if k in CertificationOut.model_fields}
    if "raw" not in stored:
        fields["raw"] = _present(raw_response) if isinstance(raw_response, dict) else None
    fields["notices"] = stored.get("notices") or []
    return CertificationOut.model_validate(fields)


def invoice_out(row: InvoiceRow) -> InvoiceOut:
    detail = row.status_detail
    if lifecycle.is_stale(row):
        detail = f"stale: no outcome past its claim's expiry; {lifecycle.STALE_DETAIL} (it may be certified)"
    return InvoiceOut(
        id=row.id,
        authority=row.authority,
        number=row.number,
        kind=row.kind,
        status=row.status,
        status_detail=_present(detail),
        original_id=row.original_id,
        environment=_present(row.environment),
        reference=_present(row.reference),
        certification=certification_out(row.certification, row.raw_response),
        certified_at=row.certified_at,
        error=_present(row.error),
        raw_response=_present(row.raw_response) if row.raw_response != [] else None,
        checkpoint=_present(row.checkpoint),
        attempts=row.attempts,
        invoice=row.document,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def get_invoice(session: Session, tenant_id: str, invoice_id: str) -> InvoiceRow:
    row = session.get(InvoiceRow, invoice_id, populate_existing=True)
    if row is None or row.tenant_id != tenant_id:
        # Another tenant's invoice is "not found", never "forbidden": ids must not leak.
        raise NotFound(f"no invoice {invoice_id}", code="invoice.not_found")
    return row


def invoice_view(session: Session, tenant_id: str, invoice_id: str) -> InvoiceOut:
    return invoice_out(get_invoice(session, tenant_id, invoice_id))


def invoice_status(session: Session, tenant_id: str, invoice_id: str) -> str:
    return get_invoice(session, tenant_id, invoice_id).status


ORDER = Keyset(InvoiceRow.created_at, InvoiceRow.id)  # newest first


def list_invoices(
    session: Session, tenant_id: str, f: InvoiceFilter
) -> tuple[list[InvoiceRow], int, str | None]:
    """A page of the tenant's invoices matching `f`, newest first: (rows, total, next cursor)."""
    where: list[ColumnElement[bool]] = [InvoiceRow.tenant_id == tenant_id]
    if f.status:
        where.append(InvoiceRow.status == f.status)
    if f.authority:
        where.append(InvoiceRow.authority == f.authority)  # already a code (InvoiceFilter)
    if f.kind:
        where.append(InvoiceRow.kind == f.kind)
    if f.number:
        where.append(InvoiceRow.number == f.number)
    if f.original_id:
        where.append(InvoiceRow.original_id == f.original_id)
    if f.created_after:
        where.append(InvoiceRow.created_at >= f.created_after)
    if f.created_before:
        where.append(InvoiceRow.created_at < f.created_before)
    return paginate(session, InvoiceRow, where, f, ORDER)
