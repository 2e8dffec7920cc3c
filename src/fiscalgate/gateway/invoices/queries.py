"""Reading invoices: one by id (within its tenant), a filtered list, and the API's view of a row."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from fiscalgate.gateway.authorities import authority_code
from fiscalgate.gateway.errors import NotFound
from fiscalgate.gateway.invoices import lifecycle
from fiscalgate.gateway.invoices.models import InvoiceRow
from fiscalgate.gateway.invoices.schemas import InvoiceFilter, InvoiceOut


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
        status_detail=detail,
        original_id=row.original_id,
        environment=row.environment,
        reference=row.reference,
        certification=row.certification,
        certified_at=row.certified_at,
        error=row.error,
        raw_response=row.raw_response,
        checkpoint=row.checkpoint,
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


def list_invoices(session: Session, tenant_id: str, f: InvoiceFilter) -> list[InvoiceRow]:
    query: Select[InvoiceRow] = select(InvoiceRow).where(InvoiceRow.tenant_id == tenant_id)
    if f.status:
        query = query.where(InvoiceRow.status == f.status)
    if f.authority:
        query = query.where(InvoiceRow.authority == authority_code(f.authority))
    if f.kind:
        query = query.where(InvoiceRow.kind == f.kind)
    if f.number:
        query = query.where(InvoiceRow.number == f.number)
    if f.original_id:
        query = query.where(InvoiceRow.original_id == f.original_id)
    if f.created_after:
        query = query.where(InvoiceRow.created_at >= f.created_after)
    if f.created_before:
        query = query.where(InvoiceRow.created_at < f.created_before)
    query = query.order_by(InvoiceRow.created_at.desc(), InvoiceRow.id).limit(f.limit).offset(f.offset)
    return list(session.scalars(query))
